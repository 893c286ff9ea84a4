"""The attention heatmap as pixels: each cell is drawn in the colour map's colour of its weight, in its place."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtWidgets import QApplication

from explainer.ui import theme as th
from explainer.ui.widgets.attention_heatmap import AttentionHeatmap
from tests.pixels import image_array, rgb

# every cell a different weight (at least 0.04 apart), so a cell drawn in another cell's place (transposed,
# flipped, shifted) or in a neighbouring colour shows
WEIGHTS = np.array(
    [
        [1.0, 0, 0, 0, 0],
        [0.30, 0.70, 0, 0, 0],
        [0.05, 0.61, 0.34, 0, 0],
        [0.13, 0.19, 0.26, 0.42, 0],
        [0.0, 0.09, 0.49, 0.55, 0.85],
    ],
    np.float32,
)


@pytest.fixture(params=[th.LIGHT, th.DARK], ids=lambda t: t.name)
def heatmap(qtbot, request):
    hm = AttentionHeatmap()
    qtbot.addWidget(hm)
    hm.set_theme(request.param)
    hm.resize(640, 560)
    hm.show()
    hm.set_matrix(WEIGHTS, [f"t{i}" for i in range(len(WEIGHTS))])
    qtbot.waitExposed(hm)
    QApplication.processEvents()
    return hm, request.param


INSIDE = [(0.5, 0.5), (0.2, 0.2), (0.8, 0.2), (0.2, 0.8), (0.8, 0.8)]  # the centre and near the four corners


def pixels_in_cell(hm, pixels, q: int, k: int) -> np.ndarray:
    """``[5, 3]``: the pixels at the centre of cell (query q, key k) and near its corners."""
    points = [hm.mapFromScene(hm.vb.mapViewToScene(QPointF(k + dx, q + dy))) for dx, dy in INSIDE]
    return np.array([pixels[p.y(), p.x()] for p in points], int)


def test_each_cell_has_its_weights_colour(heatmap):
    hm, theme = heatmap
    pixels = image_array(hm)
    cmap = pg.colormap.get(theme.colormap)
    n = len(WEIGHTS)
    for q in range(n):
        for k in range(q + 1):
            want = rgb(cmap.map(float(WEIGHTS[q, k]), mode="qcolor"))
            got = pixels_in_cell(hm, pixels, q, k)
            # the lookup table has 256+ steps: neighbouring entries differ by a few units at most
            assert np.abs(got - want).max() <= 3, (q, k, float(WEIGHTS[q, k]), got, want)
    # the weights chosen are far enough apart that a neighbour's colour would fail the check above
    colours = np.array([rgb(cmap.map(float(w), mode="qcolor")) for w in WEIGHTS[np.tril_indices(n)]])
    apart = np.abs(colours[:, None] - colours[None]).max(-1) + 255 * np.eye(len(colours), dtype=int)
    assert apart.min() > 6


def test_the_masked_future_shows_the_backdrop(heatmap):
    hm, theme = heatmap
    pixels = image_array(hm)
    note = hm.masked_text.sceneBoundingRect() if hm.masked_text.isVisible() else None
    n = len(WEIGHTS)
    for q in range(n):
        for k in range(q + 1, n):
            cell = hm.vb.mapViewToScene(QRectF(k, q, 1, 1)).boundingRect()
            if note is not None and note.intersects(cell):
                continue  # the "future: masked" note is written here
            assert (pixels_in_cell(hm, pixels, q, k) == rgb(theme.grid)).all(), (q, k)


@pytest.mark.parametrize("theme", [th.LIGHT, th.DARK], ids=lambda t: t.name)
def test_cells_are_coloured_as_pyqtgraphs_image_item_colours_them(qtbot, theme):
    """The cells are coloured once per matrix (``cell_colours``) instead of by the image item at each drawing:
    the same colours, byte for byte, as pyqtgraph's own image item gives the same values with the colour map and
    levels (0, 1); NaN cells transparent. Values at and past both ends, and a turned (non-contiguous) matrix."""
    from explainer.ui.widgets.cell_colours import colour_cells, colour_table, show_cells

    cmap = pg.colormap.get(theme.colormap)
    rng = np.random.default_rng(3)
    values = rng.random((37, 23), dtype=np.float32)
    values[np.triu_indices(23, 1)] = np.nan
    values[-1, :6] = [0.0, 1.0, -0.25, 1.5, 1 / 256, 255 / 256]
    for v in (values, values.T):
        reference = pg.ImageItem(axisOrder="row-major")
        reference.setColorMap(cmap)
        reference.setImage(v, levels=(0.0, 1.0), autoLevels=False)
        reference.render()
        want = reference.qimage.convertToFormat(reference.qimage.Format.Format_RGBA8888)
        want = np.frombuffer(want.constBits(), np.uint8).reshape(want.height(), want.bytesPerLine() // 4, 4)
        want = want[:, : v.shape[1]]
        got = colour_cells(v, colour_table(cmap))
        assert got.shape == (*v.shape, 4) and got.dtype == np.uint8
        shown = ~np.isnan(v)
        np.testing.assert_array_equal(got[shown], want[shown])
        assert (got[~shown, 3] == 0).all() and (want[~shown, 3] == 0).all()
        item = pg.ImageItem(axisOrder="row-major")
        show_cells(item, v, colour_table(cmap))
        item.render()  # drawn as given: no levels or colour map of the item's own
        drawn = item.qimage.convertToFormat(item.qimage.Format.Format_RGBA8888)
        drawn = np.frombuffer(drawn.constBits(), np.uint8).reshape(drawn.height(), drawn.bytesPerLine() // 4, 4)
        np.testing.assert_array_equal(drawn[:, : v.shape[1]][shown], want[shown])


def test_a_theme_with_another_colour_map_recolours_the_cells_shown(qtbot):
    import dataclasses

    hm = AttentionHeatmap()
    qtbot.addWidget(hm)
    hm.set_theme(th.LIGHT)
    hm.set_matrix(WEIGHTS, [f"t{i}" for i in range(len(WEIGHTS))])
    before = hm.image.image.copy()
    other = dataclasses.replace(th.LIGHT, colormap="magma")
    hm.set_theme(other)
    after = hm.image.image
    cmap = pg.colormap.get(other.colormap)
    assert not np.array_equal(before, after)
    for q, k in ((0, 0), (2, 1), (4, 4)):
        assert np.abs(after[q, k, :3].astype(int) - rgb(cmap.map(float(WEIGHTS[q, k]), mode="qcolor"))).max() <= 3
