"""A pyqtgraph axis whose ticks are token labels at integer cells (cell ``i`` spans ``[i, i+1)``).

Labels are abbreviated to ``max_chars`` and thinned so they never overlap (every k-th token, k chosen from the
pixel size of a cell; zooming in shows them all). A horizontal (bottom/top) axis draws its labels rotated by
90° so long token texts fit.
"""
from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QFontMetrics


def abbreviate(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


class TokenAxis(pg.AxisItem):
    def __init__(self, orientation: str, *, max_chars: int = 12, **kw):
        super().__init__(orientation, **kw)
        self.labels: list[str] = []
        self.max_chars = max_chars
        self.rotated = orientation in ("bottom", "top")
        self.setStyle(tickLength=4, autoExpandTextSpace=False, hideOverlappingLabels=False)
        self.emphasis: set[int] = set()  # indices drawn bold in the highlight colour
        self.emphasis_colour = "#D55E00"

    # --- public ---------------------------------------------------------------------------------------------
    def set_labels(self, labels: list[str]) -> None:
        self.labels = [abbreviate(s, self.max_chars) for s in labels]
        self._fit_extent()
        self.picture = None
        self.update()

    def set_font(self, font) -> None:
        self.setStyle(tickFont=font)
        self._fit_extent()

    def set_emphasis(self, indices) -> None:
        new = {i for i in indices if i >= 0}
        if new != self.emphasis:
            self.emphasis = new
            self.picture = None
            self.update()

    # --- pyqtgraph hooks ------------------------------------------------------------------------------------
    def _line_height(self) -> float:
        return QFontMetrics(self.style["tickFont"] or self.font()).height()

    def _fit_extent(self) -> None:
        fm = QFontMetrics(self.style["tickFont"] or self.font())
        widest = max((fm.horizontalAdvance(s) for s in self.labels), default=fm.horizontalAdvance("00"))
        if len(self.labels) > 12:  # room for the index shown when labels are thinned
            widest += fm.horizontalAdvance(f"{len(self.labels)}: ")
        extent = widest + 12
        if self.label.isVisible():
            extent += self.label.boundingRect().height() * 0.8
        if self.rotated:
            self.setHeight(int(extent))
        else:
            self.setWidth(int(extent))

    def tickValues(self, minVal, maxVal, size):
        n = len(self.labels)
        minVal, maxVal = min(minVal, maxVal), max(minVal, maxVal)  # an inverted view passes them reversed
        if n == 0 or size <= 0 or maxVal <= minVal:
            return []
        px_per_cell = size / (maxVal - minVal)
        step = max(1, math.ceil(self._line_height() * 1.05 / max(px_per_cell, 1e-9)))
        if step > 1:  # round to 2, 5, 10, 20, 50 … so the labelled positions read as a pattern
            step = min(s for s in (2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 10**9) if s >= step)
        first = max(0, math.ceil(minVal - 0.5))
        first += (-first) % step
        last = min(n - 1, math.floor(maxVal - 0.5))
        return [(float(step), [i + 0.5 for i in range(first, last + 1, step)])]

    def tickStrings(self, values, scale, spacing):
        # a short stand-in (the index) passes pyqtgraph's bounds checks; drawPicture draws the real label
        return [str(int(v)) for v in values]

    def drawPicture(self, p, axisSpec, tickSpecs, textSpecs):
        super().drawPicture(p, axisSpec, tickSpecs, [])
        font = self.style["tickFont"] or self.font()
        bold = pg.QtGui.QFont(font)
        bold.setBold(True)
        fm = QFontMetrics(font)
        h = fm.height()
        bounding = self.boundingRect()
        p.setClipRect(bounding)
        offset = max(0, self.style["tickLength"]) + 3
        thinned = len(textSpecs) > 1 and len(textSpecs) < len(self.labels) - 1
        for rect, _flags, text in textSpecs:
            try:
                idx = int(text)
            except ValueError:
                continue
            if not 0 <= idx < len(self.labels):
                continue
            label = self.labels[idx]
            if thinned:  # only every k-th token is labelled: say which one
                label = f"{idx}: {label}"
            if idx in self.emphasis:
                p.setFont(bold)
                p.setPen(pg.mkPen(self.emphasis_colour))
            else:
                p.setFont(font)
                p.setPen(self.textPen())
            w = fm.horizontalAdvance(label) + 12
            c = rect.center()
            p.save()
            if self.orientation == "bottom":
                p.translate(c.x(), bounding.top() + offset)
                p.rotate(-90)
                p.drawText(QRectF(-w, -h / 2, w, h), int(Qt.AlignRight | Qt.AlignVCenter), label)
            elif self.orientation == "top":
                p.translate(c.x(), bounding.bottom() - offset)
                p.rotate(-90)
                p.drawText(QRectF(0, -h / 2, w, h), int(Qt.AlignLeft | Qt.AlignVCenter), label)
            elif self.orientation == "left":
                x = bounding.right() - offset
                p.drawText(QRectF(x - w, c.y() - h / 2, w, h), int(Qt.AlignRight | Qt.AlignVCenter), label)
            else:
                x = bounding.left() + offset
                p.drawText(QRectF(x, c.y() - h / 2, w, h), int(Qt.AlignLeft | Qt.AlignVCenter), label)
            p.restore()
