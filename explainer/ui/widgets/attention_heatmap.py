"""A query × key heatmap with token labels on both axes, a fixed 0..1 colour bar and an empty causal triangle.

Row ``q`` is the query token (the one looking), column ``k`` the key token (the one looked at); cell ``(q, k)``
spans ``[k, k+1) × [q, q+1)`` in view coordinates, with the first token at the top left. NaN cells (the masked
future, a hidden column) are transparent over a light grey backdrop.

Cells are square: the widget is given a size whose plot area is square (``widgets.heatmap_area``), and the view
shows whole cells. Column labels stand upright (on up to two rows), or are turned when the square leaves room below
it (``set_label_room``), else stand on three rows, else every k-th is shown. When a long text would make cells
smaller than ``MIN_CELL_PX``, the view shows the ``MIN_CELL_PX`` cells around the focus row (the selected query,
else the last token) instead of squashing them; the wheel zooms, dragging pans, a double-click shows the whole
matrix. Labels thin out, never the cells; the hovered token, the selected query, the key its row gives the most
weight and the key of the cell under the pointer stay named. The axis titles take the longest wording that fits
the axes' length (``TITLES``), so nothing is clipped in a small window.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QFontMetricsF
from PySide6.QtWidgets import QGraphicsRectItem

from explainer.ui import theme as th
from explainer.ui.widgets.cell_colours import CellImage, changed_rows, colour_table, show_cells
from explainer.ui.widgets.plot_cache import cache_fixed_parts
from explainer.ui.widgets.token_axis import (
    TokenAxis,
    axis_length,
    show_title,
    title_fits,
    without_unit_prefixes,
)

MIN_CELL_PX = 6  # smaller cells: show a window of the matrix around the focus row
# axis titles, longest first: (left = rows, bottom = columns, colour bar); the first wording that fits is shown
TITLES = (
    ("query: the token that is looking", "key: the token looked at", "attention weight (0 to 1)"),
    ("query (looking)", "key (looked at)", "weight (0 to 1)"),
    ("query", "key", "weight"),
)


class AttentionHeatmap(pg.PlotWidget):
    cellHovered = Signal(int, int)  # (query, key); (-1, -1) when leaving
    cellClicked = Signal(int, int)

    def __init__(self, parent=None):
        self.left_axis = TokenAxis("left", max_chars=14)
        self.bottom_axis = TokenAxis("bottom", max_chars=12)
        super().__init__(parent, enableMenu=False, axisItems={"left": self.left_axis, "bottom": self.bottom_axis})
        self.setFocusPolicy(Qt.NoFocus)
        self.viewport().setFocusPolicy(Qt.NoFocus)  # a plot is used with the mouse; its panel takes the keys
        self.n = 0
        item = self.getPlotItem()
        without_unit_prefixes(item)
        item.hideButtons()
        item.setContentsMargins(2, 12, 2, 2)  # room for the first row's label
        item.setLabel("left", TITLES[0][0])
        item.setLabel("bottom", TITLES[0][1])
        self.vb = item.getViewBox()
        self.vb.invertY(True)
        self.vb.setDefaultPadding(0.0)  # the plot area is made square by the widget's size (HeatmapArea)
        self.vb.sigResized.connect(self._on_view_resized)
        self.backdrop = QGraphicsRectItem()  # shows through the transparent (masked / hidden) cells
        self.backdrop.setPen(pg.mkPen(None))
        self.backdrop.setZValue(-10)
        self.addItem(self.backdrop)
        self.image = CellImage(axisOrder="row-major")  # the cells, coloured here (cell_colours)
        self.addItem(self.image)
        self.values = np.zeros((0, 0), np.float32)  # what the cells show: the weights, NaN where hidden
        self._table = colour_table(pg.colormap.get(th.LIGHT.colormap))
        self.colorbar = pg.ColorBarItem(
            values=(0.0, 1.0), interactive=False, width=18, colorMapMenu=False, label=TITLES[0][2]
        )
        self.colorbar.setImageItem([], insert_in=item)  # the same colour map as the cells, beside the plot
        self.masked_text = pg.TextItem("", anchor=(1.0, 0.0))  # top-right corner, inside the empty triangle
        self.masked_text.setZValue(5)
        self.addItem(self.masked_text)
        self.row_box = self._rect(pg.mkPen(th.HIGHLIGHT, width=2, cosmetic=True))
        self.col_box = self._rect(pg.mkPen(th.HIGHLIGHT, width=2, cosmetic=True))
        self.sel_box = self._rect(pg.mkPen(th.HIGHLIGHT, width=3, style=Qt.DashLine, cosmetic=True))
        self.cell_box = self._rect(pg.mkPen("#ffffff", width=2, cosmetic=True))
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.scene().sigMouseClicked.connect(self._on_mouse_clicked)
        self._hover = (-1, -1)
        self.hovered = -1  # the token outlined as a row and a column (hovered here or in another panel)
        self.selected = -1  # the selected query: its row outlined, its label and its strongest key's always shown
        self._hover_key = -1  # the key column of the cell under the pointer (named on the key axis; -1: none)
        self.focus_row = -1  # the row a long text's window is kept around (-1: the last)
        self.label_room = 0.0  # how much deeper than one line the column labels may be (what the square leaves)
        self._colorbar_step = 0.2  # between the colour bar's numbers (fewer on a short bar)
        cache_fixed_parts(self)

    def _rect(self, pen) -> QGraphicsRectItem:
        r = QGraphicsRectItem()
        r.setPen(pen)
        r.setZValue(10)
        r.hide()
        self.addItem(r)
        return r

    # --- data ------------------------------------------------------------------------------------------------
    def set_theme(self, theme: th.Theme) -> None:
        cmap = pg.colormap.get(theme.colormap)
        self.colorbar.setColorMap(cmap)
        self._table = colour_table(cmap)
        if self.values.size:
            show_cells(self.image, self.values, self._table)
        self.setBackground(theme.background)
        self.backdrop.setBrush(pg.mkBrush(theme.grid))
        for name in ("left", "bottom"):
            ax = self.getPlotItem().getAxis(name)
            ax.setTextPen(theme.text)
            ax.setPen(theme.muted)
        self.colorbar.axis.setTextPen(theme.text)
        self.colorbar.axis.setPen(theme.muted)
        self.colorbar.getAxis("left").setTextPen(theme.text)  # its title
        self.masked_text.setColor(theme.muted)

    def set_font(self, font) -> None:
        for ax in (self.left_axis, self.bottom_axis, self.colorbar.axis):
            ax.setStyle(tickFont=font)
        for ax in self._title_axes():
            ax.label.setFont(font)
        self.left_axis.set_font(font)
        self.bottom_axis.set_font(font)
        self.masked_text.setFont(font)
        self.fit_titles()
        self._fit_colorbar_ticks()
        self._fit_masked_text()

    def _title_axes(self):
        """The axes that carry the titles: rows, columns and the colour bar's (its left side; ticks on the right)."""
        return self.left_axis, self.bottom_axis, self.colorbar.getAxis("left")

    def titles(self) -> tuple[str, str, str]:
        """The axis titles shown now: (rows, columns, colour bar)."""
        return tuple(ax.labelText for ax in self._title_axes())

    def fit_titles(self) -> None:
        """Show the longest wording of the axis titles that fits along every axis (the same wording on all)."""
        axes = self._title_axes()
        lengths = [axis_length(ax) for ax in axes]
        if min(lengths) <= 0:  # not laid out yet
            return
        chosen = next(
            (titles for titles in TITLES if all(title_fits(ax, t, n) for ax, t, n in zip(axes, titles, lengths))),
            TITLES[-1],
        )
        for ax, title in zip(axes, chosen):
            show_title(ax, title)

    def _on_view_resized(self, *_args) -> None:
        self.reset_view()
        self._fit_column_labels()
        self.left_axis.fit_to_length(self.vb.height())
        self.fit_titles()
        self._fit_colorbar_ticks()
        self._fit_masked_text()

    def _fit_colorbar_ticks(self) -> None:
        """0, 0.2, … 1 on a tall colour bar; fewer where the numbers would run into each other."""
        ax = self.colorbar.axis
        length = ax.geometry().height()
        line = QFontMetricsF(ax.style["tickFont"] or ax.font()).height() + 4
        for step in (0.2, 0.5, 1.0):
            if length * step >= line or step == 1.0:
                break
        if step != self._colorbar_step:
            self._colorbar_step = step
            ax.setTicks([[(v, f"{v:.1f}") for v in self.colorbar_ticks()], []])

    def colorbar_ticks(self) -> list[float]:
        """The numbers written on the colour bar."""
        return [float(v) for v in np.round(np.arange(0.0, 1.0 + 1e-9, self._colorbar_step), 1)]

    def _fit_masked_text(self) -> None:
        """Write "future: masked" (or "masked") in the empty upper triangle, only where it covers no weight."""
        n = self.n
        w, h = self.vb.width(), self.vb.height()
        if n < 2 or w <= 0 or h <= 0 or self.window()[1] < n:
            self.masked_text.hide()
            return
        cell_w, cell_h = w / n, h / n
        for text in ("future: masked", "masked"):
            self.masked_text.setText(text)
            br = self.masked_text.textItem.boundingRect()
            rows = math.ceil(br.height() / cell_h)  # the rows the text reaches down into …
            first_col = n - br.width() / cell_w  # … from this column to the right edge
            if rows <= n and first_col >= rows:  # row r has weights in columns 0..r: all left of the text
                self.masked_text.setPos(n, 0)
                self.masked_text.show()
                return
        self.masked_text.hide()

    def set_matrix(self, drawn: np.ndarray, labels: list[str]) -> None:
        """``drawn`` [T, T]: the weights with NaN where nothing is shown; the upper triangle is hidden here."""
        n = drawn.shape[0]
        if n == 0:  # an empty text
            self.image.clear()
            self.values = np.zeros((0, 0), np.float32)
            self.n = 0
            self._labels = []
            self.left_axis.set_labels([])
            self.bottom_axis.set_labels([])
            self.masked_text.hide()
            for box in (self.row_box, self.col_box, self.sel_box, self.cell_box):
                box.hide()
            return
        img = np.array(drawn, np.float32)
        index = np.arange(n)
        img[index[:, None] < index[None, :]] = np.nan  # the future (a mask: faster than its indices)
        resized = n != self.n
        if resized:
            show_cells(self.image, img, self._table)
            self.image.setRect(QRectF(0, 0, n, n))
            self.backdrop.setRect(QRectF(0, 0, n, n))
        else:  # the same tokens but the last: only the rows that changed are drawn again (often just the last)
            self.image.show_rows(img, self._table, changed_rows(self.values, img))
        self.values = img
        if resized:  # the new range before the new labels: the axes then lay their labels out once, for it
            self.n = n
            self.vb.setLimits(xMin=0, xMax=n, yMin=0, yMax=n)  # zooming and panning stay on the matrix
            self.reset_view()
        if resized or labels != getattr(self, "_labels", None):
            self._labels = list(labels)
            self.left_axis.set_labels(labels)
            self.bottom_axis.set_labels(labels)
        self._name_keys()
        self._fit_masked_text()
        self._hover = (-1, -1)

    def _fit_column_labels(self) -> None:
        ax = self.bottom_axis
        ax.fit_to_length(self.vb.width(), max_extent=ax._extent("flat", ax.full_labels) + self.label_room)

    def label_extra(self) -> float:
        """How much deeper than one line turned column labels make the axis (0 for upright ones)."""
        ax = self.bottom_axis
        return ax._extent("rotated", ax.labels) - ax._extent("flat", ax.full_labels) if ax.rotated else 0.0

    def set_label_room(self, px: float) -> None:
        """Let the column labels take ``px`` more than one line (turned labels, every token named)."""
        px = max(0.0, float(px))
        if abs(px - self.label_room) >= 1:
            self.label_room = px
            if self.vb.width() > 0:
                self._fit_column_labels()

    def chrome(self) -> tuple[float, float] | None:
        """The widget's pixels around the plot area (axes, titles, colour bar, margins), once laid out."""
        vb = self.vb.sceneBoundingRect()
        if vb.width() <= 0 or vb.height() <= 0:
            return None
        return self.width() - vb.width(), self.height() - vb.height()

    def window(self) -> tuple[int, int]:
        """The first token and the number of tokens the view shows along each axis by default."""
        n = max(self.n, 1)
        px = min(self.vb.width(), self.vb.height())
        m = n if px <= 0 else max(1, min(n, int(px // MIN_CELL_PX)))
        if m >= n:
            return 0, n
        q = self.focus_row if 0 <= self.focus_row < n else n - 1
        return min(max(0, q - m + 1), n - m), m

    def reset_view(self) -> None:
        """Show the whole matrix, or for a long text the window of readable cells around the focus row."""
        a, m = self.window()
        self.vb.setRange(QRectF(a, a, m, m), padding=0)
        self.vb.prepareForPaint()  # the new range now: applied while drawing, it would draw the matrix twice

    def show_all(self) -> None:
        m = max(self.n, 1)
        self.vb.setRange(QRectF(0, 0, m, m), padding=0)

    def set_focus_row(self, row: int) -> None:
        """Keep a long text's window around ``row``; moves the view when the row is outside it."""
        if row == self.focus_row:
            return
        self.focus_row = row
        (x0, x1), _ = self.vb.viewRange()
        a, m = self.window()
        if m < self.n and not (x0 - 0.01 <= (row if row >= 0 else self.n - 1) < x1 + 0.01):
            self.reset_view()

    def show_token(self, position: int) -> None:
        """Outline row and column ``position`` (a token hovered here or in another panel) and name it on both axes
        in the highlight colour."""
        self.hovered = position
        if 0 <= position < self.n:
            self.row_box.setRect(QRectF(0, position, position + 1, 1))
            self.col_box.setRect(QRectF(position, position, 1, self.n - position))
            self.row_box.show()
            self.col_box.show()
        else:
            self.row_box.hide()
            self.col_box.hide()
        self.left_axis.set_emphasis([position, self.selected])
        self.bottom_axis.set_emphasis([position])

    def show_selected(self, position: int) -> None:
        """Outline the selected query's row, name it on the query axis in the highlight colour and name the key it
        gives the most weight on the key axis (axes that label every k-th token name these too)."""
        self.selected = position
        if 0 <= position < self.n:
            self.sel_box.setRect(QRectF(0, position, self.n, 1))
            self.sel_box.show()
        else:
            self.sel_box.hide()
        self.left_axis.set_emphasis([self.hovered, position])
        self._name_keys()

    def strongest_key(self, query: int) -> int:
        """The key column with the largest weight shown in row ``query`` (-1: none, e.g. only a hidden one)."""
        if not 0 <= query < self.n:
            return -1
        row = self.values[query, : query + 1]
        if not np.isfinite(row).any():
            return -1
        return int(np.nanargmax(row))

    def _name_keys(self) -> None:
        """Name the key of the cell under the pointer and the selected query's strongest key on the key axis (the
        first where both would not fit)."""
        self.bottom_axis.set_named([self._hover_key, self.strongest_key(self.selected)])

    def cell_at(self, scene_pos) -> tuple[int, int]:
        if self.n == 0 or not self.vb.sceneBoundingRect().contains(scene_pos):
            return (-1, -1)
        p = self.vb.mapSceneToView(scene_pos)
        q, k = int(np.floor(p.y())), int(np.floor(p.x()))
        return (q, k) if 0 <= q < self.n and 0 <= k < self.n else (-1, -1)

    def _on_mouse_moved(self, pos) -> None:
        cell = self.cell_at(pos)
        if cell == self._hover:
            return
        self._hover = cell
        if cell[0] >= 0:
            self.cell_box.setRect(QRectF(cell[1], cell[0], 1, 1))
            self.cell_box.show()
        else:
            self.cell_box.hide()
        self._hover_key = cell[1] if 0 <= cell[1] <= cell[0] else -1  # (a masked cell: no key looked at)
        self._name_keys()
        self.cellHovered.emit(*cell)

    def _on_mouse_clicked(self, ev) -> None:
        if ev.button() == Qt.LeftButton and ev.double():
            self.show_all()
        elif ev.button() == Qt.LeftButton:
            cell = self.cell_at(ev.scenePos())
            if cell[0] >= 0:
                self.cellClicked.emit(*cell)

    def leaveEvent(self, ev):
        self._on_mouse_moved(pg.QtCore.QPointF(-1e9, -1e9))
        super().leaveEvent(ev)
