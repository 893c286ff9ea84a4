"""A grid of small attention maps, one per (layer, head), drawn as a single image mosaic.

Rows are layers (top = first layer), columns are heads. One ``ImageItem`` holds every thumbnail, so an update
is one image upload however many heads there are. Clicking a thumbnail emits ``headClicked(layer, head)``;
the selected one is outlined.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QFontMetricsF
from PySide6.QtWidgets import QGraphicsRectItem

from explainer.ui import theme as th


class HeadGrid(pg.PlotWidget):
    headClicked = Signal(int, int)
    headHovered = Signal(int, int)  # (-1, -1) when the pointer leaves the grid

    def __init__(self, parent=None):
        super().__init__(parent, enableMenu=False)
        self.setFocusPolicy(Qt.NoFocus)
        self.n_layers = self.n_heads = 0
        self._tick_steps = None  # the (heads, layers) ticks shown
        item = self.getPlotItem()
        item.hideButtons()
        item.setMouseEnabled(x=False, y=False)
        item.showAxis("top")
        item.hideAxis("bottom")
        for name in ("top", "left"):
            item.getAxis(name).setStyle(tickLength=0)
        self.vb = item.getViewBox()
        self.vb.invertY(True)
        self.vb.setDefaultPadding(0.0)
        self.vb.sigResized.connect(lambda *_: self.reset_view())
        self.vb.setAspectLocked(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLevels((0.0, 1.0))
        self.addItem(self.image)
        self.outline = QGraphicsRectItem()
        self.outline.setPen(pg.mkPen(th.HIGHLIGHT, width=3, cosmetic=True))
        self.outline.setZValue(10)
        self.outline.hide()
        self.addItem(self.outline)
        self.hover = QGraphicsRectItem()
        self.hover.setPen(pg.mkPen(th.HIGHLIGHT, width=1, style=Qt.DashLine, cosmetic=True))
        self.hover.setZValue(9)
        self.hover.hide()
        self.addItem(self.hover)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.scene().sigMouseClicked.connect(self._on_mouse_clicked)
        self._hovered = (-1, -1)

    def set_axis_style(self, font, text_colour: str, line_colour: str) -> None:
        """Numbers and titles in ``font`` (readable on a projector) and the theme's colours."""
        item = self.getPlotItem()
        for name in ("top", "left"):
            ax = item.getAxis(name)
            ax.setStyle(tickFont=font)
            ax.label.setFont(font)
            ax.setTextPen(text_colour)
            ax.setPen(line_colour)
        half_line = QFontMetricsF(font).height() / 2  # the last layer's number reaches below the grid
        item.setContentsMargins(2, 6, 2, half_line)  # and the "head" title above the axis
        self._tick_steps = None
        self._update_ticks()

    def set_colormap(self, cmap: pg.ColorMap) -> None:
        self.image.setColorMap(cmap)

    def set_shape(self, n_layers: int, n_heads: int) -> None:
        if (n_layers, n_heads) == (self.n_layers, self.n_heads):
            return
        self.n_layers, self.n_heads = n_layers, n_heads
        self._tick_steps = None
        item = self.getPlotItem()
        item.setLabel("left", "layer")
        item.setLabel("top", "head")
        self.reset_view()

    def reset_view(self) -> None:
        """Fit the grid; thumbnails may be up to 1.8× wider than tall to use the space beside the heatmap."""
        w, h = self.vb.width(), self.vb.height()
        nh, nl = max(1, self.n_heads), max(1, self.n_layers)
        if w > 0 and h > 0:
            ratio = float(np.clip((w / nh) / (h / nl), 1.0, 1.8))
            if self.vb.state["aspectLocked"] != ratio:
                self.vb.setAspectLocked(True, ratio=ratio)
        self.vb.setRange(QRectF(0, 0, nh, nl), padding=0)
        self._update_ticks()

    def _update_ticks(self) -> None:
        """Number every head and layer where the numbers fit their cells, else every 2nd, 5th, 10th …"""
        item = self.getPlotItem()
        fm = QFontMetricsF(item.getAxis("top").style["tickFont"] or self.font())
        try:
            px_w, px_h = self.vb.viewPixelSize()
        except Exception:  # noqa: BLE001 - not laid out yet
            px_w = px_h = 0.0
        cell_w = 1.0 / px_w if px_w > 0 else 1e9
        cell_h = 1.0 / px_h if px_h > 0 else 1e9
        need = ((fm.horizontalAdvance(str(max(1, self.n_heads))) + 4) / cell_w, fm.height() * 0.95 / cell_h)
        ticks = (_numbered(self.n_heads, need[0]), _numbered(self.n_layers, need[1]))
        if ticks == self._tick_steps:
            return
        self._tick_steps = ticks
        item.getAxis("top").setTicks([ticks[0]])
        item.getAxis("left").setTicks([ticks[1]])

    def set_mosaic(self, img: np.ndarray) -> None:
        """``img`` from ``attention_data.mosaic``; spans the whole grid (each head is a 1×1 cell)."""
        self.image.setImage(img, levels=(0.0, 1.0), autoLevels=False)
        self.image.setRect(QRectF(0, 0, self.n_heads, self.n_layers))

    def set_selected(self, layer: int, head: int | None) -> None:
        """Outline one head, or the whole layer row when ``head`` is None (the head average)."""
        if layer < 0:
            self.outline.hide()
            return
        if head is None:
            self.outline.setRect(QRectF(0, layer, self.n_heads, 1))
        else:
            self.outline.setRect(QRectF(head, layer, 1, 1))
        self.outline.show()

    def cell_at(self, scene_pos) -> tuple[int, int]:
        if not self.vb.sceneBoundingRect().contains(scene_pos):
            return (-1, -1)
        p = self.vb.mapSceneToView(scene_pos)
        layer, head = int(np.floor(p.y())), int(np.floor(p.x()))
        if 0 <= layer < self.n_layers and 0 <= head < self.n_heads:
            return (layer, head)
        return (-1, -1)

    def _on_mouse_moved(self, pos) -> None:
        cell = self.cell_at(pos)
        if cell == self._hovered:
            return
        self._hovered = cell
        if cell[0] < 0:
            self.hover.hide()
            self.setToolTip("")
        else:
            self.hover.setRect(QRectF(cell[1], cell[0], 1, 1))
            self.hover.show()
            self.setToolTip(f"layer {cell[0] + 1}, head {cell[1] + 1}: click to show it")
        self.headHovered.emit(*cell)

    def _on_mouse_clicked(self, ev) -> None:
        if ev.button() != Qt.LeftButton:
            return
        cell = self.cell_at(ev.scenePos())
        if cell[0] >= 0:
            ev.accept()
            self.headClicked.emit(*cell)

    def leaveEvent(self, ev):
        self._on_mouse_moved(pg.QtCore.QPointF(-1e9, -1e9))
        super().leaveEvent(ev)


def _numbered(n: int, cells_needed: float) -> list[tuple[float, str]]:
    """Ticks for 1…n at cell centres, at least ``cells_needed`` cells apart: all, or 1, 3, 5 …, or every 5th,
    10th … (with 1 too where it has room: 1, 5, 10 …)."""
    step = next((s for s in (1, 2, 5, 10, 20, 50, 100) if s >= cells_needed), 100)
    if step <= 2:
        keep = list(range(0, n, step))
    else:
        keep = [i for i in range(n) if (i + 1) % step == 0 or (i == 0 and step - 1 >= cells_needed)]
    return [(i + 0.5, str(i + 1)) for i in keep]
