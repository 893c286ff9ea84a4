"""A hideable one-line message under the editor: an analysis error, or the model being prepared with its
progress."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

from explainer.ui import theme as th


class Banner(QFrame):
    """A hideable one-line message under the editor (analysis errors, model loading)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("banner")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 4, 4, 4)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(True)
        close = QToolButton(text="✕")
        close.setAutoRaise(True)
        close.setToolTip("Hide this message")
        close.clicked.connect(self.hide)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.progress)
        lay.addWidget(close)
        self.kind = ""
        self.hide()

    def show_message(self, kind: str, text: str, theme: th.Theme, fraction: float | None = None) -> None:
        self.kind = kind
        bg = th.ERROR_BG["dark" if theme.is_dark else "light"] if kind == "error" else theme.surface
        self.setStyleSheet(f"QFrame#banner {{ background: {bg}; border: 1px solid {theme.grid}; border-radius: 6px; }}")
        self.label.setText(("⚠ " if kind == "error" else "") + text)
        self.progress.setVisible(fraction is not None)
        if fraction is not None:
            self.progress.setValue(int(round(100 * max(0.0, min(1.0, fraction)))))
        self.show()
