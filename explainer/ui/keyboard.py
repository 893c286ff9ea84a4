"""The window from the keyboard alone.

- Tab leaves the editor, and so do Shift+Tab, Ctrl+Tab and Ctrl+Shift+Tab: the editor never traps the keyboard
  (a tab character can still be pasted into the text).
- Tab then visits, in reading order, the view tabs (← → switch views), each live panel's controls (tokenizer,
  surprisal heat, the chips; the sampling sliders, Reset, Sample and the candidates' bars; the embeddings
  layer slider and path; the attention panel itself (↑ ↓ layer, ← → head), its Heatmap / Lines buttons, layer and
  head boxes, "Average of heads", "Hide first token" and the grid's measure), and back to the editor.
- The control that has the keyboard focus wears a ring in the highlight colour when the focus came from the
  keyboard (not after a click, where the pointer already says where you are): :class:`FocusRing`.
- A dialog gives the focus back to the control that had it when it closes: :func:`focus_kept`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from PySide6.QtCore import QEvent, QObject, QRect, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPainter, QPen, QRegion
from PySide6.QtWidgets import QApplication, QWidget
from shiboken6 import isValid

from explainer.ui import theme as th

RING = 3  # pixels around the focused control


class EditorKeys(QObject):
    """Tab and Shift+Tab move the focus out of the editor (``tabChangesFocus``); Ctrl+Tab and Ctrl+Shift+Tab too,
    which a text edit would otherwise keep."""

    def __init__(self, window):
        super().__init__(window)
        self.main = window
        window.editor.setTabChangesFocus(True)
        window.editor.installEventFilter(self)

    def eventFilter(self, obj, ev) -> bool:
        if ev.type() == QEvent.KeyPress and ev.key() in (Qt.Key_Tab, Qt.Key_Backtab):
            if ev.modifiers() & Qt.ControlModifier:
                forward = ev.key() == Qt.Key_Tab and not ev.modifiers() & Qt.ShiftModifier
                self.main.focusNextPrevChild(forward)
                return True
        return False


class FocusRing(QWidget):
    """A ring around the focused control, drawn over the window; follows the control as it or any widget around it
    moves (a taller text above pushes the panels down) or resizes, and hides when the focus leaves the window or
    arrives with a mouse click."""

    def __init__(self, window):
        super().__init__(window)
        self.main = window
        self.setAttribute(Qt.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WA_NoSystemBackground)
        self.setFocusPolicy(Qt.NoFocus)
        self.target: QWidget | None = None
        self._watched: list[QWidget] = []  # the target and the widgets around it, up to the window
        self.colour = QColor(th.HIGHLIGHT)
        self.hide()
        QApplication.instance().focusChanged.connect(self._on_app_focus_changed)

    def _on_app_focus_changed(self, _old, new) -> None:
        for w in self._watched:
            if isValid(w):  # a window being closed deletes its children one by one, focus moving on
                w.removeEventFilter(self)
        self._watched, self.target = [], None
        if not isValid(self):
            return
        keyboard = QGuiApplication.mouseButtons() == Qt.NoButton
        if new is None or not keyboard or new.window() is not self.main or isinstance(new, FocusRing):
            self.hide()
            return
        self.target = new
        w = new
        while w is not None and w is not self.main:
            w.installEventFilter(self)
            self._watched.append(w)
            w = w.parentWidget()
        self.place()

    def eventFilter(self, obj, ev) -> bool:
        kind = ev.type()
        if obj is self.target:
            if kind in (QEvent.Move, QEvent.Resize, QEvent.Show):
                self.place()
            elif kind == QEvent.Hide:
                self.hide()
            elif kind == QEvent.MouseButtonPress:
                self.hide()  # the pointer took over
        elif kind == QEvent.Move and self.target is not None:  # a widget around the target moved it in the window
            self.place()
        return False

    def place(self) -> None:
        """Around the target's visible part (a control inside a scroll area is cut at the area's edge)."""
        t = self.target
        if t is None or not isValid(t) or not t.isVisible():
            self.hide()
            return
        area = t.visibleRegion().boundingRect()
        if area.isEmpty():
            self.hide()
            return
        top_left = t.mapTo(self.main, area.topLeft())
        rect = QRect(top_left, area.size()).adjusted(-RING, -RING, RING, RING)
        self.setGeometry(rect.intersected(self.main.rect()))
        self.raise_()
        self.show()
        self.update()

    def resizeEvent(self, event) -> None:
        # the ring's band only (its stroke and rounded corners stay within RING + 1 pixels of the edge): typing in
        # the control under it does not make the window draw the ring again
        band = RING + 1
        whole = QRegion(self.rect())
        self.setMask(whole.subtracted(QRegion(self.rect().adjusted(band, band, -band, -band))))
        super().resizeEvent(event)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        p.setPen(QPen(self.colour, 2.5))
        p.setBrush(Qt.NoBrush)
        p.drawRoundedRect(self.rect().adjusted(1, 1, -2, -2), 4, 4)
        p.end()


@contextmanager
def focus_kept(window) -> Iterator[None]:
    """Around a dialog over ``window`` (or a widget in it): when it closes, the window is the active one again and
    the keyboard focus is back on the control that had it (a window manager usually does this; without one, or when
    it does not, the keyboard would reach nothing until a click)."""
    before = QApplication.focusWidget()
    try:
        yield
    finally:
        top = window.window() if isValid(window) else None
        if top is not None and top.isVisible():
            top.activateWindow()
            if before is not None and isValid(before) and before.isVisible() and before.window() is top:
                before.setFocus(Qt.OtherFocusReason)


def install(window) -> None:
    """The editor's Tab keys and the focus ring for a main window."""
    window.editor_keys = EditorKeys(window)
    window.focus_ring = FocusRing(window)
