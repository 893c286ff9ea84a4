"""Notices over the window, for presenter mode, where the status bar is hidden: "That was the last scene", "The
model now runs with ONNX Runtime", a refused candidate, a saved file. Every status-bar message is shown for a few
seconds (longer for longer sentences) in a dark rounded box at the bottom centre, above the caption; a message
that only repeats the caption (the scene's title and note) is not shown twice."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QLabel, QWidget

MIN_MS, PER_CHAR_MS, MAX_MS = 2500, 50, 8000
MARGIN = 16


def duration_ms(text: str) -> int:
    """How long a notice stays: long enough to read it aloud."""
    return int(min(MAX_MS, MIN_MS + PER_CHAR_MS * len(text)))


class NoticeOverlay(QLabel):
    """A transient message box drawn over ``window`` (above ``below``, the caption strip, when it shows)."""

    def __init__(self, window: QWidget, below: QWidget | None = None):
        super().__init__(window)
        self.main, self.below = window, below
        self.setObjectName("noticeOverlay")
        self.setAttribute(Qt.WA_TransparentForMouseEvents)
        self.setWordWrap(True)
        self.setTextFormat(Qt.PlainText)
        self.setAlignment(Qt.AlignCenter)
        self.setFocusPolicy(Qt.NoFocus)
        self.setStyleSheet(
            "QLabel#noticeOverlay { background: rgba(20, 22, 26, 225); color: #ffffff; border-radius: 10px;"
            " padding: 10px 18px; }"
        )
        self.timer = QTimer(self, singleShot=True)
        self.timer.timeout.connect(self.hide)
        window.installEventFilter(self)
        self.hide()

    def show_notice(self, text: str) -> None:
        self.setText(text)
        self.place()
        self.raise_()
        self.show()
        self.timer.start(duration_ms(text))

    def place(self) -> None:
        w = self.main
        width = min(int(w.width() * 0.7), self.fontMetrics().horizontalAdvance(self.text()) + 60)
        self.setFixedWidth(max(200, width))
        self.adjustSize()
        bottom = w.height() - MARGIN
        if self.below is not None and self.below.isVisible():
            bottom = self.below.mapTo(w, self.below.rect().topLeft()).y() - MARGIN
        self.move((w.width() - self.width()) // 2, max(0, bottom - self.height()))

    def eventFilter(self, obj, ev) -> bool:
        if obj is self.main and ev.type() == QEvent.Resize and self.isVisible():
            self.place()
        return False


class StatusNotices(QObject):
    """Shows the window's status-bar messages as notices while ``active()`` (presenter mode)."""

    def __init__(self, window, caption, active):
        super().__init__(window)
        self.caption, self.active = caption, active
        self.overlay = NoticeOverlay(window, caption)
        self.status = window.statusBar()
        self.status.messageChanged.connect(self._on_message_changed)
        self.overlay.timer.timeout.connect(self._on_overlay_timeout)

    def _on_message_changed(self, text: str) -> None:
        if not text or not self.active():
            return
        text = self.status.currentMessage()  # the whole message (a shown status bar shortens it to its room)
        title = self.caption.title.text()
        if self.caption.isVisible() and title and text.startswith(title):
            return  # the caption already says it
        self.overlay.show_notice(text)

    def _on_overlay_timeout(self) -> None:
        """The notice is gone: so is the message of the hidden status bar, so that the same message again (the last
        scene's "next" pressed twice) shows again."""
        if self.active():
            self.status.clearMessage()

    def hide(self) -> None:
        self.overlay.timer.stop()
        self.overlay.hide()
