"""Presenter mode (F11, View ▸ Presenter mode): the window as a lecturer shows it on a projector.

Full screen, one large *hero* view with the text strip (the editor, as tall as its text) above and the scene's
caption below, fonts scaled to the screen (:func:`presenter_scale`: the same share of the screen's height on a
1024×768 projector as on a 1920×1080 one), a high-contrast variant of the theme, no menu bar, status bar, tab bar
or "What am I seeing?" texts. The hero is the window's ``ViewState.hero`` (a live panel) or the teaching view on
screen; a scene names it (its ``view``). The keyboard drives it:

- 1–4 (outside a text field): the hero is Tokens, Next token, Attention or Embeddings (the window's Focus keys);
- PageDown / PageUp (what a presentation clicker sends), or N / P outside a text field: next / previous scene of
  the lecture set; the scene's title and note show in the caption strip. A step takes the keyboard from the text
  (so the digits, N / P and the arrows act on the views, not type into the text); a click in the text types again;
- Ctrl+= / Ctrl+- / Ctrl+0: zoom in / out / back (also outside presenter mode);
- arrow keys in the attention panel: layer and head (the panel's own keys);
- Esc or F11: back to the normal window, as it was.

The status bar is hidden, so its messages show as notices over the window for a few seconds (``ui.notice``).

Fonts: the application font is scaled (everything that inherits it follows), so are widgets with a font of
their own, table rows, and the fonts that the custom-drawn views (token chips, bars, badges, byte strip) keep
in attributes (``CACHED_FONTS``; a view added later with its own cached font belongs in that table).
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QFont, QFontMetricsF, QKeySequence
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPlainTextEdit,
    QTableView,
    QTextEdit,
    QWidget,
)
from shiboken6 import isValid

from explainer.ui import theme as th
from explainer.ui.keys import key_list
from explainer.ui.notice import StatusNotices

ZOOM_STEP, ZOOM_MIN, ZOOM_MAX = 1.15, 0.6, 3.0
# class name → (font attribute, its QFontMetricsF attribute or None), for views that keep fonts they paint with
CACHED_FONTS = {
    "ChipView": (("_font", "_fm"), ("_small", "_fm_small")),
    "BarsView": (("_font", "_fm"), ("_small", "_fm_small")),
    "TopBars": (("_font", "_fm"),),
    "BadgeGrid": (("_font", None),),
    "ByteStrip": (("_big", "_fm_big"), ("_chip", "_fm_chip"), ("_small", "_fm_small"), ("_mono", "_fm_mono")),
}
_BASE_FONTS = "_presenter_base_fonts"
EDITOR_LINES = 4  # presenter mode shows at most this many lines of the editor's text
REFERENCE_HEIGHT = 1080  # fonts are ×PRESENTER_SCALE on a screen this tall …
MIN_SCALE, MAX_SCALE = 1.1, 2.6  # … proportionally on others, within these bounds


def presenter_scale(screen_height: float) -> float:
    """The presenter font scale for a screen ``screen_height`` logical pixels tall."""
    return min(MAX_SCALE, max(MIN_SCALE, th.PRESENTER_SCALE * screen_height / REFERENCE_HEIGHT))


def high_contrast(theme: th.Theme) -> th.Theme:
    """The same theme (same name, so the rest of the app treats it alike) with pure black / white and stronger
    secondary text and grid lines: projectors wash out greys."""
    if theme.is_dark:
        return replace(theme, background="#000000", surface="#0b0c0e", text="#ffffff", muted="#d0d4da", grid="#6b717b")
    return replace(theme, background="#ffffff", surface="#ffffff", text="#000000", muted="#30343a", grid="#8a9099")


# --- fonts ------------------------------------------------------------------------------------------------------
def _scaled(font: QFont, scale: float) -> QFont:
    f = QFont(font)
    if font.pointSizeF() > 0:
        f.setPointSizeF(font.pointSizeF() * scale)
    elif font.pixelSize() > 0:
        f.setPixelSize(max(1, round(font.pixelSize() * scale)))
    return f


def _cached_font_attrs(w: QWidget):
    for cls in type(w).__mro__:
        if cls.__name__ in CACHED_FONTS:
            return CACHED_FONTS[cls.__name__]
    return ()


def apply_font_scale(root: QWidget, scale: float, app: QApplication | None = None, sheet: str | None = None) -> None:
    """Scale every font under ``root`` (and the application font) to ``scale`` × its original size; 1 restores.
    ``sheet``: the application's style sheet afterwards (None: the one it has). The widgets are styled again here
    anyway, so a new theme's sheet set here styles them once instead of twice (~0.15 s each with the window
    built)."""
    app = app or QApplication.instance()
    base = getattr(app, _BASE_FONTS, None)
    if base is None:
        base = QFont(app.font())
        setattr(app, _BASE_FONTS, base)
    app.setFont(_scaled(base, scale))
    current = app.styleSheet()
    if sheet is None:
        sheet = current
    if current:  # widgets polished by a style sheet keep the font they had: polish them again (before the
        app.setStyleSheet("")  # fonts set on widgets below, which polishing would put back)
    if sheet:
        app.setStyleSheet(sheet)
    for w in [root] + root.findChildren(QWidget):
        originals = w.__dict__.setdefault(_BASE_FONTS, {})
        if w.testAttribute(Qt.WA_SetFont) or "" in originals:
            originals.setdefault("", QFont(w.font()))
            w.setFont(_scaled(originals[""], scale))
        attrs = _cached_font_attrs(w)
        for font_attr, fm_attr in attrs:
            f = getattr(w, font_attr, None)
            if isinstance(f, QFont):
                originals.setdefault(font_attr, QFont(f))
                new = _scaled(originals[font_attr], scale)
                setattr(w, font_attr, new)
                if fm_attr:
                    setattr(w, fm_attr, QFontMetricsF(new))
        if attrs:
            _relayout(w)
        if isinstance(w, QTableView):
            header = w.verticalHeader()
            originals.setdefault("rows", header.defaultSectionSize())
            header.setDefaultSectionSize(max(8, round(originals["rows"] * scale)))
    from explainer.ui.panels.base import Panel

    for p in [root] + root.findChildren(Panel):
        if isinstance(p, Panel):
            p.refresh()  # panels re-read their fonts (plots, chip sizes, table heights) when they redraw


def _relayout(w: QWidget) -> None:
    """A custom view measured its contents with the old fonts: measure again."""
    chips = getattr(w, "chips", None)
    if hasattr(w, "set_rows") and hasattr(w, "row_of") and hasattr(w, "spans"):  # AlignedChipView
        rows = [[(c, *w.spans[i]) for i, c in enumerate(w.chips) if w.row_of[i] == r] for r in range(len(w.row_names))]
        w.set_rows(w.row_names, rows, w.n_chars)
    elif isinstance(chips, list) and hasattr(w, "set_chips"):  # ChipView
        w.set_chips(list(chips))
    elif hasattr(w, "rows") and hasattr(w, "_relayout"):  # ByteStrip
        w._laid_out_width = -1
        w._relayout()
    if type(w).__name__ == "TopBars":
        w.setFixedHeight(w.sizeHint().height())
    w.updateGeometry()
    w.update()


# --- the caption strip ------------------------------------------------------------------------------------------
class CaptionStrip(QFrame):
    """The scene's title and note at the bottom of the window (presenter mode), side by side like a lower third:
    the title on the left, the note wrapping beside it, so a two-line note costs two lines of the hero's height,
    not three."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("captionStrip")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(16, 6, 16, 8)
        lay.setSpacing(18)
        self.title = QLabel()
        self.title.setTextFormat(Qt.PlainText)
        f = QFont(self.title.font())
        f.setPointSizeF(th.LABEL_FONT_PT + 3)
        f.setBold(True)
        self.title.setFont(f)
        self.note = QLabel()
        self.note.setTextFormat(Qt.PlainText)
        self.note.setWordWrap(True)
        f = QFont(self.note.font())
        f.setPointSizeF(th.LABEL_FONT_PT)
        self.note.setFont(f)
        self.title.setAlignment(Qt.AlignLeft | Qt.AlignTop)
        self.note.setAlignment(Qt.AlignLeft | Qt.AlignTop)
        lay.addWidget(self.title, 0, Qt.AlignTop)
        lay.addWidget(self.note, 1)
        self.hide()

    def set_caption(self, title: str, note: str) -> None:
        self.title.setText(title)
        self.note.setText(note)
        self.note.setVisible(bool(note))

    def set_theme(self, theme: th.Theme) -> None:
        self.setStyleSheet(
            f"QFrame#captionStrip {{ background: {theme.surface}; border-top: 2px solid "
            f"{th.HIGHLIGHT}; }} QFrame#captionStrip QLabel {{ color: {theme.text}; }}"
        )

    @property
    def has_caption(self) -> bool:
        return bool(self.title.text() or self.note.text())


# --- presenter mode ---------------------------------------------------------------------------------------------
class Presenter(QObject):
    """Owns presenter mode and zoom for a main window (which lays out the hero: ``window.apply_view_layout``).
    ``next_scene`` / ``previous_scene`` are callables set by the scenes menu."""

    def __init__(self, window: QMainWindow, caption: CaptionStrip):
        super().__init__(window)
        self.main = window
        self.caption = caption
        self.active = False
        self.zoom = 1.0
        self.base_scale = 1.0  # presenter_scale of the screen while active
        self.fullscreen = True  # False: keep the window's size (scripted screenshots)
        self._saved: dict = {}
        self._keyboard: QWidget | None = None  # the widget with the keyboard, watched for keys while active
        self.next_scene = self.previous_scene = lambda: None
        self.caption.set_theme(window.theme)
        self.action = self._action("&Presenter mode", [QKeySequence(Qt.Key_F11)], self.toggle, checkable=True)
        self.zoom_in_action = self._action(
            "Zoom &in", key_list("Ctrl+=", QKeySequence.ZoomIn), lambda: self.set_zoom(self.zoom * ZOOM_STEP)
        )
        self.zoom_out_action = self._action(
            "Zoom &out", key_list("Ctrl+-", QKeySequence.ZoomOut), lambda: self.set_zoom(self.zoom / ZOOM_STEP)
        )
        self.zoom_reset_action = self._action("&Actual size", [QKeySequence("Ctrl+0")], lambda: self.set_zoom(1.0))
        window.installEventFilter(self)
        window.resultShown.connect(self._on_window_result_shown)  # the text may have grown a line
        self.notices = StatusNotices(window, caption, lambda: self.active)

    def _action(self, text: str, keys, slot, checkable: bool = False) -> QAction:
        a = QAction(text, self.main, checkable=checkable)
        a.setShortcuts(keys)
        a.setShortcutContext(Qt.WindowShortcut)
        a.triggered.connect(lambda *_: slot())
        self.main.addAction(a)  # works while the menu bar is hidden
        return a

    def add_menu_actions(self, menu) -> None:
        for a in (self.action, self.zoom_in_action, self.zoom_out_action, self.zoom_reset_action):
            menu.addAction(a)

    @property
    def scale(self) -> float:
        return (self.base_scale if self.active else 1.0) * self.zoom

    def set_zoom(self, zoom: float) -> None:
        self.zoom = min(ZOOM_MAX, max(ZOOM_MIN, float(zoom)))
        apply_font_scale(self.main, self.scale)
        self.fit_editor()

    def set_caption(self, title: str, note: str) -> None:
        self.caption.set_caption(title, note)
        self.caption.setVisible(self.active and self.caption.has_caption)

    def _on_window_result_shown(self, _result) -> None:
        self.fit_editor()

    def fit_editor(self) -> None:
        """In presenter mode, make the editor as tall as its text (up to EDITOR_LINES lines): whole lines only, and
        the rest of the screen for the views."""
        if self.active:
            self.main.fit_editor(EDITOR_LINES)

    def on_theme_changed(self, theme: th.Theme) -> None:
        self.caption.set_theme(theme)

    # --- entering and leaving -------------------------------------------------------------------------------
    def toggle(self) -> None:
        self.leave() if self.active else self.enter()

    def _screen_height(self) -> float:
        w = self.main
        screen = w.screen()
        if self.fullscreen and screen is not None:
            return screen.geometry().height()
        return w.height()

    def set_normal_help(self, visible: bool) -> None:
        """Whether the explanations show under the titles once presenter mode is left (what the window would have
        set had it not been presenting: a first start straight into presenter mode decides it meanwhile)."""
        if self.active:
            self._saved["help"] = visible
        else:
            self.main.set_help_visible(visible)

    def enter(self) -> None:
        if self.active:
            return
        w = self.main
        self._saved = {
            "theme": w.theme,
            "help": w.help_action.isChecked(),
            "menu": not w.menuBar().isHidden(),
            "status": not w.statusBar().isHidden(),
            "geometry": w.saveGeometry(),
            "state": w.windowState(),
            "splitters": w.save_splitters(),
        }
        self.active = True
        self.base_scale = presenter_scale(self._screen_height())
        w.set_help_visible(False)
        w.menuBar().hide()
        w.statusBar().hide()
        w.teach.tabBar().hide()
        self._saved["teach_focus"] = w.teach.focusPolicy()
        w.teach.setFocusPolicy(Qt.NoFocus)  # Tab would stop at the hidden tab bar (its focus proxy) and go nowhere
        self.restyle(high_contrast(w.theme))
        self.caption.setVisible(self.caption.has_caption)
        self.action.setChecked(True)
        if self.fullscreen:
            w.showFullScreen()
        w.apply_view_layout()
        self.fit_editor()
        QApplication.instance().focusChanged.connect(self._on_focus_changed)
        w.editor.installEventFilter(self)  # (where the keys of a lecture mostly go)
        self._watch_keys_of(QApplication.focusWidget())

    def restyle(self, theme: th.Theme) -> None:
        """The fonts at the current scale and ``theme`` on the window, the widgets styled once for both."""
        app = QApplication.instance()
        app.setStyleSheet("")  # (the style and fonts below then polish the widgets without it: once, not twice)
        self.main.set_theme(theme, style_sheet=False)
        apply_font_scale(self.main, self.scale, sheet=th.style_sheet(self.main.theme))

    def leave(self, closing: bool = False) -> None:
        """Back to the normal window as it was (``closing``: the window is closing, so it is not laid out again)."""
        if not self.active:
            return
        w, s = self.main, self._saved
        QApplication.instance().focusChanged.disconnect(self._on_focus_changed)
        self._watch_keys_of(None)
        w.editor.removeEventFilter(self)
        self.active = False
        self.caption.hide()
        self.notices.hide()
        self.restyle(s["theme"])
        w.set_help_visible(s["help"])
        w.menuBar().setVisible(s["menu"])
        w.statusBar().setVisible(s["status"])
        w.teach.tabBar().show()
        w.teach.setFocusPolicy(s["teach_focus"])
        self.action.setChecked(False)
        w.apply_view_layout()
        w.restore_splitters(s["splitters"])
        if not closing:  # again once the panels' minimum sizes follow the normal fonts (a splitter keeps a panel
            QTimer.singleShot(0, self, lambda: self.active or w.restore_splitters(s["splitters"]))  # at its minimum)
        if w.isFullScreen() and not (s["state"] & Qt.WindowFullScreen):
            w.setWindowState(s["state"])
            if not (s["state"] & Qt.WindowMaximized):
                w.restoreGeometry(s["geometry"])
        if not closing:  # the scene steps gave the keyboard to the views; back in the window, typing edits the text
            w.editor.setFocus(Qt.OtherFocusReason)

    # --- keys -----------------------------------------------------------------------------------------------------
    def _on_focus_changed(self, _old, new) -> None:
        self._watch_keys_of(new)

    def _watch_keys_of(self, widget: QWidget | None) -> None:
        """A key goes to the widget with the keyboard (to the window when none has it): the filter sits there, on
        the window and on the editor, so it sees the scene keys before that widget acts on them. (On the whole
        application every event of every widget would pass through it: about a millisecond of each picture.)"""
        old = self._keyboard
        if old is not None and old not in (self.main, self.main.editor) and isValid(old):
            old.removeEventFilter(self)
        self._keyboard = widget
        if widget is not None and widget is not self.main:
            widget.installEventFilter(self)  # (installed last, it sees the key first)

    def eventFilter(self, obj, event) -> bool:
        if obj is self.main and event.type() == QEvent.Close:
            self.leave(closing=True)  # the window saves its normal layout, theme and help switch
            return False
        if obj is self.main and event.type() == QEvent.Resize and self.active:
            self.fit_editor()
            return False
        if (
            not self.active
            or event.type() != QEvent.KeyPress
            or not isinstance(obj, QWidget)
            or obj.window() is not self.main
            or event.modifiers() & (Qt.ControlModifier | Qt.AltModifier)
        ):
            return False
        key = event.key()
        typing = is_text_input(QApplication.focusWidget())
        if key == Qt.Key_PageDown or (key == Qt.Key_N and not typing):
            self.next_scene()
            self.keyboard_to_views()
        elif key == Qt.Key_PageUp or (key == Qt.Key_P and not typing):
            self.previous_scene()
            self.keyboard_to_views()
        elif key == Qt.Key_Escape:
            self.leave()
        else:
            return False
        return True

    def keyboard_to_views(self) -> None:
        """After a scene step or a hero key, keys act on the views: a text field that has the keyboard gives it to
        the hero."""
        focus = QApplication.focusWidget()
        if is_text_input(focus):
            hero = self.main.panels.get(self.main.view.hero) if self.main.view.hero else None
            target = hero.keyboard_target() if hero is not None and hero.isVisible() else self.main.teach
            target.setFocus(Qt.OtherFocusReason)
            if QApplication.focusWidget() is focus:  # the target takes no keyboard focus
                focus.clearFocus()


def is_text_input(w: QWidget | None) -> bool:
    if isinstance(w, (QLineEdit, QAbstractSpinBox)):
        return True
    if isinstance(w, QComboBox):
        return w.isEditable()
    if isinstance(w, (QPlainTextEdit, QTextEdit)):
        return not w.isReadOnly()
    return False
