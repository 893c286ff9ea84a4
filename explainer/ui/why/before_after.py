"""Before / after bars: the next-token distribution of the clean model and of the model with heads knocked out,
side by side for the same candidates, with the change in percentage points (vermillion up, blue down)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from explainer.ui import theme as th
from explainer.ui.why.colours import DOWN, UP
from explainer.ui.widgets.bars import BarRows

CLEAN_COLOUR = "#8a919c"  # the clean model: a quiet grey, the knocked-out model in the panel's own blue
KNOCKED_COLOUR = th.ACCENTS[0]
MAX_ROWS = 12


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max())
    return z / z.sum()


def compare_rows(clean_probs: np.ndarray, knocked_probs: np.ndarray, n: int) -> list[int]:
    """The ``n`` token ids that matter most before or after: the top of both distributions, by the larger of
    the two probabilities."""
    k = min(n, len(clean_probs))
    top = set(np.argpartition(-clean_probs, k - 1)[:k].tolist()) | set(np.argpartition(-knocked_probs, k - 1)[:k])
    return [int(i) for i in sorted(top, key=lambda i: -max(clean_probs[i], knocked_probs[i]))[:n]]


class BeforeAfterBars(BarRows, QWidget):
    """Rows: token | clean P | knocked-out P | change. Click a row (or Enter) to choose the token."""

    rowClicked = Signal(int)  # the row's token id
    max_rows = MAX_ROWS
    capacityChanged = Signal()  # a resize made room for more (or fewer) rows

    def __init__(self, parent: QWidget | None = None, titles: tuple[str, str] = ("clean model", "heads knocked out")):
        super().__init__(parent)
        self.titles = titles
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setAccessibleName("Next token before and after the knock-out")
        self.theme = th.LIGHT
        self.ids: list[int] = []
        self.labels: list[str] = []
        self.clean: list[float] = []
        self.knocked: list[float] = []
        self.hovered = -1
        self._font = QFont(self.font())
        self._font.setPointSizeF(th.LABEL_FONT_PT)
        self._small = QFont(self.font())
        self._small.setPointSizeF(th.SMALL_FONT_PT + 1)
        self._fm, self._fm_small = QFontMetricsF(self._font), QFontMetricsF(self._small)
        self._small_bold = QFont(self._small)  # a change of 5 points or more, and the largest one
        self._small_bold.setBold(True)
        self.setToolTip(
            "Grey: the clean model. Blue: with the heads knocked out. The number on the right is the change."
        )

    def set_rows(self, ids: list[int], labels: list[str], clean: list[float], knocked: list[float]) -> None:
        self.ids, self.labels, self.clean, self.knocked = ids, labels, clean, knocked
        self.update()

    def _geometry(self):
        label_w = min(self.width() * 0.3, max([self._fm.horizontalAdvance(s) for s in self.labels] + [40.0]) + 12)
        pct_w = self._fm_small.horizontalAdvance("100.0 %") + 8
        change_w = QFontMetricsF(self._small_bold).horizontalAdvance("▼ −100.0 pts") + 8  # as drawn at its widest
        bar_w = max(20.0, (self.width() - label_w - 2 * pct_w - change_w - 8) / 2)
        return label_w, pct_w, bar_w, change_w

    def row_at(self, y: float) -> int:
        i = int((y - self.header_height) // self.row_height)
        return i if 0 <= i < min(len(self.ids), self.capacity()) and y >= self.header_height else -1

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        t = self.theme
        label_w, pct_w, bar_w, change_w = self._geometry()
        x_clean, x_knocked = label_w, label_w + bar_w + pct_w + 4
        x_change = x_knocked + bar_w + pct_w
        p.setFont(self._small)
        for x0, colour, title in ((x_clean, CLEAN_COLOUR, self.titles[0]), (x_knocked, KNOCKED_COLOUR, self.titles[1])):
            p.fillRect(QRectF(x0, 4, 10, 10), QColor(colour))
            p.setPen(QColor(t.muted))
            p.drawText(QPointF(x0 + 14, 4 + self._fm_small.ascent() - 1), title)
        p.drawText(QPointF(x_change + 4, 4 + self._fm_small.ascent() - 1), "change")
        rh = self.row_height
        biggest = int(np.argmax(np.abs(np.subtract(self.knocked, self.clean)))) if self.ids else -1
        n = min(len(self.ids), self.capacity())
        columns = [
            (x0, values[:n], colour, [f"{100 * v:.1f} %" if v >= 0.001 else "<0.1 %" for v in values[:n]])
            for x0, values, colour in ((x_clean, self.clean, CLEAN_COLOUR), (x_knocked, self.knocked, KNOCKED_COLOUR))
        ]
        self._paint_rows(p, n, label_w, bar_w, columns)
        for i in range(n):
            y = self.header_height + i * rh
            small_base = y + (rh + self._fm_small.ascent()) / 2 - 2
            d = 100 * (self.knocked[i] - self.clean[i])
            p.setFont(self._small_bold if i == biggest or abs(d) >= 5 else self._small)
            p.setPen(QColor(UP if d > 0.05 else DOWN if d < -0.05 else t.muted))
            arrow = "▲" if d > 0.05 else "▼" if d < -0.05 else " "
            p.drawText(QPointF(x_change + 4, small_base), f"{arrow} {d:+.1f} pts".replace("-", "−"))
            if i == biggest and abs(d) >= 0.05:
                p.setPen(QPen(QColor(UP if d > 0 else DOWN), 2.0))
                p.setBrush(Qt.NoBrush)
                p.drawRoundedRect(QRectF(1.5, y + 1.5, self.width() - 3, rh - 3), 5, 5)
        p.end()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.ids and self.capacity() != len(self.ids):
            self.capacityChanged.emit()

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.LeftButton:
            i = self.row_at(event.position().y())
            if i >= 0:
                self.rowClicked.emit(self.ids[i])
