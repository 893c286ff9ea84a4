"""A one-line label that shortens its text with … when it has too little room, and shows the whole text as its
tooltip: an intended elision, never a clipped word."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtGui import QFontMetrics
from superqt import QElidingLabel


class FullTextLabel(QElidingLabel):
    def __init__(self, text: str = "", parent=None, *, min_text: str = "…"):
        super().__init__("", parent)
        self._min_text = min_text  # the label never gets narrower than this text
        self.setText(text)

    def setText(self, text: str) -> None:
        super().setText(text)
        self.setToolTip(text)

    def sizeHint(self) -> QSize:
        fm = QFontMetrics(self.font())
        m = self.contentsMargins()
        return QSize(fm.horizontalAdvance(self.text()) + 4 + m.left() + m.right(), super().minimumSizeHint().height())

    def minimumSizeHint(self) -> QSize:
        fm = QFontMetrics(self.font())
        m = self.contentsMargins()
        return QSize(
            fm.horizontalAdvance(self._min_text) + 4 + m.left() + m.right(), super().minimumSizeHint().height()
        )
