"""A layers × heads grid with one number per head, as a colour (the heatmap's colour map, 0 to 1).

Beside the heatmap the layers are rows (top = first layer) and the heads columns; below it (``transposed``) the
layers are columns and the heads rows. Cells are square. Clicking a cell emits ``headClicked(layer, head)``;
Ctrl- or Shift-clicking it ``headToggled(layer, head)`` (knock it out or back in), a right click
``headMenuRequested(layer, head, global_pos)``; knocked-out heads (``set_marked``) carry a cross;
hovering one emits ``headHovered(layer, head)`` ((-1, -1) on leaving) and outlines it; the selected head (or the
whole layer, for the head average) is outlined in the highlight colour. NaN cells (no value) show the backdrop.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetricsF, QImage, QPainter, QPainterPath, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from explainer.ui import theme as th
from explainer.ui.widgets.cell_colours import CellImage, colour_table, show_cells
from explainer.ui.widgets.plot_cache import cache_fixed_parts
from explainer.ui.widgets.token_axis import show_title, without_unit_prefixes

MIN_CELL_PX = 8  # a head's cell is never smaller than this (the grid hides instead)


class HeadGrid(pg.PlotWidget):
    headClicked = Signal(int, int)
    headHovered = Signal(int, int)  # (-1, -1) when the pointer leaves the grid
    headToggled = Signal(int, int)  # Ctrl- or Shift-click: knock the head out or back in
    headMenuRequested = Signal(int, int, object)  # right click: (layer, head, global QPoint)

    def __init__(self, parent=None):
        super().__init__(parent, enableMenu=False)
        self.setFocusPolicy(Qt.NoFocus)
        self.viewport().setFocusPolicy(Qt.NoFocus)  # a plot is used with the mouse; its panel takes the keys
        self.n_layers = self.n_heads = 0
        self.transposed = False  # True: layers are columns
        self.values = np.zeros((0, 0), np.float32)
        self._tick_steps = None
        item = self.getPlotItem()
        without_unit_prefixes(item)
        item.hideButtons()
        item.setMouseEnabled(x=False, y=False)
        item.showAxis("top")
        item.hideAxis("bottom")
        for name in ("top", "left"):  # the numbers are spaced by _numbered: none is dropped at an edge
            item.getAxis(name).setStyle(tickLength=0, hideOverlappingLabels=False)
        self.vb = item.getViewBox()
        self.vb.invertY(True)
        self.vb.setDefaultPadding(0.0)
        self.vb.sigResized.connect(lambda *_: self.reset_view())
        self.backdrop = QGraphicsRectItem()
        self.backdrop.setPen(pg.mkPen(None))
        self.backdrop.setZValue(-10)
        self.addItem(self.backdrop)
        self.image = CellImage(axisOrder="row-major")  # the cells, coloured here (cell_colours)
        self._table = colour_table(pg.colormap.get(th.LIGHT.colormap))
        self.addItem(self.image)
        self.outline = self._rect(pg.mkPen(th.HIGHLIGHT, width=3, cosmetic=True), 10)
        self.hover = self._rect(pg.mkPen("#ffffff", width=2, cosmetic=True), 9)
        # knocked-out heads: a cross over the cell, light on a dark outline (cosmetic pens: the same on any size)
        self.marks = QGraphicsPathItem()
        self.marks_edge = QGraphicsPathItem()
        for item, z in ((self.marks_edge, 7), (self.marks, 8)):
            item.setZValue(z)
            self.addItem(item)
        self.marked: frozenset[tuple[int, int]] = frozenset()
        self._mark_colours = ("#ffffff", "#111111")
        self.n_marks = 0
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.scene().sigMouseClicked.connect(self._on_mouse_clicked)
        self._hovered = (-1, -1)
        self._selected: tuple[int, int | None] = (-1, None)
        self._fix_axes()
        cache_fixed_parts(self)

    def _rect(self, pen, z: int) -> QGraphicsRectItem:
        r = QGraphicsRectItem()
        r.setPen(pen)
        r.setZValue(z)
        r.hide()
        self.addItem(r)
        return r

    # --- looks ------------------------------------------------------------------------------------------------------
    def set_axis_style(self, font, text_colour: str, line_colour: str) -> None:
        """Numbers and titles in ``font`` (readable on a projector) and the theme's colours."""
        item = self.getPlotItem()
        for name in ("top", "left"):
            ax = item.getAxis(name)
            ax.setStyle(tickFont=font)
            ax.label.setFont(font)
            ax.setTextPen(text_colour)
            ax.setPen(line_colour)
        self._font = font
        self._fix_axes()
        self._tick_steps = None
        self._update_ticks()

    def _fix_axes(self) -> None:
        """Axis sizes from the font (not from what was last drawn), so the grid's size can be planned."""
        fm = QFontMetricsF(getattr(self, "_font", None) or self.font())
        item = self.getPlotItem()
        self._margins = (2.0, 4.0, 4.0, fm.height() / 2)  # the last row's number reaches below the grid
        item.setContentsMargins(*self._margins)
        digits = fm.horizontalAdvance(str(max(9, self.rows)))
        self._axes = (math.ceil(digits + 2 * fm.height() + 4), math.ceil(2 * fm.height() + 6))
        item.getAxis("left").setWidth(self._axes[0])
        item.getAxis("top").setHeight(self._axes[1])

    def set_colormap(self, cmap: pg.ColorMap) -> None:
        self._table = colour_table(cmap)
        self._draw()

    def set_backdrop(self, colour: str) -> None:
        self.backdrop.setBrush(pg.mkBrush(colour))

    def set_marked(self, heads, fill: str | None = None, edge: str | None = None) -> None:
        """Cross out these ``(layer, head)`` cells (the knocked-out heads), in ``fill`` outlined by ``edge``."""
        self.marked = frozenset(heads)
        self._mark_colours = (fill or self._mark_colours[0], edge or self._mark_colours[1])
        self._draw_marks()

    def _draw_marks(self) -> None:
        cells = [self._cell(la, h) for la, h in sorted(self.marked) if la < self.n_layers and h < self.n_heads]
        path = QPainterPath()
        for x, y in cells:
            path.moveTo(x + 0.12, y + 0.12)
            path.lineTo(x + 0.88, y + 0.88)
            path.moveTo(x + 0.88, y + 0.12)
            path.lineTo(x + 0.12, y + 0.88)
        fill, edge = self._mark_colours
        self.marks.setPath(path)
        self.marks.setPen(pg.mkPen(fill, width=2, cosmetic=True))
        self.marks_edge.setPath(path)
        self.marks_edge.setPen(pg.mkPen(edge, width=4, cosmetic=True))
        self.n_marks = len(cells)

    # --- shape and data -------------------------------------------------------------------------------------------
    @property
    def columns(self) -> int:
        return self.n_layers if self.transposed else self.n_heads

    @property
    def rows(self) -> int:
        return self.n_heads if self.transposed else self.n_layers

    def set_shape(self, n_layers: int, n_heads: int, transposed: bool | None = None) -> None:
        transposed = self.transposed if transposed is None else transposed
        if (n_layers, n_heads, transposed) == (self.n_layers, self.n_heads, self.transposed):
            return
        self.n_layers, self.n_heads, self.transposed = n_layers, n_heads, transposed
        self._fix_axes()
        self._tick_steps = None
        item = self.getPlotItem()
        show_title(item.getAxis("left"), "head" if transposed else "layer")  # (centred again on their axes)
        show_title(item.getAxis("top"), "layer" if transposed else "head")
        self.backdrop.setRect(QRectF(0, 0, self.columns, self.rows))
        self._draw()
        self._draw_marks()
        self.set_selected(*self._selected)
        self.reset_view()

    def set_values(self, values: np.ndarray) -> None:
        """``values [L, H]`` in [0, 1], NaN where a head has no value."""
        self.values = np.asarray(values, np.float32)
        self._draw()

    def _draw(self) -> None:
        v = self.values
        if v.shape != (self.n_layers, self.n_heads) or v.size == 0:
            self.image.clear()
            return
        show_cells(self.image, v.T if self.transposed else v, self._table)
        self.image.setRect(QRectF(0, 0, self.columns, self.rows))

    def value(self, layer: int, head: int) -> float:
        try:
            return float(self.values[layer, head])
        except IndexError:
            return float("nan")

    def _cell(self, layer: int, head: int) -> tuple[int, int]:
        """(x, y) of a head's cell in view coordinates."""
        return (layer, head) if self.transposed else (head, layer)

    def set_selected(self, layer: int, head: int | None) -> None:
        """Outline one head, or the whole layer when ``head`` is None (the head average)."""
        self._selected = (layer, head)
        if not 0 <= layer < self.n_layers:
            self.outline.hide()
            return
        if head is None:
            rect = QRectF(layer, 0, 1, self.n_heads) if self.transposed else QRectF(0, layer, self.n_heads, 1)
        else:
            x, y = self._cell(layer, head)
            rect = QRectF(x, y, 1, 1)
        self.outline.setRect(rect)
        self.outline.show()

    # --- size -------------------------------------------------------------------------------------------------------
    def chrome(self) -> tuple[float, float]:
        """The pixels around the cells (axes, titles, margins), width and height."""
        left, top, right, bottom = self._margins
        return self._axes[0] + left + right + 1, self._axes[1] + top + bottom + 1

    def size_for_cell(self, cell: float, columns: int | None = None, rows: int | None = None) -> QSize:
        """Its size with cells of ``cell`` pixels (``columns`` × ``rows`` of them: by default as it is turned now)."""
        cw, ch = self.chrome()
        columns = self.columns if columns is None else columns
        rows = self.rows if rows is None else rows
        return QSize(int(np.ceil(columns * cell + cw)), int(np.ceil(rows * cell + ch)))

    def cell_px(self) -> float:
        """The size of a cell on screen (0 before layout)."""
        vb = self.vb.sceneBoundingRect()
        return min(vb.width() / max(1, self.columns), vb.height() / max(1, self.rows))

    def reset_view(self) -> None:
        self.vb.setRange(QRectF(0, 0, max(1, self.columns), max(1, self.rows)), padding=0)
        self._update_ticks()

    def _update_ticks(self) -> None:
        """Number every head and layer where the numbers fit their cells, else every 2nd, 5th, 10th …"""
        item = self.getPlotItem()
        fm = QFontMetricsF(item.getAxis("top").style["tickFont"] or self.font())
        vb = self.vb.sceneBoundingRect()
        cell_w = vb.width() / max(1, self.columns) if vb.width() > 0 else 1e9
        cell_h = vb.height() / max(1, self.rows) if vb.height() > 0 else 1e9
        need = ((fm.horizontalAdvance(str(max(1, self.columns))) + 4) / cell_w, fm.height() * 0.95 / cell_h)
        ticks = (_numbered(self.columns, need[0]), _numbered(self.rows, need[1]))
        if ticks == self._tick_steps:
            return
        self._tick_steps = ticks
        item.getAxis("top").setTicks([ticks[0]])
        item.getAxis("left").setTicks([ticks[1]])

    # --- mouse ------------------------------------------------------------------------------------------------------
    def cell_at(self, scene_pos) -> tuple[int, int]:
        """(layer, head) under a scene position, or (-1, -1)."""
        if not self.vb.sceneBoundingRect().contains(scene_pos):
            return (-1, -1)
        p = self.vb.mapSceneToView(scene_pos)
        x, y = int(np.floor(p.x())), int(np.floor(p.y()))
        layer, head = (x, y) if self.transposed else (y, x)
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
        else:
            x, y = self._cell(*cell)
            self.hover.setRect(QRectF(x, y, 1, 1))
            self.hover.show()
        self.headHovered.emit(*cell)

    def _on_mouse_clicked(self, ev) -> None:
        cell = self.cell_at(ev.scenePos())
        if cell[0] < 0:
            return
        if ev.button() == Qt.RightButton:
            ev.accept()
            self.headMenuRequested.emit(*cell, ev.screenPos().toPoint())
        elif ev.button() == Qt.LeftButton:
            ev.accept()
            if ev.modifiers() & (Qt.ControlModifier | Qt.ShiftModifier):
                self.headToggled.emit(*cell)
            else:
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


class HeadPreview(QFrame):
    """A small picture of one head's map and a line of text, floating next to the pointer (a hover preview)."""

    SIZE = 150

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent, Qt.ToolTip | Qt.FramelessWindowHint)
        self.setObjectName("headPreview")
        self.setAttribute(Qt.WA_ShowWithoutActivating)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.setSpacing(4)
        self.picture = QLabel()
        self.picture.setFixedSize(self.SIZE, self.SIZE)
        self.caption = QLabel()
        self.caption.setTextFormat(Qt.RichText)
        self.caption.setWordWrap(True)
        self.caption.setFixedWidth(self.SIZE)
        lay.addWidget(self.picture)
        lay.addWidget(self.caption)

    def show_map(self, pooled: np.ndarray, cmap: pg.ColorMap, caption: str, theme: th.Theme, at) -> None:
        """Draw ``pooled [n, n]`` (0..1, NaN empty) with ``cmap`` and show the preview near the global point ``at``."""
        self.setStyleSheet(
            f"QFrame#headPreview {{ background: {theme.background}; border: 1px solid {theme.grid}; }}"
            f" QLabel {{ color: {theme.text}; }}"
        )
        self.picture.setPixmap(render_map(pooled, cmap, theme.grid, self.SIZE))
        self.caption.setText(caption)
        self.adjustSize()
        screen = self.screen().availableGeometry() if self.screen() else None
        x, y = at.x() + 16, at.y() + 16
        if screen is not None:
            x = min(x, screen.right() - self.width())
            y = min(y, screen.bottom() - self.height())
        self.move(x, y)
        self.show()


def render_map(pooled: np.ndarray, cmap: pg.ColorMap, empty: str, size: int) -> QPixmap:
    """``pooled [n, n]`` as a ``size``-pixel square picture: colours from ``cmap`` (0..1), NaN in ``empty``."""
    n = pooled.shape[0]
    pix = QPixmap(size, size)
    pix.fill(QColor(empty))
    if n == 0:
        return pix
    lut = cmap.getLookupTable(0.0, 1.0, 256, alpha=False)  # [256, 3] uint8
    idx = np.clip(np.nan_to_num(pooled, nan=0.0) * 255, 0, 255).astype(np.int64)
    rgb = lut[idx].astype(np.uint8)
    alpha = np.where(np.isnan(pooled), 0, 255).astype(np.uint8)
    rgba = np.ascontiguousarray(np.dstack([rgb, alpha]))
    img = QImage(rgba.data, n, n, 4 * n, QImage.Format_RGBA8888).copy()
    p = QPainter(pix)
    p.drawImage(QRectF(0, 0, size, size), img)
    p.end()
    return pix
