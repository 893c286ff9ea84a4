"""The activation-patching view: a layers × positions heatmap of P(the clean answer) when the corrupted run gets
the clean run's residual stream at one layer and position, filled row by row while the worker computes it.

Rows are layers 1…L (top = first), columns the positions, labelled with both texts' tokens ("France/Italy"
where they differ). Hovering a cell reads out its number; the colour runs from 0 to the largest probability in
the grid (the theme's sequential map), unfilled rows show the backdrop.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import QGraphicsRectItem

from explainer.ui import theme as th
from explainer.ui.theme import token_font


def pair_label(clean: str, corrupt: str) -> str:
    return clean if clean == corrupt else f"{clean}/{corrupt}"


class PatchHeatmap(pg.PlotWidget):
    cellHovered = Signal(int, int)  # (layer, position), (-1, -1) when none

    def __init__(self, parent=None):
        super().__init__(parent, enableMenu=False)
        self.setFocusPolicy(Qt.NoFocus)
        item = self.getPlotItem()
        item.hideButtons()
        item.setMouseEnabled(x=False, y=False)
        item.setLabel("left", "layer (residual after it)")
        item.setLabel("bottom", "position patched (clean/corrupted token)")
        self.vb = item.getViewBox()
        self.vb.invertY(True)
        self.vb.setDefaultPadding(0.0)
        self.backdrop = QGraphicsRectItem()
        self.backdrop.setPen(pg.mkPen(None))
        self.backdrop.setZValue(-10)
        self.addItem(self.backdrop)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.addItem(self.image)
        self.grid = np.zeros((0, 0), np.float32)  # [L, T], NaN where not yet computed
        self.labels: list[str] = []
        self.vmax = 1.0
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self._hovered = (-1, -1)
        self.set_theme(th.LIGHT)

    def set_theme(self, theme: th.Theme) -> None:
        self.theme = theme
        self.setBackground(theme.background)
        self.backdrop.setBrush(pg.mkBrush(theme.grid))
        self.image.setColorMap(pg.colormap.get(theme.colormap))
        font = token_font(self.font(), 11)
        for name in ("left", "bottom"):
            ax = self.getPlotItem().getAxis(name)
            ax.setStyle(tickFont=font, tickLength=0)
            ax.label.setFont(font)
            ax.setTextPen(theme.text)
            ax.setPen(theme.muted)

    def start(self, n_layers: int, labels: list[str], vmax: float) -> None:
        """An empty grid of ``n_layers`` rows and one column per label; colours from 0 to ``vmax``."""
        self.grid = np.full((n_layers, len(labels)), np.nan, np.float32)
        self.labels, self.vmax = labels, max(float(vmax), 1e-6)
        T = len(labels)
        self.backdrop.setRect(QRectF(0, 0, T, n_layers))
        item = self.getPlotItem()
        item.getAxis("bottom").setTicks([[(i + 0.5, s) for i, s in enumerate(labels)]])
        step = 1 if n_layers <= 12 else 5
        ticks = [(i + 0.5, str(i + 1)) for i in range(n_layers) if i == 0 or (i + 1) % step == 0]
        item.getAxis("left").setTicks([ticks])
        self.vb.setRange(QRectF(0, 0, max(1, T), max(1, n_layers)), padding=0)
        self._draw()

    def set_row(self, layer: int, row: np.ndarray) -> None:
        self.grid[layer] = row
        self.vmax = max(self.vmax, float(np.nanmax(row)) if np.isfinite(row).any() else 0.0)
        self._draw()

    def set_grid(self, grid: np.ndarray) -> None:
        self.grid = np.array(grid, np.float32)
        if np.isfinite(self.grid).any():
            self.vmax = max(self.vmax, float(np.nanmax(self.grid)))
        self._draw()

    @property
    def rows_filled(self) -> int:
        return int(np.isfinite(self.grid).all(axis=1).sum()) if self.grid.size else 0

    def _draw(self) -> None:
        g = self.grid
        if g.size == 0:
            self.image.clear()
            return
        cmap = pg.colormap.get(self.theme.colormap)
        lut = cmap.getLookupTable(0.0, 1.0, 256, alpha=False)
        idx = np.clip(np.nan_to_num(g / self.vmax, nan=0.0) * 255, 0, 255).astype(np.int64)
        rgba = np.dstack([lut[idx], np.where(np.isnan(g), 0, 255)]).astype(np.uint8)
        self.image.setImage(rgba, autoLevels=False)
        self.image.setRect(QRectF(0, 0, g.shape[1], g.shape[0]))

    def cell_at(self, scene_pos) -> tuple[int, int]:
        if self.grid.size == 0 or not self.vb.sceneBoundingRect().contains(scene_pos):
            return (-1, -1)
        p = self.vb.mapSceneToView(scene_pos)
        layer, pos = int(np.floor(p.y())), int(np.floor(p.x()))
        if 0 <= layer < self.grid.shape[0] and 0 <= pos < self.grid.shape[1]:
            return (layer, pos)
        return (-1, -1)

    def _on_mouse_moved(self, scene_pos) -> None:
        cell = self.cell_at(scene_pos)
        if cell != self._hovered:
            self._hovered = cell
            self.cellHovered.emit(*cell)

    def leaveEvent(self, ev):
        self._on_mouse_moved(pg.QtCore.QPointF(-1e9, -1e9))
        super().leaveEvent(ev)
