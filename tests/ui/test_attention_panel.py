"""Attention panel: what is drawn equals the model's weights; average, sink hiding, grid clicks, keys, hover."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QFontMetricsF

from explainer.core.types import Attention
from explainer.ui.panels import attention_data as ad
from explainer.ui.panels import demo_data
from explainer.ui.panels.attention import AttentionPanel
from explainer.ui.widgets.attention_heatmap import TITLES
from tests.pixels import colour_share, exposed, screenshot_alone

TEXT = demo_data.DEMO_TEXT


@pytest.fixture(scope="module")
def engine():
    from explainer.core.engine import demo_engine

    return demo_engine()


@pytest.fixture(scope="module")
def result(engine):
    return engine.analyze(TEXT)


@pytest.fixture
def panel(qtbot, result):
    p = AttentionPanel()
    qtbot.addWidget(p)
    p.resize(1100, 800)
    p.show()
    p.set_result(result)
    qtbot.waitExposed(p)
    return p


def image_of(panel):
    return panel.heatmap.values  # what the cells show


def nonblank(widget) -> bool:
    img = widget.grab().toImage()
    colours = {img.pixel(x, y) for x in range(0, img.width(), 7) for y in range(0, img.height(), 7)}
    return len(colours) > 20


def test_select_head_shows_that_head(panel, result, qtbot):
    L, H = result.attention.n_layers, result.attention.n_heads
    before = image_of(panel).copy()
    with qtbot.waitSignal(panel.headSelected) as sig:
        panel.select_head(L - 1, H - 1)
    assert sig.args == [L - 1, H - 1]
    want = result.attention.head(L - 1, H - 1)
    np.testing.assert_array_equal(panel.current_matrix(), want)
    img = image_of(panel)
    assert not np.allclose(np.nan_to_num(img), np.nan_to_num(before))
    lower = np.tril_indices(result.n_tokens)
    np.testing.assert_array_equal(img[lower], want[lower])
    assert np.all(np.isnan(img[np.triu_indices(result.n_tokens, 1)]))  # the causal triangle is drawn empty
    assert f"Layer {L}, head {H}" in panel.info.text()
    assert (panel.layer_spin.value(), panel.head_spin.value()) == (L, H)


def test_rows_are_probabilities(panel, result):
    for layer in range(result.attention.n_layers):
        panel.select_head(layer, 0)
        m = panel.current_matrix()
        np.testing.assert_allclose(m.sum(1), 1.0, atol=1e-4)
        assert np.all(m[np.triu_indices(result.n_tokens, 1)] == 0)


def test_average_of_heads(panel, result):
    panel.select_head(1 if result.attention.n_layers > 1 else 0, 0)
    panel.set_average(True)
    want = result.attention.layer(panel.layer).mean(axis=0)
    np.testing.assert_allclose(panel.current_matrix(), want, rtol=1e-6, atol=1e-7)
    assert not panel.head_spin.isEnabled() and "average" in panel.info.text()
    panel.select_head(0, 1)  # choosing a head leaves the average
    assert not panel.average
    np.testing.assert_array_equal(panel.current_matrix(), result.attention.head(0, 1))


def test_hide_sink_renormalises_rows(panel, result):
    panel.select_head(0, 1)
    raw = result.attention.head(0, 1)
    panel.set_hide_first(True)
    m = panel.current_matrix()
    T = result.n_tokens
    assert np.all(np.isnan(m[:, 0])) and np.all(np.isnan(m[0]))
    for q in range(1, T):
        np.testing.assert_allclose(np.nansum(m[q, 1 : q + 1]), 1.0, atol=1e-5)
        np.testing.assert_allclose(m[q, 1 : q + 1], raw[q, 1 : q + 1] / raw[q, 1 : q + 1].sum(), rtol=1e-4, atol=1e-6)
    assert np.all(np.isnan(image_of(panel)[:, 0]))
    # with the average: mean first, then hide and renormalise
    panel.set_average(True)
    avg = result.attention.layer(0).mean(0)
    np.testing.assert_allclose(panel.current_matrix()[1:, 1:], ad.hide_sink(avg)[1:, 1:], rtol=1e-5, atol=1e-6)
    panel.set_hide_first(False)
    np.testing.assert_allclose(panel.current_matrix(), avg, rtol=1e-6, atol=1e-7)


def test_hide_sink_and_pooling_helpers():
    rng = np.random.default_rng(0)
    T = 37
    a = rng.random((2, T, T)).astype(np.float32) * np.tril(np.ones((T, T), np.float32))
    a /= a.sum(-1, keepdims=True)
    h = ad.hide_sink(a)
    np.testing.assert_allclose(np.nansum(h[:, 1:], -1), 1.0, atol=1e-5)
    p = ad.pool_max(a, 8)
    e = ad.bin_edges(T, 8)
    assert list(e) == [0, 8, 16, 24, 32]  # power-of-two bins: T=37 → bins of 8
    assert p.shape == (2, 5, 5)
    np.testing.assert_allclose(p[1, 3, 2], a[1, e[3] : e[4], e[2] : e[3]].max())
    assert np.isnan(p[0, 0, 4]) and not np.isnan(p[0, 4, 0])  # wholly-future blocks are empty
    small = ad.pool_max(a[:, :5, :5], 8)
    assert small.shape == (2, 5, 5) and np.isnan(small[0, 0, 1])
    prev = ad.preview(a[0], 8)  # a head's preview: pooled, the future empty
    assert prev.shape == (5, 5) and np.isnan(prev[0, 4]) and prev[4, 0] == pytest.approx(a[0, 32:, :8].max())


def _blocks(a: np.ndarray, cuts) -> Attention:
    """``a [L, H, T, T]`` as row blocks, as successive keystrokes leave it."""
    return Attention([a[:, :, s:e, :e] for s, e in zip(cuts[:-1], cuts[1:]) if e > s])


def test_one_number_per_head_from_row_blocks():
    rng = np.random.default_rng(1)
    L, H, T = 3, 4, 37
    a = rng.random((L, H, T, T)).astype(np.float32) * np.tril(np.ones((T, T), np.float32))
    a /= a.sum(-1, keepdims=True)
    att = _blocks(a, [0, 12, 13, T])
    for q in (0, 12, 20, T - 1):
        np.testing.assert_array_equal(ad.query_rows(att, q), a[:, :, q, : q + 1])
    q, k = 20, 7
    np.testing.assert_allclose(ad.head_values(att, "query_key", q, k, False), a[:, :, q, k])
    np.testing.assert_allclose(ad.head_values(att, "first", q, k, False), a[:, :, q, 0])
    np.testing.assert_allclose(ad.head_values(att, "previous", q, k, False), a[:, :, q, q - 1])
    hidden = ad.hide_sink(a)  # the grid shows what the heatmap shows: renormalised without the first token
    np.testing.assert_allclose(ad.head_values(att, "query_key", q, k, True), hidden[:, :, q, k], rtol=1e-5)
    assert np.isnan(ad.head_values(att, "first", q, k, True)).all()  # the hidden token has no weight to show
    assert np.isnan(ad.head_values(att, "query_key", 5, 9, False)).all()  # a later key: masked
    assert np.isnan(ad.head_values(att, "previous", 0, -1, False)).all()  # the first token has no previous one


def test_grid_click_selects_head(panel, result, qtbot):
    grid = panel.grid
    assert grid.isVisible() and not grid.transposed  # beside the heatmap in a 1100 × 800 panel: layers are rows
    L, H = result.attention.n_layers, result.attention.n_heads
    layer, head = L - 1, H - 2
    scene_pt = grid.vb.mapViewToScene(QPointF(head + 0.5, layer + 0.5))
    with qtbot.waitSignal(panel.headSelected) as sig:
        qtbot.mouseClick(grid.viewport(), Qt.LeftButton, pos=grid.mapFromScene(scene_pt))
    assert sig.args == [layer, head]
    np.testing.assert_array_equal(panel.current_matrix(), result.attention.head(layer, head))
    r = grid.outline.rect()
    assert grid.outline.isVisible() and (r.x(), r.y(), r.width(), r.height()) == (head, layer, 1, 1)


def test_grid_shows_the_chosen_number_per_head(panel, result, qtbot):
    from explainer.core.heads import scores_from_result

    T = result.n_tokens
    grid = panel.grid
    assert grid.values.shape == (result.attention.n_layers, result.attention.n_heads)
    full = result.attention.full()
    # default: from the last token (no query selected) to the token before it (no key chosen)
    np.testing.assert_allclose(grid.values, full[:, :, T - 1, T - 2], rtol=1e-6)
    panel.select_position(6)
    panel._on_heatmap_clicked(6, 2)  # a click picks the query row and the key column
    np.testing.assert_allclose(grid.values, full[:, :, 6, 2], rtol=1e-6)
    panel._on_heatmap_hovered(9, 4)  # while the pointer is over a cell, the grid shows that cell
    np.testing.assert_allclose(grid.values, full[:, :, 9, 4], rtol=1e-6)
    panel._on_heatmap_hovered(-1, -1)
    np.testing.assert_allclose(grid.values, full[:, :, 6, 2], rtol=1e-6)
    panel.set_hide_first(True)  # the grid follows the sink toggle
    np.testing.assert_allclose(grid.values, ad.hide_sink(full)[:, :, 6, 2], rtol=1e-5)
    panel.set_hide_first(False)
    panel.set_measure("first")
    np.testing.assert_allclose(grid.values, full[:, :, 6, 0], rtol=1e-6)
    panel.set_measure("previous_token")  # a role score on this text
    np.testing.assert_allclose(grid.values, scores_from_result(result).previous_token, rtol=1e-6)
    r = grid.outline.rect()
    assert (r.x(), r.y()) == (panel.head, panel.layer)  # the selected head is outlined


def test_grid_hover_previews_the_head(panel, result, qtbot):
    grid = panel.grid
    scene_pt = grid.vb.mapViewToScene(QPointF(1.5, 0.5))  # layer 1, head 2
    grid._on_mouse_moved(scene_pt)
    assert panel.preview.isVisible() and "head 2" in panel.preview.caption.text()
    assert "Layer 1, head 2" in panel.info.text() and f"{grid.value(0, 1):.3f}" in panel.info.text()
    img = panel.preview.picture.pixmap().toImage()
    assert img.width() == panel.preview.SIZE and len({img.pixel(x, x) for x in range(0, img.width(), 9)}) > 3
    grid._on_mouse_moved(QPointF(-1e9, -1e9))
    assert not panel.preview.isVisible()


def test_arrow_keys_change_layer_and_head(panel, result, qtbot):
    panel.select_head(0, 0)
    panel.setFocus()
    qtbot.keyClick(panel, Qt.Key_Right)
    assert (panel.layer, panel.head) == (0, 1)
    qtbot.keyClick(panel, Qt.Key_Down)
    assert (panel.layer, panel.head) == (min(1, result.attention.n_layers - 1), 1)
    np.testing.assert_array_equal(panel.current_matrix(), result.attention.head(panel.layer, 1))
    qtbot.keyClick(panel, Qt.Key_Up)
    qtbot.keyClick(panel, Qt.Key_Up)  # clamps at the first layer
    qtbot.keyClick(panel, Qt.Key_Left)
    assert (panel.layer, panel.head) == (0, 0)


def test_hover_cell_reports_weight_and_token(panel, result, qtbot):
    panel.select_head(0, 0)
    hm = panel.heatmap
    q, k = 5, 3
    scene_pt = hm.vb.mapViewToScene(QPointF(k + 0.5, q + 0.5))
    with qtbot.waitSignal(panel.tokenHovered) as sig:
        hm._on_mouse_moved(scene_pt)
    assert sig.args == [q]
    assert f"{result.attention.head(0, 0)[q, k]:.3f}" in panel.status.text()
    hm._on_mouse_moved(hm.vb.mapViewToScene(QPointF(q + 1.5, q + 0.5)))  # a future key
    assert "masked" in panel.status.text()


def test_highlight_token_outlines_row_and_column(panel):
    panel.highlight_token(4)
    assert panel.heatmap.row_box.isVisible() and panel.heatmap.col_box.isVisible()
    assert panel.heatmap.row_box.rect().y() == 4 and panel.heatmap.col_box.rect().x() == 4
    assert panel.lines.external == 4
    panel.highlight_token(-1)
    assert not panel.heatmap.row_box.isVisible()


def test_lines_view_shows_current_matrix(panel, result, qtbot):
    panel.select_head(0, 1)
    panel.set_hide_first(True)
    panel.tabs.setCurrentIndex(1)
    lines = panel.lines
    np.testing.assert_allclose(lines.matrix, np.nan_to_num(panel.current_matrix()))
    qtbot.waitExposed(lines)
    y = lines._row_y(6)
    ql, kl = lines._columns()
    assert lines.hit(QPointF(ql + 5, y)) == ("q", 6)
    assert lines.hit(QPointF(kl + 5, y)) == ("k", 6)
    lines.focus = ("q", 6)
    kind, i, w = lines._weights_in_focus()
    np.testing.assert_allclose(w, np.nan_to_num(panel.current_matrix()[6]))
    assert nonblank(panel)


def test_grab_is_not_blank(panel, tmp_path):
    assert nonblank(panel)


def test_long_text_updates(qtbot, engine):
    r = engine.analyze(" ".join(["The bank of the river flooded again."] * 20), max_tokens=128)
    assert r.n_tokens == 128
    p = AttentionPanel()
    qtbot.addWidget(p)
    p.resize(700, 500)
    p.show()
    p.set_result(r)
    qtbot.waitExposed(p)
    np.testing.assert_array_equal(p.current_matrix(), r.attention.head(0, 0))
    hm = p.heatmap
    (x0, x1), (y0, y1) = hm.vb.viewRange()
    assert x1 - x0 < r.n_tokens and hm.vb.width() / (x1 - x0) >= 5.9  # a window of readable cells …
    assert x1 == pytest.approx(r.n_tokens) and y1 == pytest.approx(r.n_tokens)  # … around the last query
    p.select_position(10)
    (x0, x1), (y0, y1) = hm.vb.viewRange()
    assert x0 <= 10 < x1 and y0 <= 10 < y1  # … or the selected one
    hm.show_all()
    assert hm.vb.viewRange()[0] == pytest.approx([0, r.n_tokens])


def test_partial_attention_blocks(qtbot, result):
    """Results that share row blocks (incremental updates) read the same."""
    full = result.attention.full()
    blocks = [full[:, :, :5, :5], full[:, :, 5:, :]]
    p = AttentionPanel()
    qtbot.addWidget(p)
    p.set_result(result)
    p.select_head(0, 1)
    from dataclasses import replace

    p.set_result(replace(result, attention=Attention(blocks)))
    np.testing.assert_array_equal(p.current_matrix(), result.attention.head(0, 1))


def test_runs_alone(tmp_path):
    import pyqtgraph as pg

    pixels = screenshot_alone("attention", tmp_path / "attention.png", "--size", "1000x600")
    assert pixels.shape == (600, 1000, 3)
    viridis = pg.colormap.get("viridis").getLookupTable(nPts=256, alpha=False)
    assert colour_share(pixels, [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in viridis], tol=1) > 0.05  # heatmaps


@pytest.mark.parametrize("text, start", [("", False), ("", True), ("Hi", True)])
def test_tiny_texts(qtbot, engine, text, start):
    r = engine.analyze(text, start_token=start)
    p = AttentionPanel()
    qtbot.addWidget(p)
    for hide in (False, True):
        p.set_hide_first(hide)
        p.set_result(r)
        p.set_average(True)
        p.set_average(False)
        p.highlight_token(0)
        p.grab()  # draws (an exception while painting fails the test)
        if r.n_tokens == 0:
            assert p.heatmap.n == 0 and "No tokens yet" in p.info.text()
            continue
        expected = ad.display_matrix(r.attention.head(p.layer, p.head), hide)
        np.testing.assert_array_equal(p.current_matrix(), expected)
        expected[np.triu_indices(r.n_tokens, 1)] = np.nan  # the causal future is drawn empty
        np.testing.assert_array_equal(image_of(p), expected)


# --- layout: the matrix fills its space, labels and titles fit (legibility on a projector) ----------------------
def _matrix_rect(hm):
    """The matrix's footprint in the heatmap widget's pixels."""
    return hm.vb.mapViewToScene(QRectF(0, 0, hm.n, hm.n)).boundingRect()


def _sized(qtbot, result, size):
    p = AttentionPanel()
    qtbot.addWidget(p)
    p.resize(*size)
    p.show()
    p.set_result(result)
    qtbot.waitExposed(p)
    _settled(qtbot, p)
    return p


def _settled(qtbot, p) -> None:
    """Let the heatmap's placement passes run out: each waits for the axes to measure, in the event loop (on a busy
    machine more slowly than a fixed wait allows). Settled: the matrix and the column labels as they were 10 ms ago."""
    hm = p.heatmap

    def state():
        ax = hm.bottom_axis
        return hm.vb.sceneBoundingRect(), ax.mode, tuple(ax.labels), ax.geometry()

    before = None
    for _ in range(100):
        qtbot.wait(10)
        now = state()
        if now == before:
            return
        before = now
    raise AssertionError("the attention heatmap's layout never settled")


def _assert_apart(rects, what):
    rects = list(rects)
    for i, a in enumerate(rects):
        for b in rects[i + 1 :]:
            assert not a.intersects(b), (what, a, b)


@pytest.mark.parametrize("size", [(1100, 800), (760, 520), (520, 760), (420, 700)])
def test_heatmap_cells_are_square_and_fill_the_room(qtbot, result, size):
    p = _sized(qtbot, result, size)
    hm, area = p.heatmap, p.area
    rect, vb = _matrix_rect(hm), hm.vb.sceneBoundingRect()
    assert rect.width() >= vb.width() - 1 and rect.height() >= vb.height() - 1  # the matrix fills the plot area
    assert abs(rect.width() - rect.height()) <= 2  # square cells
    chrome_w, chrome_h = area._chrome[0], area._chrome[1] + area.label_depth  # (upright column labels' rows)
    room = min(area.width() - chrome_w, area.height() - chrome_h)  # the largest square the room allows …
    grid = 0 if area.arrangement.grid == "none" else area.grid.width() + 10
    assert rect.width() >= min(room, area.width() - chrome_w - grid) - 3  # … less the head grid beside it
    if area.arrangement.grid != "none":
        assert area.grid.cell_px() >= 8 and not area.grid.geometry().intersects(hm.geometry())


@pytest.mark.parametrize("size", [(1100, 800), (760, 520), (600, 430)])
def test_axis_titles_fit_their_axes(qtbot, result, size):
    p = _sized(qtbot, result, size)
    hm = p.heatmap
    axes = hm._title_axes()
    lengths = (axes[0].geometry().height(), axes[1].geometry().width(), axes[2].geometry().height())
    for ax, length in zip(axes, lengths):
        text_w = QFontMetricsF(ax.label.font()).horizontalAdvance(ax.labelText)
        assert ax.labelText and text_w <= length, (size, ax.labelText, text_w, length)
    assert hm.titles() in TITLES
    if size == (1100, 800):
        assert hm.titles()[0].startswith("query") and len(hm.titles()[0]) > len("query")


@pytest.mark.parametrize(
    "size, n_tokens", [((1100, 800), None), ((760, 520), None), ((1100, 800), 40), ((600, 430), 40), ((1100, 800), 128)]
)
def test_token_labels_never_overlap(qtbot, engine, result, size, n_tokens):
    r = (
        result
        if n_tokens is None
        else engine.analyze(" ".join(["The bank of the river flooded."] * 30), max_tokens=n_tokens)
    )
    p = _sized(qtbot, r, size)
    hm = p.heatmap
    for ax in (hm.left_axis, hm.bottom_axis):
        rects = ax.label_rects()
        assert rects, (ax.orientation, size)
        _assert_apart(rects.values(), (ax.orientation, size, ax.mode))
        shown = sorted(rects)
        steps = sorted({b - a for a, b in itertools.pairwise(shown)})
        assert all(st % steps[0] == 0 for st in steps)  # every k-th token (one may give way at an end)
        box = ax.boundingRect()
        for rect in rects.values():  # inside the axis (the room the widget gives it)
            assert box.adjusted(-1, -1, 1, 1).contains(rect), (ax.orientation, rect, box)
    if size == (1100, 800) and n_tokens is None:  # every query labelled; keys too where the square leaves room
        assert sorted(hm.left_axis.label_rects()) == list(range(r.n_tokens))
        assert len(hm.bottom_axis.label_rects()) >= 3


def test_row_labels_keep_room_for_an_index_only_when_thinned(qtbot, engine):
    """Thinned labels carry their index ("10: ·it"), which takes room beside the matrix; a text of more than a
    dozen tokens whose every label is shown gives that room to the matrix instead."""
    from PySide6.QtGui import QFontMetricsF

    sentence = "The eagle catches the fish in the river because it is hungry."
    r = engine.analyze(sentence)
    assert r.n_tokens > 12
    p = _sized(qtbot, r, (900, 760))
    ax = p.heatmap.left_axis
    rects = ax.label_rects()
    assert sorted(rects) == list(range(r.n_tokens))  # every query named, without an index
    index = QFontMetricsF(ax._fonts()[0]).horizontalAdvance(f"{r.n_tokens}: ")
    title = ax.label.boundingRect().height() if ax.label.isVisible() else 0.0
    unused = min(rect.left() for rect in rects.values()) - ax.boundingRect().left() - title
    assert unused < index / 2, (unused, index)
    long = engine.analyze(" ".join([sentence] * 12), max_tokens=150)
    q = _sized(qtbot, long, (900, 760))
    thinned = q.heatmap.left_axis
    assert len(thinned.label_rects()) < long.n_tokens  # thinned: the indices are drawn and fit
    box = thinned.boundingRect()
    assert all(box.adjusted(-1, -1, 1, 1).contains(rect) for rect in thinned.label_rects().values())


def test_a_thinned_axis_names_the_selected_query_and_the_key_it_looks_at_most(qtbot):
    """A long text's axes label every k-th token; the selected query is named on the query axis (bold, in the
    highlight colour) and the key its row gives the most weight on the key axis, wherever they fall between the
    k-th ones, with a tick each and no label touching another (a k-th one gives way)."""
    from explainer.ui.widgets.attention_heatmap import AttentionHeatmap

    n, q, k = 60, 43, 17  # neither is a multiple of any step an axis uses
    weights = np.tril(np.full((n, n), 0.01, np.float32))
    weights[q, k] = 0.9
    hm = exposed(qtbot, AttentionHeatmap(), (520, 560))
    hm.set_matrix(weights, [f"·w{i}" for i in range(n)])
    drawn(hm)
    left, bottom = hm.left_axis, hm.bottom_axis
    assert q not in left.label_rects() and k not in bottom.label_rects()  # thinned: neither is a k-th token
    stepped, stepped_keys = sorted(left.label_rects()), sorted(bottom.label_rects())
    hm.show_selected(q)
    drawn(hm)
    assert hm.strongest_key(q) == k
    assert q in left.label_rects() and q in left.emphasis
    assert k in bottom.label_rects() and k not in bottom.emphasis  # named, in the plain style
    for ax in (left, bottom):
        rects = ax.label_rects()
        _assert_apart(rects.values(), ax.orientation)
        ticks = [v - 0.5 for v in ax.tickValues(*ax.range, ax.geometry().height() or 1)[0][1]]
        if ax is left:
            assert ticks == sorted(rects)  # a tick at each shown label, none at a label that gave way
    assert len(set(stepped) - set(left.label_rects())) <= 2  # at most its neighbours give way
    hm.show_token(5)  # a hovered token is named on both axes, the selected one stays
    drawn(hm)
    assert {5, q} <= set(left.label_rects()) and 5 in bottom.label_rects()
    hm.show_token(-1)
    hm.show_selected(-1)  # nothing selected: the k-th tokens only again
    drawn(hm)
    assert sorted(left.label_rects()) == stepped and k not in bottom.label_rects()
    cell = hm.vb.mapViewToScene(QPointF(k + 0.5, q + 0.5))  # the pointer over cell (q, k) names its key
    hm._on_mouse_moved(cell)
    drawn(hm)
    assert k in bottom.label_rects() and k not in bottom.emphasis
    hm._on_mouse_moved(hm.vb.mapViewToScene(QPointF(q + 1.5, q + 0.5)))  # a masked cell: no key looked at
    drawn(hm)
    assert sorted(bottom.label_rects()) == stepped_keys  # the k-th ones only
    hm.show_selected(q)
    hm._on_mouse_moved(hm.vb.mapViewToScene(QPointF(k + 1.5, q + 0.5)))  # the key beside the strongest one
    drawn(hm)
    rects = bottom.label_rects()
    assert k + 1 in rects and k not in rects  # they would touch: the pointer's is named


def test_the_named_key_is_the_models_strongest_one_and_follows_the_first_token_hiding(qtbot, engine):
    r = engine.analyze(" ".join(["The bank of the river flooded."] * 30), max_tokens=40)
    p = _sized(qtbot, r, (600, 430))
    q = 31
    p.select_position(q)
    raw = r.attention.head(p.layer, p.head)[q, : q + 1]
    hm = p.heatmap
    assert hm.strongest_key(q) == int(np.argmax(raw))
    assert hm.strongest_key(q) in hm.bottom_axis.label_rects()
    p.set_hide_first(True)  # the first column hidden, the rows renormalised: the strongest of the others
    assert hm.strongest_key(q) == 1 + int(np.argmax(raw[1:]))
    assert hm.strongest_key(q) in hm.bottom_axis.label_rects()
    assert hm.strongest_key(0) == -1  # the first row has only the hidden weight


def test_the_column_labels_step_comes_from_the_labels_it_shows_not_the_widest_of_all():
    """A long text's key axis labels every k-th token ("index: label"): k comes from the labels that would be
    shown, centred on their tokens (the first pushed inside), so one long word elsewhere does not thin them."""
    from explainer.ui.widgets.token_axis import _sparse_step

    widths, px, gap = [24] * 60, 9.0, 12.0
    assert _sparse_step(widths, px, gap) == 5
    elsewhere = list(widths)
    elsewhere[7] = 70  # shown at no step but 1 and 7
    assert _sparse_step(elsewhere, px, gap) == 5
    shown = list(widths)
    shown[10] = 70
    assert _sparse_step(shown, px, gap) == 10
    first = list(widths)
    first[0] = 70  # pushed inside at the left end: it reaches further right than a centred one
    assert _sparse_step(first, px, gap) == 10
    assert _sparse_step([], px, gap) == 1


def test_a_long_label_between_the_labelled_tokens_does_not_thin_the_column_labels(qtbot):
    from explainer.ui.widgets.attention_heatmap import AttentionHeatmap

    n = 60
    labels = ["·a"] * n
    labels[7] = "·extraordina"
    hm = exposed(qtbot, AttentionHeatmap(), (1000, 900))
    hm.set_matrix(np.tril(np.ones((n, n), np.float32)), labels)
    drawn(hm)
    ax = hm.bottom_axis
    assert ax.mode == "sparse"
    rects = ax.label_rects()
    _assert_apart(rects.values(), "sparse")
    shown = sorted(rects)
    step = shown[1] - shown[0]
    (x0, x1), _ = hm.vb.viewRange()
    px = ax.geometry().width() / (x1 - x0)
    widest = QFontMetricsF(ax._font_set()[1]).horizontalAdvance("7: ·extraordina")
    assert step * px < widest  # spaced for the widest of all, the labels would stand at least that far apart
    assert 7 not in shown and shown == list(range(0, n, step))


def test_short_sentence_column_labels_stand_upright(qtbot, engine):
    r = engine.analyze("How many r's are in strawberry?")
    p = _sized(qtbot, r, (1100, 800))
    ax = p.heatmap.bottom_axis
    assert ax.mode in ("flat", "stagger") and ax.labels == ax.full_labels  # upright, nothing shortened
    assert "·strawberry" in ax.labels  # the word the lecture is about, whole
    assert sorted(ax.label_rects()) == list(range(r.n_tokens))
    assert ax.geometry().height() < 0.25 * p.heatmap.height()


def test_column_labels_stand_on_three_rows_before_they_thin_out(qtbot, engine):
    """Where two rows of upright labels do not fit and the square leaves no room to turn them, three rows name
    every key (none shortened, none touching, inside the axis), and the cells stay square."""
    r = engine.analyze("How many r's are in strawberry?")
    p = _sized(qtbot, r, (760, 520))
    ax, vb = p.heatmap.bottom_axis, p.heatmap.vb
    assert ax.mode == "stagger3" and ax.labels == ax.full_labels
    rects = ax.label_rects()
    assert sorted(rects) == list(range(r.n_tokens))
    _assert_apart(rects.values(), "three rows")
    box = ax.boundingRect()
    assert all(box.adjusted(-1, -1, 1, 1).contains(rect) for rect in rects.values())
    assert len({round(rect.top()) for rect in rects.values()}) == 3
    assert abs(vb.width() - vb.height()) <= 1.5


@pytest.mark.parametrize(
    "text, size",
    [
        ("How many r's are in strawberry?", (590, 659)),
        ("How many r's are in strawberry?", (645, 706)),
        ("How many r's are in strawberry?", (590, 612)),
        ("The eagle catches the fish in the river because it is hungry.", (755, 800)),
        ("The eagle catches the fish in the river because it is hungry.", (865, 753)),
        ("The eagle catches the fish in the river because it is hungry.", (810, 800)),
        ("The cat sat on the mat", (535, 471)),
    ],
)
def test_the_column_labels_layout_and_the_square_agree(qtbot, engine, text, size):
    """The column labels' rows make the heatmap deeper and a square limited by its height smaller: their layout
    is chosen for the square it leaves, so the cells come out square and the labels fit (sizes where choosing
    from the square of the previous layout went back and forth)."""
    r = engine.analyze(text)
    p = _sized(qtbot, r, size)
    qtbot.wait(30)
    hm, ax = p.heatmap, p.heatmap.bottom_axis
    vb = hm.vb.sceneBoundingRect()
    assert abs(vb.width() - vb.height()) <= 1.5, (ax.mode, vb)
    rects = ax.label_rects()
    _assert_apart(rects.values(), ax.mode)
    if ax.mode in ("flat", "stagger", "stagger3"):
        assert sorted(rects) == list(range(r.n_tokens))


@pytest.mark.parametrize("size", [(1100, 800), (760, 520)])
def test_a_short_text_after_a_long_one_gets_its_column_labels_upright(qtbot, engine, size):
    """The column labels' layout is chosen again for a new number of tokens: a long text's turned or thinned
    labels do not stay when a short text (a scene, a paste) follows it."""
    long = engine.analyze(" ".join(["The bank of the river flooded."] * 12), max_tokens=60)
    short = engine.analyze("How many r's are in strawberry?")
    fresh = _sized(qtbot, short, size)
    p = _sized(qtbot, long, size)
    assert p.heatmap.bottom_axis.mode in ("rotated", "sparse")
    p.set_result(short)
    qtbot.waitUntil(lambda: p.heatmap.bottom_axis.mode == fresh.heatmap.bottom_axis.mode, timeout=2000)
    assert fresh.heatmap.bottom_axis.mode in ("flat", "stagger", "stagger3")
    assert sorted(p.heatmap.bottom_axis.label_rects()) == list(range(short.n_tokens))


def test_a_column_labels_plan_holds_only_for_the_length_it_was_made_for(qtbot):
    from explainer.ui.widgets.token_axis import TokenAxis

    ax = TokenAxis("bottom")
    ax.full_labels = ax.labels = ["·a", "·b", "·c", "·d"]
    ax.set_plan("turn-or-thin", 120.0)  # the area found no room for upright labels in a 120-pixel square
    ax.fit_to_length(121.0, max_extent=0.0)
    assert ax.mode == "sparse"
    ax.fit_to_length(900.0, max_extent=0.0)  # another length (an export, a resize not yet planned): the axis' own
    assert ax.mode == "flat"
    ax.set_plan("stagger", 900.0)
    ax.fit_to_length(899.0, max_extent=0.0)
    assert ax.mode == "stagger"  # planned: kept while it fits


def test_a_label_on_alternating_rows_may_be_wider_than_its_columns_where_its_row_leaves_room(qtbot):
    from explainer.ui.widgets.token_axis import LABEL_GAP_PX, TokenAxis

    ax = TokenAxis("bottom")
    m = ax._sparse_gap()
    fm = QFontMetricsF(ax._font_set()[1])  # (measured bold: an emphasised label is drawn bold)
    wide = "·strawberry"
    w = fm.horizontalAdvance(wide)
    px = (w + LABEL_GAP_PX) / 3 - 1  # the wide label does not fit three columns …
    labels = ["a", "b", "c", wide, "d", "e", "f"]
    assert not ax._upright_fits(labels, px, 1) and ax._upright_fits(labels, px, 3)  # … its row leaves room
    crowded = ["a", "b", "c", wide, "d", "e", "·neighbour"]  # the next on its row (3 further) comes too close
    gap = 3 * px - w / 2 - fm.horizontalAdvance("·neighbour") / 2
    assert gap < m and not ax._upright_fits(crowded, px, 3)


def test_column_labels_turn_only_into_room_the_square_leaves(qtbot, result):
    p = _sized(qtbot, result, (480, 1000))  # narrow and tall: room below the square
    ax = p.heatmap.bottom_axis
    assert ax.mode == "rotated" and ax.labels == ax.full_labels  # none shortened
    assert len(ax.label_rects()) >= result.n_tokens // 2  # every token or every other one
    _assert_apart(ax.label_rects().values(), "narrow")
    assert p.heatmap.geometry().bottom() <= p.area.height()
    q = _sized(qtbot, result, (900, 420))  # wide and short: the square takes the height, labels stay upright
    ax = q.heatmap.bottom_axis
    assert ax.mode in ("flat", "stagger", "sparse") and ax.labels == ax.full_labels
    _assert_apart(ax.label_rects().values(), "short")


def test_masked_note_covers_no_weight(qtbot, engine, result):
    shown = []
    for r, size in ((result, (1100, 800)), (engine.analyze("Hi there"), (500, 300)), (result, (600, 430))):
        p = _sized(qtbot, r, size)
        hm = p.heatmap
        if not hm.masked_text.isVisible():
            continue
        shown.append(size)
        hm.masked_text.updateTransform(force=True)
        note = hm.masked_text.sceneBoundingRect()
        for q in range(hm.n):
            for k in range(q + 1):
                cell = hm.vb.mapViewToScene(QRectF(k, q, 1, 1)).boundingRect().adjusted(1, 1, -1, -1)
                assert not note.intersects(cell), (size, q, k)
    assert (1100, 800) in shown  # a large heatmap has room for the note: the check above ran


def test_colour_bar_numbers_do_not_collide(qtbot, result):
    for size in ((1100, 800), (600, 380)):
        p = _sized(qtbot, result, size)
        ax = p.heatmap.colorbar.axis
        ticks = p.heatmap.colorbar_ticks()
        assert ticks[0] == 0.0 and ticks[-1] == 1.0
        px_per_tick = ax.geometry().height() * (ticks[1] - ticks[0])
        assert px_per_tick >= QFontMetricsF(ax.style["tickFont"]).height()


def test_attention_lines_are_cut_to_the_rows_being_painted():
    from explainer.ui.widgets.attention_lines import AttentionLines

    class Recorder:
        def __init__(self):
            self.lines, self.pens = [], []

        def setRenderHint(self, hint, on):
            pass

        def setPen(self, pen):
            self.pens.append(pen)

        def drawLines(self, lines):
            self.lines += [(ln.x1(), ln.y1(), ln.x2(), ln.y2()) for ln in lines]

    yq = np.array([10.0, 500.0, 300.0, 250.0])
    yk = np.array([10.0, 20.0, 300.0, 200.0])
    ws = np.array([0.5, 0.9, 0.1, 0.5])
    rec = Recorder()
    AttentionLines._draw_lines(rec, "#0072b2", 0.0, 100.0, yq, yk, ws, top=100.0, bottom=400.0)
    assert len(rec.lines) == 4 and len(rec.pens) == 3  # one pen per weight step
    for xa, ya, xb, yb in rec.lines:
        assert (100.0 <= ya <= 400.0 and 100.0 <= yb <= 400.0) or ya == yb == 10.0  # a flat line is not cut
        for x, y in ((xa, ya), (xb, yb)):  # still on its own line
            k = next(j for j in range(4) if abs(yq[j] + (yk[j] - yq[j]) * x / 100.0 - y) < 1e-6)
            assert k is not None
    steep = next(ln for ln in rec.lines if ln[1] != ln[3] and abs(ln[3] - ln[1]) > 100)  # from 500 to 20
    assert steep[1] == pytest.approx(400.0) and steep[3] == pytest.approx(100.0)
    assert [p.widthF() for p in rec.pens] == sorted(p.widthF() for p in rec.pens)  # strongest drawn last


def test_the_hidden_lines_view_is_brought_up_to_date_when_shown(panel, engine):
    """While the heatmap tab is shown the lines view is left alone; choosing its tab shows the matrix of the
    newest result, head and first-token setting."""
    assert panel.tabs.currentIndex() == 0
    before = np.array(panel.lines.matrix)
    panel.set_result(engine.analyze("A different text, longer than the first one."))
    panel.select_head(1, 2)
    panel.set_hide_first(True)
    assert panel.lines.matrix.shape == before.shape and np.array_equal(panel.lines.matrix, before)
    panel.tabs.setCurrentIndex(1)
    np.testing.assert_allclose(panel.lines.matrix, np.nan_to_num(panel.current_matrix()))
    assert len(panel.lines.labels) == panel.result.n_tokens
    panel.set_result(engine.analyze("A third text."))  # while shown: at once
    np.testing.assert_allclose(panel.lines.matrix, np.nan_to_num(panel.current_matrix()))


def test_a_result_with_one_more_token_draws_the_heatmap_once(panel, engine, qtbot):
    """The view's new range is applied when it is set, not while the heatmap is drawn (which would draw it again)."""
    from PySide6.QtWidgets import QApplication

    from explainer.bench_window import paint_counter

    viewport = panel.heatmap.viewport()
    qtbot.wait(50)
    paints = paint_counter()
    viewport.installEventFilter(paints)
    n = panel.result.n_tokens
    longer = engine.analyze(TEXT + " again")
    assert longer.n_tokens > n
    panel.set_result(longer)
    for _ in range(5):
        QApplication.processEvents()
        qtbot.wait(10)
    assert paints.count == 1
    (x0, x1), _ = panel.heatmap.vb.viewRange()
    assert x1 == pytest.approx(longer.n_tokens)  # the whole (short) matrix is shown


def test_token_axes_drawn_from_their_cache_show_what_a_fresh_drawing_shows(qtbot):
    """An axis keeps its drawn picture while the labels it shows stay (typing on inside the last token of a long
    text); whatever it shows after a sequence of results is exactly what a heatmap given only the last one shows."""

    from explainer.ui.widgets.attention_heatmap import AttentionHeatmap

    n = 60
    rng = np.random.default_rng(3)
    weights = np.tril(rng.uniform(0, 1, (n, n))).astype(np.float32)
    words = [f"·w{i}" for i in range(n)]

    def heatmap():
        return exposed(qtbot, AttentionHeatmap(), (520, 560))

    typed = heatmap()
    kept = 0
    steps = [  # the last token grows a letter at a time, then a new token, then a word in the middle changes
        (n - 1, words[:-1] + ["·c"]),
        (n - 1, words[:-1] + ["·ca"]),
        (n - 1, words[:-1] + ["·cat"]),
        (n, words[:-1] + ["·cat", "·s"]),
        (n, words[:30] + ["·dog"] + words[31:-1] + ["·cat", "·s"]),
    ]
    for i, (size, labels) in enumerate(steps):
        typed.set_matrix(weights[:size, :size], labels)
        if i and all(ax.picture is not None for ax in (typed.left_axis, typed.bottom_axis)):
            kept += 1  # nothing shown changed: neither axis is drawn again
        fresh = heatmap()
        fresh.set_matrix(weights[:size, :size], labels)
        assert drawn(typed) == drawn(fresh), (i, labels[-1])
    assert kept >= 1  # the cache was used
    fresh = heatmap()
    fresh.set_matrix(weights, steps[-1][1])
    drawn(fresh)  # laid out, as the typed one is
    for hm in (typed, fresh):  # the whole matrix (another range), a selected and a hovered token (bold labels)
        hm.show_all()
        hm.show_selected(30)
        hm.show_token(30)
    assert drawn(typed) == drawn(fresh)
    typed.show_token(-1)  # the pointer leaves: plain labels again
    assert drawn(typed) != drawn(fresh)
    fresh.show_token(-1)
    assert drawn(typed) == drawn(fresh)


def test_a_label_typed_on_between_two_shown_ones_changes_nothing_drawn_until_it_would_show(qtbot):
    """In a long text the axes show every k-th token. Typing on inside the last token, when that one is not
    shown, leaves both axes as they are, not laid out again; a label that grows past the widest one widens the
    axis. Each time the heatmap shows exactly what a fresh one given only those labels shows."""
    from explainer.ui.widgets.attention_heatmap import AttentionHeatmap

    typed = exposed(qtbot, AttentionHeatmap(), (520, 560))
    left = typed.left_axis
    for n in range(131, 141):  # a length whose last token is not one of the labelled ones at this size
        weights = np.tril(np.random.default_rng(6).uniform(0, 1, (n, n))).astype(np.float32)
        words = [f"·w{i}" for i in range(n)]
        typed.set_matrix(weights, words)
        drawn(typed)
        if (n - 1) not in {idx for idx, *_ in left._layout()}:
            break
    assert (n - 1) not in {idx for idx, *_ in left._layout()}
    kept_layout, kept_width = left._layout(), left.width()
    for last in ("·c", "·ca", "·cat"):
        labels = words[:-1] + [last]
        typed.set_matrix(weights, labels)
        assert left._layout() is kept_layout and left.full_labels[-1] == last  # taken, not laid out again
        fresh = exposed(qtbot, AttentionHeatmap(), (520, 560))
        fresh.set_matrix(weights, labels)
        assert drawn(typed) == drawn(fresh), last
    labels = words[:-1] + ["·extraordinarily"]  # wider than every other label: the axis is laid out again
    typed.set_matrix(weights, labels)
    assert left._layout() is not kept_layout
    fresh = exposed(qtbot, AttentionHeatmap(), (520, 560))
    fresh.set_matrix(weights, labels)
    assert drawn(typed) == drawn(fresh)
    assert left.width() > kept_width


def test_a_new_last_row_redraws_only_its_strip_and_the_screen_shows_what_a_fresh_drawing_shows(qtbot):
    """Typing inside the last token of a text changes only the matrix's last row (a causal model: no earlier
    query sees the new token): only that strip of the view is drawn again, and the screen then shows exactly
    what a heatmap given only the new matrix shows."""
    from explainer.ui.widgets.attention_heatmap import AttentionHeatmap
    from tests.pixels import on_screen, painted_area

    n = 60
    rng = np.random.default_rng(4)
    matrix = np.tril(rng.uniform(0, 1, (n, n))).astype(np.float32)
    words = [f"·w{i}" for i in range(n)]
    typed = exposed(qtbot, AttentionHeatmap(), (520, 560))
    typed.set_matrix(matrix, words)
    qtbot.wait(50)
    matrix = matrix.copy()
    matrix[-1] = rng.uniform(0, 1, n)
    typed.set_matrix(matrix, words)  # (Qt's scene draws the whole view at an item's first update after showing)
    on_screen(typed)
    painted = painted_area(typed.viewport())
    view = typed.viewport().width() * typed.viewport().height()
    shown = []  # (matrix, what the screen showed, the area drawn for it)
    for step in range(4):
        matrix = matrix.copy()
        if step < 3:
            matrix[-1] = rng.uniform(0, 1, n)  # (the upper triangle is masked by the heatmap)
        else:
            matrix[5, :3] = 0.5  # an earlier row changes too (another head shown): drawn from that row on
        painted.area = 0
        typed.set_matrix(matrix, words)
        shown.append((matrix, on_screen(typed), painted.area))
    painted.area = 0
    typed.set_matrix(matrix.copy(), words)  # the same numbers again: nothing to draw
    on_screen(typed)
    assert painted.area == 0
    for step, (m, screen, area) in enumerate(shown):
        if step < 3:
            assert 0 < area <= 0.05 * view, step  # the last row's strip, not the view
        fresh = exposed(qtbot, AttentionHeatmap(), (520, 560))
        fresh.set_matrix(m, words)
        assert screen == drawn(fresh), step


def test_the_head_grid_shows_what_a_fresh_one_shows_after_new_values_shapes_and_styles(qtbot):
    """The grid's numbered axes are drawn from a cache: new values leave them; a new shape (another model), a
    turned grid or a new font draws them again, exactly as a grid given only the last state."""
    from PySide6.QtWidgets import QApplication

    from explainer.ui import theme as th
    from explainer.ui.widgets.head_grid import HeadGrid

    rng = np.random.default_rng(5)

    def grid():
        return exposed(qtbot, HeadGrid(), (300, 420))

    big = QApplication.font()  # presenter mode's larger font
    big.setPointSizeF(big.pointSizeF() * 1.5)
    states = [
        (30, 9, False, None, rng.uniform(0, 1, (30, 9))),
        (30, 9, False, None, rng.uniform(0, 1, (30, 9))),  # new values only
        (12, 4, False, None, rng.uniform(0, 1, (12, 4))),  # another model
        (12, 4, True, None, rng.uniform(0, 1, (12, 4))),  # turned
        (12, 4, True, big, rng.uniform(0, 1, (12, 4))),  # presenter fonts
    ]
    kept = grid()
    for i, (layers, heads, turned, f, values) in enumerate(states):
        fresh = grid()
        for g in (kept, fresh):
            if f is not None:
                g.set_axis_style(f, th.LIGHT.text, th.LIGHT.muted)
            g.set_shape(layers, heads, turned)
            g.reset_view()  # (the panel resizes the grid to the new shape, which does this)
            g.set_values(values)
        assert drawn(kept) == drawn(fresh), i


def drawn(widget):
    """What ``widget`` shows once the events pending now are handled."""
    from PySide6.QtWidgets import QApplication

    for _ in range(3):
        QApplication.processEvents()
    return widget.grab().toImage()
