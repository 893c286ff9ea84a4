"""A layers × heads grid of coloured badges: colour = a score in [0, 1] (viridis-like, as the attention
heatmaps), the value written inside when there is room, NaN cells grey with a dash. Click → ``headClicked``."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from explainer.ui import theme as th


class BadgeGrid(QWidget):
    """Layers (rows) × heads (columns) of coloured badges: colour = score of one role, the value written inside."""

    headClicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.theme = th.LIGHT
        self.scores = np.zeros((0, 0), np.float32)
        self.tooltip_for = lambda layer, head: ""
        self.selected = (-1, -1)
        self._hover = (-1, -1)
        self._font = QFont(self.font())
        self._font.setPointSizeF(th.SMALL_FONT_PT + 1)

    def set_scores(self, scores: np.ndarray) -> None:
        self.scores = np.asarray(scores, np.float32)
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(440, 620)

    def minimumSizeHint(self) -> QSize:
        return QSize(260, 300)

    def _geometry(self):
        L, H = self.scores.shape if self.scores.size else (1, 1)
        fm = QFontMetricsF(self._font)
        left, top, bottom = fm.horizontalAdvance("layer") + 10, fm.height() + 8, fm.height() + 14
        w = max(1.0, (self.width() - left - 4) / H)
        h = max(1.0, (self.height() - top - bottom) / L)
        return left, top, w, h

    def cell_at(self, pos: QPointF) -> tuple[int, int]:
        if not self.scores.size:
            return (-1, -1)
        left, top, w, h = self._geometry()
        col, row = math.floor((pos.x() - left) / w), math.floor((pos.y() - top) / h)
        L, H = self.scores.shape
        return (row, col) if 0 <= row < L and 0 <= col < H else (-1, -1)

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        p.setFont(self._font)
        fm = QFontMetricsF(self._font)
        text = QColor(self.theme.text)
        if not self.scores.size:
            p.end()
            return
        L, H = self.scores.shape
        left, top, w, h = self._geometry()
        p.setPen(text)
        p.drawText(QRectF(0, 0, left - 6, top - 2), Qt.AlignRight | Qt.AlignBottom, "layer")
        for c in range(H):
            p.drawText(QRectF(left + c * w, 0, w, top - 2), Qt.AlignHCenter | Qt.AlignBottom, f"H{c + 1}")
        fh = fm.height()
        step = 1 if h >= 0.85 * fh else (2 if 2 * h >= 1.1 * fh else 5)
        for r in range(L):
            if (r % step == 0) if step <= 2 else (r == 0 or (r + 1) % step == 0):
                mid = top + (r + 0.5) * h
                p.drawText(QRectF(0, mid - fh / 2, left - 6, fh), Qt.AlignRight | Qt.AlignVCenter, str(r + 1))
        show_values = h >= fm.height() - 1 and w >= fm.horizontalAdvance(".00") + 4
        for r in range(L):
            for c in range(H):
                v = float(self.scores[r, c])
                cell = QRectF(left + c * w + 1, top + r * h + 1, w - 2, h - 2)
                if math.isnan(v):
                    p.fillRect(cell, QColor(self.theme.surface))
                    p.setPen(QColor(self.theme.muted))
                    if show_values:
                        p.drawText(cell, Qt.AlignCenter, "–")
                    continue
                fill = QColor(th.heat_colour(v))
                p.fillRect(cell, fill)
                if show_values:
                    p.setPen(QColor(th.text_on(fill.name())))
                    p.drawText(cell, Qt.AlignCenter, f"{v:.2f}"[1:] if v < 1 else "1.0")
        for (r, c), pen in (
            (self._hover, QPen(QColor(th.HIGHLIGHT), 1.5, Qt.DashLine)),
            (self.selected, QPen(QColor(th.HIGHLIGHT), 3)),
        ):
            if 0 <= r < L and 0 <= c < H:
                p.setPen(pen)
                p.setBrush(Qt.NoBrush)
                p.drawRect(QRectF(left + c * w, top + r * h, w, h).adjusted(1, 1, -1, -1))
        # legend: 0 … 1
        y = top + L * h + 5
        bar = QRectF(left, y, min(240.0, H * w * 0.6), fm.height())
        for k in range(40):
            p.fillRect(
                QRectF(bar.left() + bar.width() * k / 40, y, bar.width() / 40 + 1, bar.height()),
                QColor(th.heat_colour((k + 0.5) / 40)),
            )
        p.setPen(text)
        p.drawText(QRectF(bar.left() - 30, y, 26, bar.height()), Qt.AlignRight | Qt.AlignVCenter, "0")
        p.drawText(
            QRectF(bar.right() + 4, y, self.width() - bar.right() - 4, bar.height()),
            Qt.AlignLeft | Qt.AlignVCenter,
            "1" + ("   – = no score here" if np.isnan(self.scores).any() else ""),
        )
        p.end()

    def mouseMoveEvent(self, ev) -> None:
        cell = self.cell_at(ev.position())
        if cell != self._hover:
            self._hover = cell
            self.setToolTip(self.tooltip_for(*cell) if cell[0] >= 0 else "")
            self.update()

    def leaveEvent(self, _ev) -> None:
        self._hover = (-1, -1)
        self.update()

    def mousePressEvent(self, ev) -> None:
        cell = self.cell_at(ev.position())
        if ev.button() == Qt.LeftButton and cell[0] >= 0:
            self.headClicked.emit(*cell)
