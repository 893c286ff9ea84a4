"""The base every panel shares: a title, a "What am I seeing?" paragraph, the linked-token protocol.

A panel takes an immutable ``AnalysisResult`` in ``set_result`` and only draws it. Linking: in a window, the
panel is bound to the window's ``ViewState`` (:meth:`Panel.bind_state`): it emits ``tokenHovered(position)`` /
``tokenSelected(position)`` (position = index into ``result.tokens``, -1 for none) as requests to the state, and
the state's ``hoveredChanged`` / ``selectedChanged`` reach every panel's ``highlight_token`` / ``select_position``.
A selected position is a *pin*; the token at the editor's caret reaches ``set_caret_position``, and a panel that
explains a prediction (``follows_caret``) shows the caret's position while nothing is pinned. Panels never call
each other.

"What am I seeing?": the paragraph shows under the title (``set_help_visible(True)``, for large screens), or it
takes no room and the button opens it as a popover (``set_help_visible(False)``). Double-clicking the title emits
``titleDoubleClicked`` (the window enlarges the panel).

Scenes and export: ``scene_state() -> dict`` / ``apply_scene_state(dict)`` save and restore a panel's own controls
(layer, sliders…; the text, settings and selected position belong to the scene itself), ``export_data() -> dict``
gives the numbers behind the view and ``caption_extra()`` what an exported picture's caption adds. The defaults
save nothing, export the tokens, and name the panel.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QScrollArea, QToolButton, QVBoxLayout, QWidget

from explainer.core.types import AnalysisResult
from explainer.ui import theme as th
from explainer.ui.widgets.labels import FullTextLabel

POPOVER_WIDTH = 460
_LABELS: tuple = ((), [])  # (a result's tokens, their labels), see token_labels


def token_labels(tokens) -> list[str]:
    """Each token's label as every panel names it (``Token.label``: ⟨start⟩, · for a space); the panels ask in
    turn for the same result's labels, so the last tokens' are kept. The list is shared: do not change it."""
    global _LABELS
    if _LABELS[0] is not tokens:
        _LABELS = (tokens, [t.label for t in tokens])
    return _LABELS[1]


class HelpPopover(QFrame):
    """The explanation and its details in a small window under the "What am I seeing?" button."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent, Qt.Popup)
        self.setObjectName("helpPopover")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 10, 12, 10)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.RichText)
        lay.addWidget(self.label)

    def show_text(self, html: str, anchor: QWidget, theme: th.Theme) -> None:
        self.setStyleSheet(
            f"QFrame#helpPopover {{ background: {theme.background}; border: 1px solid {theme.grid}; }}"
            f" QLabel {{ color: {theme.text}; }}"
        )
        self.label.setText(html)
        screen = anchor.screen().availableGeometry() if anchor.screen() else None
        width = min(POPOVER_WIDTH * anchor.logicalDpiX() / 96, (screen.width() - 20) if screen else 10**6)
        self.label.setFixedWidth(int(width) - 24)
        self.adjustSize()
        at = anchor.mapToGlobal(QPoint(anchor.width() - self.width(), anchor.height()))
        if screen is not None:
            at.setX(max(screen.left(), min(at.x(), screen.right() - self.width())))
            if at.y() + self.height() > screen.bottom():
                at.setY(anchor.mapToGlobal(QPoint(0, 0)).y() - self.height())
        self.move(at)
        self.show()


class Panel(QWidget):
    tokenHovered = Signal(int)
    tokenSelected = Signal(int)
    titleDoubleClicked = Signal()

    title = "Panel"
    explanation = ""  # one short paragraph (2–3 lines), shown under the title; must be correct
    details = ""  # the longer explanation, shown when hovering the paragraph
    follows_caret = False  # True: with nothing pinned, focus_position is the token at the editor's caret

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.result: AnalysisResult | None = None
        self.theme: th.Theme = th.LIGHT
        self.selected_position = -1
        self.caret_position = -1
        self.hovered_position = -1
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)
        outer.setSpacing(4)
        head = self._head = QHBoxLayout()
        short = self.title.split(":")[0] if ":" in self.title else ""  # "Embeddings", when the whole title does not fit
        self._title = FullTextLabel(self.title, min_text=self.title.split(":")[0].split(" ")[0] + "…", short=short)
        title_font = self._title.font()
        title_font.setPointSizeF(th.LABEL_FONT_PT)  # readable from the back of a lecture hall
        title_font.setBold(True)
        self._title.setFont(title_font)
        self._title.installEventFilter(self)
        self._help_button = QToolButton(text="What am I seeing?", checkable=True, checked=True)
        self._help_button.setAutoRaise(True)
        self._help_inline = True  # the paragraph under the title; False: a popover from the button
        self._popover: HelpPopover | None = None
        head.addWidget(self._title)
        head.addStretch(1)
        head.addWidget(self._help_button)
        outer.addLayout(head)
        self._help = QLabel(self.explanation)
        self._help.setWordWrap(True)
        self._help.setTextFormat(Qt.RichText)
        self._help.setObjectName("panelHelp")
        if self.details:
            self._help.setToolTip(f"<p style='max-width: 520px'>{self.details}</p>")
        outer.addWidget(self._help)
        self._help_button.clicked.connect(self._on_help_button_clicked)
        self.body = QVBoxLayout()
        self.body.setContentsMargins(0, 0, 0, 0)
        outer.addLayout(self.body, 1)

    # --- protocol used by the main window -------------------------------------------------------------
    def set_result(self, result: AnalysisResult) -> None:
        self.result = result
        if self.selected_position >= result.n_tokens:
            self.selected_position = -1
        if self.caret_position >= result.n_tokens:
            self.caret_position = -1
        self.refresh()

    def refresh(self) -> None:
        """Redraw from ``self.result``; subclasses implement."""

    def highlight_token(self, position: int) -> None:
        self.hovered_position = position

    def select_position(self, position: int) -> None:
        self.selected_position = position

    def set_caret_position(self, position: int) -> None:
        """The token at the editor's caret (-1: the end of the text). A panel that ``follows_caret`` redraws when
        the position it shows changes."""
        before = self.focus_position
        self.caret_position = position
        if self.follows_caret and self.result is not None and self.focus_position != before:
            self.refresh()

    @property
    def focus_position(self) -> int:
        """The selected (pinned) position; else, in a panel that ``follows_caret``, the caret's token; else the last
        token. -1 without tokens."""
        r = self.result
        if r is None or r.n_tokens == 0:
            return -1
        for p in (self.selected_position, self.caret_position if self.follows_caret else -1):
            if 0 <= p < r.n_tokens:
                return p
        return r.n_tokens - 1

    def set_theme(self, theme: th.Theme) -> None:
        self.theme = theme
        self.refresh()

    def add_header_widget(self, widget: QWidget, stretch: int = 0) -> None:
        """Put a small widget (a count, a toggle) in the title row, after the title."""
        self._head.insertWidget(self._head.count() - 2, widget, stretch)
        if stretch:
            self._head.setStretch(self._head.count() - 2, 0)  # the widget takes the room the spacer had

    def keyboard_target(self) -> QWidget:
        """What takes the keys when the panel is brought forward by its key (1–4, or as the presenter's hero): the
        part used from the keyboard, else the panel itself."""
        return self

    def set_alone(self, alone: bool) -> None:
        """The panel is shown alone (presenter mode's hero, or the one focused live panel): a panel whose picture
        does not grow with its room by itself may use the room differently. Default: nothing changes."""

    def set_help_visible(self, visible: bool) -> None:
        """Show the explanation under the title (True) or only as a popover from its button (False)."""
        self._help_inline = bool(visible)
        self._help_button.setChecked(self._help_inline)
        self._help.setVisible(self._help_inline)

    def show_help_popover(self) -> None:
        if self._popover is None:
            self._popover = HelpPopover(self)
        text = self._help.text()
        if self.details:
            text += f"<p>{self.details}</p>"
        self._popover.show_text(text, self._help_button, self.theme)

    def _on_help_button_clicked(self, checked: bool) -> None:
        if self._help_inline:
            self._help.setVisible(checked)  # this panel's paragraph only
        else:
            self._help_button.setChecked(False)
            self.show_help_popover()

    def eventFilter(self, obj, event) -> bool:
        if obj is self._title and event.type() == QEvent.MouseButtonDblClick:
            self.titleDoubleClicked.emit()
            return True
        return super().eventFilter(obj, event)

    def bind_state(self, state) -> None:
        """Follow the window's ``ViewState`` (hover and selection) and send this panel's requests to it."""
        self.view_state = state
        state.hoveredChanged.connect(self.highlight_token)
        state.selectedChanged.connect(self.select_position)
        state.caretChanged.connect(self.set_caret_position)
        self.tokenHovered.connect(state.set_hovered)
        self.tokenSelected.connect(state.set_selected)

    # --- scenes and export -------------------------------------------------------------------------------------
    def scene_state(self) -> dict:
        """What a saved scene needs to show this panel the same way again (JSON-able); {} when nothing."""
        return {}

    def apply_scene_state(self, state: dict) -> None:
        """Show ``state`` (from :meth:`scene_state`, perhaps from an older version: ignore unknown keys and bad
        values). May be called before the first result arrives and again after it."""

    def export_data(self) -> dict:
        """The numbers behind the view, for ``ui.export.export_data``: ``rows`` (list of dicts) and/or
        ``matrix`` with ``row_labels`` / ``col_labels``. Default: the analysed tokens and their ids."""
        r = self.result
        if r is None:
            return {"rows": []}
        return {
            "rows": [
                {
                    "position": i,
                    "token_text": t.text,  # the token's own text
                    "token_label": t.label,  # as the panels show it (· for a space, ⟨start⟩)
                    "id": int(t.id),
                    "start": t.start,
                    "end": t.end,
                    "special": bool(t.special),
                }
                for i, t in enumerate(r.tokens)
            ]
        }

    def caption_extra(self) -> str:
        """What a caption should say about this view besides model and text (e.g. "layer 3, head 5")."""
        return self.title


def vertical_scroll(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless scroll area that resizes it to its width and scrolls only vertically."""
    s = QScrollArea()
    s.setWidget(widget)
    s.setWidgetResizable(True)
    s.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
    s.setFrameShape(QScrollArea.NoFrame)
    return s
