"""Colouring a matrix of values in [0, 1] for an image item, once per new matrix.

pyqtgraph's ``ImageItem`` colours a float image itself when it is drawn (scaling by its levels, looking up its
colour map, masking NaN), which costs as much for a 30 × 9 grid as for a 128 × 128 heatmap: a fixed price of
several steps per drawing. Here the colours are looked up once, in numpy, exactly as that item maps values with
levels (0, 1) and a 256-entry table: the entry ``floor(v · 256)``, clipped to 0..255. NaN cells (nothing to show:
the masked future, a head without a value) are transparent, so the backdrop behind the image shows through.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF

from explainer.ui.widgets.view_redraw import redraw_in_views

ENTRIES = 256  # colours in a table (what pyqtgraph's image items use)


def colour_table(cmap: pg.ColorMap) -> np.ndarray:
    """The colour map sampled as pyqtgraph's image items sample it: ``ENTRIES`` RGBA colours, each one uint32
    (its four bytes in order), then a transparent one for NaN."""
    rgba = np.zeros((ENTRIES + 1, 4), np.uint8)
    rgba[:ENTRIES] = np.asarray(cmap.getLookupTable(nPts=ENTRIES, alpha=True), np.uint8)
    return rgba.view(np.uint32).ravel()


def colour_cells(values: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``values [H, W]`` (float, 0..1 and NaN) → ``[H, W, 4]`` uint8 RGBA through ``table`` (``colour_table``)."""
    v = np.asarray(values, np.float32)
    x = v * np.float32(ENTRIES)
    np.minimum(x, ENTRIES - 1, out=x)  # (NaN stays NaN)
    np.maximum(x, 0, out=x)
    x[np.isnan(x)] = ENTRIES  # the transparent entry
    return table[x.astype(np.uint16, order="C")].view(np.uint8).reshape(*v.shape, 4)


def show_cells(item: pg.ImageItem, values: np.ndarray, table: np.ndarray) -> None:
    """Give ``item`` the coloured cells of ``values`` (drawn as they are: no levels, no colour map of its own)."""
    item.setImage(colour_cells(values, table), autoLevels=False, levels=None, lut=None)


def changed_rows(old: np.ndarray, new: np.ndarray) -> tuple[int, int]:
    """The first and one past the last row in which ``new`` differs from ``old`` (of the same shape; NaN equal to
    NaN), or (0, 0) when none does."""
    differ = (old != new) & ~(np.isnan(old) & np.isnan(new))
    rows = np.flatnonzero(differ.any(axis=1))
    return (int(rows[0]), int(rows[-1]) + 1) if rows.size else (0, 0)


class CellImage(pg.ImageItem):
    """An image item of coloured cells (``show_cells``) that can be told which rows changed: only their strip of
    the view is drawn again (a new row of a causal matrix, where every earlier row stays as it was), in the
    window's next repaint (``redraw_in_views``)."""

    _dirty: QRectF | None = None  # what the next update() covers (None: the whole item)

    def show_rows(self, values: np.ndarray, table: np.ndarray, rows: tuple[int, int]) -> None:
        """``values`` differ from those shown only in ``rows`` (first, one past the last; see ``changed_rows``)."""
        first, end = rows
        if end <= first:
            return  # the same cells
        self._dirty = QRectF(0, first, values.shape[1], end - first)
        try:
            show_cells(self, values, table)
        finally:
            self._dirty = None

    def update(self, *args) -> None:
        # (setImage asks for all of it: then the rows show_rows names, if any)
        if len(args) <= 1 and redraw_in_views(self, args[0] if args else self._dirty):
            return
        super().update(*args)
