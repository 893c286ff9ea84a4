"""The window's status bar: a passing message that does not fit ends in "…" instead of being cut mid-letter."""

from __future__ import annotations

import time

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QSizeGrip, QStatusBar, QWidget

LEFT_PX, GAP_PX, RIGHT_PX = 6, 2, 12  # where QStatusBar draws its message: from the left, up to its first permanent
# widget (less a gap), else up to the right edge less the size grip's room


class StatusBar(QStatusBar):
    """A QStatusBar whose message (``showMessage``) is shortened with "…" to the room its permanent widgets leave
    (Qt cuts it off where the first one starts: "… each token looks at the t40 tokens"), shortened again when that
    room changes, with the whole message as the bar's tooltip. ``currentMessage()`` is the whole message."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._full = ""  # the message as given
        self._until = 0.0  # when it goes (time.monotonic()), 0: when replaced
        self.messageChanged.connect(self._on_message_changed)

    def showMessage(self, text: str, timeout: int = 0) -> None:
        self._full = text
        self._until = time.monotonic() + timeout / 1000 if timeout > 0 else 0.0
        self._fit(force=True)

    def currentMessage(self) -> str:
        return self._full if super().currentMessage() else ""

    def message_room(self) -> int:
        """The pixels the message may take: QStatusBar's own message rectangle. (While a message shows, the bar's
        visible widgets, the size grip aside, are its permanent ones: it hides the others.)"""
        right = self.width() - RIGHT_PX
        shown = self.findChildren(QWidget, options=Qt.FindDirectChildrenOnly)
        starts = [w.x() for w in shown if w.isVisible() and not isinstance(w, QSizeGrip)]
        if starts:
            right = min(starts) - GAP_PX
        return max(0, right - LEFT_PX)

    def _fit(self, force: bool = False) -> None:
        if not self._full:
            return
        room = self.message_room()
        if room <= 0 or not self.isVisible():  # not laid out yet, or hidden (presenter mode): whole until shown
            shown = self._full
        else:
            shown = self.fontMetrics().elidedText(self._full, Qt.ElideRight, room) or "…"
        if not force and shown == super().currentMessage():
            return
        left_ms = 0
        if self._until:
            left_ms = int((self._until - time.monotonic()) * 1000)
            if left_ms <= 0:
                self.clearMessage()
                return
        self.setToolTip(self._full if shown != self._full else "")
        super().showMessage(shown, left_ms)

    def _on_message_changed(self, text: str) -> None:
        if not text:  # timed out or cleared
            self._full, self._until = "", 0.0
            self.setToolTip("")

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()

    def event(self, event) -> bool:
        done = super().event(event)
        if event.type() in (QEvent.LayoutRequest, QEvent.Show):  # a permanent widget shown, hidden or resized
            self._fit()
        return done
