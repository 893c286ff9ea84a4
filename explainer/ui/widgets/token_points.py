"""The tokens' points on the embedding map: markers of a fixed size in pixels at positions in the map's units.

pyqtgraph's scatter item takes new data by rebuilding its per-point records and styling every point through its
pen and brush machinery, which at every keystroke costs more than drawing them. This item keeps two arrays and a
style per point. Each style (symbol, size, fill, outline) is drawn once into a small image with pyqtgraph's own
symbol renderer, so the points look exactly as a scatter item draws them, and each point is that image placed
at its pixel; where the painter does not draw into pixels (an SVG export) each point is drawn as a vector
symbol instead.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from pyqtgraph.graphicsItems.ScatterPlotItem import drawSymbol, renderSymbol  # what its scatter item draws with
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QImage, QPaintEngine
from PySide6.QtWidgets import QGraphicsObject

# a point's look: (symbol "o" or "d", size in px, fill colour, outline colour, outline width in px)
Style = tuple[str, float, str, str, float]


class TokenPoints(QGraphicsObject):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._xy = np.zeros((0, 2), np.float64)
        self._styles: list[Style] = []
        self._extent = QRectF()  # where points can be: the map's range (see set_extent)
        self._sprites: dict[tuple[Style, float], QImage] = {}  # (style, device pixel ratio) -> its image
        self._pens: dict[tuple[str, float], object] = {}
        self._brushes: dict[str, object] = {}

    # --- data ------------------------------------------------------------------------------------------------
    def set_points(self, xy: np.ndarray, styles: list[Style]) -> None:
        """``xy [n, 2]`` in the map's units and one style per point; drawn in this order (later on top)."""
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        if len(styles) != len(xy):
            raise ValueError("one style per point")
        if np.array_equal(xy, self._xy) and styles == self._styles:
            return
        self._xy, self._styles = xy.copy(), list(styles)
        self.update()

    def set_extent(self, rect: QRectF) -> None:
        """The area the points are drawn in (the map's range); a point's marker may reach a little past it."""
        if rect != self._extent:
            self.prepareGeometryChange()
            self._extent = QRectF(rect)

    def positions(self) -> np.ndarray:
        """``[n, 2]``: where the points are drawn, in the map's units."""
        return self._xy.copy()

    def styles(self) -> list[Style]:
        return list(self._styles)

    def sprite_count(self) -> int:
        """How many point images are kept (one per style and screen)."""
        return len(self._sprites)

    # --- QGraphicsItem ---------------------------------------------------------------------------------------
    def boundingRect(self) -> QRectF:
        return self._extent

    def paint(self, p, option, widget=None) -> None:
        n = len(self._xy)
        if n == 0:
            return
        t = p.transform()  # map units → device pixels
        x, y = self._xy[:, 0], self._xy[:, 1]
        px = t.m11() * x + t.m21() * y + t.dx()
        py = t.m12() * x + t.m22() * y + t.dy()
        raster = p.paintEngine() is not None and p.paintEngine().type() == QPaintEngine.Raster
        p.save()
        p.resetTransform()
        if raster:
            dpr = p.device().devicePixelRatioF() if p.device() is not None else 1.0
            for i, style in enumerate(self._styles):
                img = self._sprite(style, dpr)
                w, h = img.width() / dpr, img.height() / dpr
                p.drawImage(QPointF(px[i] - w / 2, py[i] - h / 2), img)
        else:
            for i, (symbol, size, fill, line, width) in enumerate(self._styles):
                p.resetTransform()
                p.translate(px[i], py[i])
                drawSymbol(p, symbol, size, self._pen(line, width), self._brush(fill))
        p.restore()

    # --- styles ----------------------------------------------------------------------------------------------
    def _sprite(self, style: Style, dpr: float) -> QImage:
        key = (style, dpr)
        img = self._sprites.get(key)
        if img is None:
            symbol, size, fill, line, width = style
            if len(self._sprites) > 64:  # styles come from a few colours and sizes; a theme change makes new ones
                self._sprites.clear()
            img = self._sprites[key] = renderSymbol(symbol, size, self._pen(line, width), self._brush(fill), dpr=dpr)
        return img

    def _pen(self, colour: str, width: float):
        key = (colour, width)
        if key not in self._pens:
            self._pens[key] = pg.mkPen(colour, width=width)
        return self._pens[key]

    def _brush(self, colour: str):
        if colour not in self._brushes:
            self._brushes[colour] = pg.mkBrush(colour)
        return self._brushes[colour]
