"""The tokens' points on the embedding map: markers of a fixed size in pixels at positions in the map's units.

pyqtgraph's scatter item takes new data by rebuilding its per-point records and styling every point through its
pen and brush machinery, which at every keystroke costs more than drawing them. This item keeps two arrays and a
style per point. Each style (symbol, size, fill, outline) is drawn once with pyqtgraph's own symbol renderer into
one strip of images (an atlas), so the points look exactly as a scatter item draws them, and all points are
placed from it in one call, as that item places its own; where the painter does not draw into pixels (an SVG
export) each point is drawn as a vector symbol instead.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from pyqtgraph.graphicsItems.ScatterPlotItem import drawSymbol, renderSymbol  # what its scatter item draws with
from pyqtgraph.Qt.internals import PrimitiveArray  # a C array of fragments for one drawPixmapFragments call
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QPaintEngine, QPainter, QPixmap
from PySide6.QtWidgets import QGraphicsObject

from explainer.ui.widgets.view_redraw import redraw_in_views

# a point's look: (symbol "o" or "d", size in px, fill colour, outline colour, outline width in px)
Style = tuple[str, float, str, str, float]
MAX_MOVED = 8  # more points moving at once: the whole item is drawn again


class TokenPoints(QGraphicsObject):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._xy = np.zeros((0, 2), np.float64)
        self._styles: list[Style] = []
        self._extent = QRectF()  # where points can be: the map's range (see set_extent)
        self._atlas: tuple[float, QPixmap, dict[Style, tuple[int, int, int, int]]] | None = None  # see _atlas_for
        self._fragments = PrimitiveArray(QPainter.PixmapFragment, 10)

    # --- data ------------------------------------------------------------------------------------------------
    def set_points(self, xy: np.ndarray, styles: list[Style]) -> None:
        """``xy [n, 2]`` in the map's units and one style per point; drawn in this order (later on top)."""
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        if len(styles) != len(xy):
            raise ValueError("one style per point")
        if np.array_equal(xy, self._xy) and styles == self._styles:
            return
        moved = self._moved_area(xy, styles)
        self._xy, self._styles = xy.copy(), list(styles)
        if not redraw_in_views(self, moved):  # (in the window's next repaint; None: the whole item)
            self.update()

    def _moved_area(self, xy: np.ndarray, styles: list[Style]) -> QRectF | None:
        """Where the picture changes when only a few points move (the same points, styles and order: a new last
        token of the same text), in item units: around each one's old and new place. None: everywhere."""
        if len(xy) != len(self._xy) or styles != self._styles or self.scene() is None or not self.scene().views():
            return None
        moved = np.flatnonzero(np.any(xy != self._xy, axis=1))
        if len(moved) > MAX_MOVED or not (np.isfinite(xy[moved]).all() and np.isfinite(self._xy[moved]).all()):
            return None
        t = self.deviceTransform(self.scene().views()[0].viewportTransform())
        px_x, px_y = abs(t.m11()) + abs(t.m21()), abs(t.m12()) + abs(t.m22())  # pixels per unit
        if px_x <= 0 or px_y <= 0:
            return None
        reach = max(size / 2 + width for _symbol, size, _fill, _line, width in (styles[i] for i in moved)) + 2
        area = QRectF()
        for x, y in np.concatenate([self._xy[moved], xy[moved]]):
            area |= QRectF(x - reach / px_x, y - reach / px_y, 2 * reach / px_x, 2 * reach / px_y)
        return area

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
        """How many point images the atlas holds (one per style drawn so far)."""
        return len(self._atlas[2]) if self._atlas is not None else 0

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
            pixmap, places = self._atlas_for(dpr)
            self._fragments.resize(n)
            frags = self._fragments.ndarray()  # per point: centre x, y, source rect, scale x, y, rotation, opacity
            frags[:, 0] = px
            frags[:, 1] = py
            frags[:, 2:6] = [places[style] for style in self._styles]
            frags[:, 6:10] = [1 / dpr, 1 / dpr, 0.0, 1.0]
            p.drawPixmapFragments(*self._fragments.drawargs(), pixmap)
        else:
            for i, (symbol, size, fill, line, width) in enumerate(self._styles):
                p.resetTransform()
                p.translate(px[i], py[i])
                drawSymbol(p, symbol, size, pg.mkPen(line, width=width), pg.mkBrush(fill))
        p.restore()

    # --- styles ----------------------------------------------------------------------------------------------
    def _atlas_for(self, dpr: float) -> tuple[QPixmap, dict[Style, tuple[int, int, int, int]]]:
        """One pixmap with an image of each style shown (side by side), and where each is in it: drawn again
        only when a new style appears or the screen's pixel ratio changes."""
        atlas = self._atlas
        styles = set(self._styles)
        if atlas is not None and atlas[0] == dpr and styles <= atlas[2].keys():
            return atlas[1], atlas[2]
        known = set(atlas[2]) if atlas is not None and atlas[0] == dpr and len(atlas[2]) < 64 else set()
        kept = sorted(known | styles)  # (styles come from a few colours and sizes; a theme change makes new ones)
        images = [
            renderSymbol(symbol, size, pg.mkPen(line, width=width), pg.mkBrush(fill), dpr=dpr)
            for symbol, size, fill, line, width in kept
        ]
        pixmap = QPixmap(max(1, sum(i.width() for i in images)), max([1] + [i.height() for i in images]))
        pixmap.fill(Qt.transparent)
        places, x = {}, 0
        painter = QPainter(pixmap)
        for style, image in zip(kept, images):
            painter.drawImage(x, 0, image)
            places[style] = (x, 0, image.width(), image.height())
            x += image.width()
        painter.end()
        pixmap.setDevicePixelRatio(1.0)  # source rectangles are in its pixels; fragments scale them by 1 / dpr
        self._atlas = (dpr, pixmap, places)
        return pixmap, places
