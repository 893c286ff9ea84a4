"""A grid of small attention maps, one per (layer, head), drawn as a single image mosaic.

Rows are layers (top = first layer), columns are heads. One ``ImageItem`` holds every thumbnail, so an update
is one image upload however many heads there are. Clicking a thumbnail emits ``headClicked(layer, head)``;
the selected one is outlined.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import QGraphicsRectItem

from explainer.ui import theme as th


class HeadGrid(pg.PlotWidget):
    headClicked = Signal(int, int)
    headHovered = Signal(int, int)  # (-1, -1) when the pointer leaves the grid

    def __init__(self, parent=None):
        super().__init__(parent, enableMenu=False)
        self.setFocusPolicy(Qt.NoFocus)
        self.n_layers = self.n_heads = 0
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

    def set_colormap(self, cmap: pg.ColorMap) -> None:
        self.image.setColorMap(cmap)

    def set_shape(self, n_layers: int, n_heads: int) -> None:
        if (n_layers, n_heads) == (self.n_layers, self.n_heads):
            return
        self.n_layers, self.n_heads = n_layers, n_heads
        item = self.getPlotItem()
        step = 1 if n_layers <= 12 else 5
        left = [(i + 0.5, str(i + 1)) for i in range(n_layers) if i == 0 or (i + 1) % step == 0]
        item.getAxis("left").setTicks([left])
        item.getAxis("top").setTicks([[(h + 0.5, str(h + 1)) for h in range(n_heads)]])
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
