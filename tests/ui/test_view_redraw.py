"""Plots whose items change at every keystroke are drawn again in the window's one repaint, and show on the screen
exactly what plots drawn anew show."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QRectF
from PySide6.QtWidgets import QHBoxLayout, QWidget

from explainer.bench_window import paint_counter
from explainer.ui.widgets.cell_colours import CellImage, colour_table, show_cells
from explainer.ui.widgets.head_grid import HeadGrid
from explainer.ui.widgets.token_points import TokenPoints
from explainer.ui.widgets.view_redraw import redraw_in_views
from tests.pixels import exposed, image_array, on_screen

TABLE = colour_table(pg.colormap.get("viridis"))
STYLE = ("o", 10.0, "#d62728", "#ffffff", 1.0)


def _plots(qtbot):
    """A window of two plots: a grid of cells and a few points."""
    window = QWidget()
    lay = QHBoxLayout(window)
    cells_plot, points_plot = pg.PlotWidget(), pg.PlotWidget()
    cells = CellImage(axisOrder="row-major")
    cells_plot.addItem(cells)
    points = TokenPoints()
    points.set_extent(QRectF(0, 0, 10, 10))
    points_plot.addItem(points)
    points_plot.setRange(QRectF(0, 0, 10, 10), padding=0)
    for plot in (cells_plot, points_plot):
        lay.addWidget(plot)
    return exposed(qtbot, window, (700, 360)), cells, points


def test_two_plots_changing_together_cost_the_window_one_repaint_and_show_what_fresh_ones_show(qtbot):
    rng = np.random.default_rng(1)
    window, cells, points = _plots(qtbot)
    show_cells(cells, rng.uniform(0, 1, (12, 12)), TABLE)
    points.set_points(rng.uniform(1, 9, (6, 2)), [STYLE] * 6)
    on_screen(window)
    passes = paint_counter(QEvent.UpdateRequest)
    window.installEventFilter(passes)
    for step in range(3):
        values, xy = rng.uniform(0, 1, (12, 12)), rng.uniform(1, 9, (6, 2))
        before = passes.count
        show_cells(cells, values, TABLE)
        points.set_points(xy, [STYLE] * 6)
        screen = image_array(on_screen(window))
        assert passes.count - before == 1, step
        fresh_window, fresh_cells, fresh_points = _plots(qtbot)
        show_cells(fresh_cells, values, TABLE)
        fresh_points.set_points(xy, [STYLE] * 6)
        fresh = image_array(on_screen(fresh_window))
        diff = np.argwhere((screen != fresh).any(-1))
        assert len(diff) == 0, (step, len(diff), diff.min(0), diff.max(0))


def test_an_item_drawn_from_a_cache_or_outside_a_scene_is_left_to_update():
    item = CellImage()
    assert not redraw_in_views(item)  # in no scene
    plot = pg.PlotWidget()
    plot.addItem(item)
    item.setCacheMode(item.CacheMode.DeviceCoordinateCache)
    assert not redraw_in_views(item)  # its cache must be told
    item.setCacheMode(item.CacheMode.NoCache)
    assert redraw_in_views(item, QRectF(0, 0, 1, 1))


def test_the_head_grid_on_screen_after_new_values_is_a_fresh_grid(qtbot):
    rng = np.random.default_rng(2)

    def grid():
        g = exposed(qtbot, HeadGrid(), (300, 420))
        g.set_shape(30, 9)
        g.reset_view()
        return g

    kept = grid()
    kept.set_values(rng.uniform(0, 1, (30, 9)))
    on_screen(kept)
    for step in range(3):
        values = rng.uniform(0, 1, (30, 9))
        values[step, step] = np.nan  # a head without a value
        kept.set_values(values)
        screen = on_screen(kept)
        fresh = grid()
        fresh.set_values(values)
        shown, expected = image_array(screen), image_array(on_screen(fresh))
        diff = np.argwhere((shown != expected).any(-1))
        assert len(diff) == 0, (step, len(diff), diff.min(0), diff.max(0))
