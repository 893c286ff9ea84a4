"""The base every panel shares: a title, a hideable "What am I seeing?" paragraph, the linked-token protocol.

A panel takes an immutable ``AnalysisResult`` in ``set_result`` and only draws it. Linking: a panel emits
``tokenHovered(position)`` / ``tokenSelected(position)`` (position = index into ``result.tokens``, -1 for none);
the main window forwards them to every panel's ``highlight_token`` / ``select_position``.

Scenes and export: ``scene_state() -> dict`` / ``apply_scene_state(dict)`` save and restore a panel's own controls
(layer, sliders…; the text, settings and selected position belong to the scene itself), ``export_data() -> dict``
gives the numbers behind the view and ``caption_extra()`` what an exported picture's caption adds. The defaults
save nothing, export the tokens, and name the panel.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QScrollArea, QToolButton, QVBoxLayout, QWidget

from explainer.core.types import AnalysisResult
from explainer.ui import theme as th


class Panel(QWidget):
    tokenHovered = Signal(int)
    tokenSelected = Signal(int)

    title = "Panel"
    explanation = ""  # one short paragraph (2–3 lines), shown under the title; must be correct
    details = ""  # the longer explanation, shown when hovering the paragraph

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.result: AnalysisResult | None = None
        self.theme: th.Theme = th.LIGHT
        self.selected_position = -1
        self.hovered_position = -1
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)
        outer.setSpacing(4)
        head = self._head = QHBoxLayout()
        self._title = QLabel(f"<b>{self.title}</b>")
        title_font = self._title.font()
        title_font.setPointSizeF(th.LABEL_FONT_PT)  # readable from the back of a lecture hall
        self._title.setFont(title_font)
        self._help_button = QToolButton(text="What am I seeing?", checkable=True, checked=True)
        self._help_button.setAutoRaise(True)
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
        self._help_button.toggled.connect(self._help.setVisible)
        self.body = QVBoxLayout()
        self.body.setContentsMargins(0, 0, 0, 0)
        outer.addLayout(self.body, 1)

    # --- protocol used by the main window -------------------------------------------------------------
    def set_result(self, result: AnalysisResult) -> None:
        self.result = result
        if self.selected_position >= result.n_tokens:
            self.selected_position = -1
        self.refresh()

    def refresh(self) -> None:
        """Redraw from ``self.result``; subclasses implement."""

    def highlight_token(self, position: int) -> None:
        self.hovered_position = position

    def select_position(self, position: int) -> None:
        self.selected_position = position

    @property
    def focus_position(self) -> int:
        """The selected position, or the last token when nothing (valid) is selected; -1 without tokens."""
        r = self.result
        if r is None or r.n_tokens == 0:
            return -1
        p = self.selected_position
        return p if 0 <= p < r.n_tokens else r.n_tokens - 1

    def set_theme(self, theme: th.Theme) -> None:
        self.theme = theme
        self.refresh()

    def add_header_widget(self, widget: QWidget, stretch: int = 0) -> None:
        """Put a small widget (a count, a toggle) in the title row, after the title."""
        self._head.insertWidget(self._head.count() - 2, widget, stretch)
        if stretch:
            self._head.setStretch(self._head.count() - 2, 0)  # the widget takes the room the spacer had

    def set_help_visible(self, visible: bool) -> None:
        self._help_button.setChecked(visible)

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
                    "token": t.display,
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
