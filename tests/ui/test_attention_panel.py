"""Attention panel: what is drawn equals the model's weights; average, sink hiding, grid clicks, keys, hover."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

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
from tests.pixels import colour_share, screenshot_alone

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
    return panel.heatmap.image.image  # the array handed to the ImageItem


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
    m = ad.mosaic(p[None].repeat(3, 0))
    assert m.shape == (3 * 6, 2 * 6) and np.isnan(m[5, 0])


def test_thumbnails_from_blocks_equal_pooled_heads():
    rng = np.random.default_rng(1)
    L, H = 3, 4
    for T in (5, 37, 70):
        a = rng.random((L, H, T, T)).astype(np.float32) * np.tril(np.ones((T, T), np.float32))
        a /= a.sum(-1, keepdims=True)
        cuts = [0, T // 3, T // 3 + 1, T]
        att = Attention([a[:, :, s:e, :e] for s, e in zip(cuts[:-1], cuts[1:]) if e > s])
        for hide in (False, True):
            want = np.stack([ad.pool_max(ad.hide_sink(a[lay]) if hide else a[lay], 32) for lay in range(L)])
            got = ad.thumbnails(att, hide, 32)
            np.testing.assert_allclose(np.nan_to_num(got, nan=-1), np.nan_to_num(want, nan=-1), rtol=1e-5, atol=1e-6)


def test_thumbnail_click_selects_head(panel, result, qtbot):
    grid = panel.grid
    L, H = result.attention.n_layers, result.attention.n_heads
    layer, head = L - 1, H - 2
    scene_pt = grid.vb.mapViewToScene(QPointF(head + 0.5, layer + 0.5))
    with qtbot.waitSignal(panel.headSelected) as sig:
        qtbot.mouseClick(grid.viewport(), Qt.LeftButton, pos=grid.mapFromScene(scene_pt))
    assert sig.args == [layer, head]
    np.testing.assert_array_equal(panel.current_matrix(), result.attention.head(layer, head))
    r = grid.outline.rect()
    assert grid.outline.isVisible() and (r.x(), r.y(), r.width(), r.height()) == (head, layer, 1, 1)


def test_incremental_pooling_reuses_blocks():
    rng = np.random.default_rng(2)
    L, H, T = 2, 3, 90
    a = rng.random((L, H, T, T)).astype(np.float32) * np.tril(np.ones((T, T), np.float32))
    a /= a.sum(-1, keepdims=True)
    pooler = ad.ThumbnailPooler(32)
    att = Attention([a[:, :, :70, :70]])
    for stop in (71, 75, 90):  # keystrokes: new row blocks appended to the shared ones
        att = att.truncated(att.n_tokens).extended(a[:, :, att.n_tokens : stop, :stop])  # fresh views, as the engine
        for hide in (False, True):
            want = np.stack(
                [
                    ad.pool_max(ad.hide_sink(a[lay, :, :stop, :stop]) if hide else a[lay, :, :stop, :stop], 32)
                    for lay in range(L)
                ]
            )
            got = pooler(att, hide)
            np.testing.assert_allclose(np.nan_to_num(got, nan=-1), np.nan_to_num(want, nan=-1), rtol=1e-5, atol=1e-6)
    assert len(pooler._cache) == 2 * len(att.blocks)


def test_grid_mosaic_matches_pooled_heads(panel, result):
    n = min(result.n_tokens, 32)
    thumbs = ad.thumbnails(result.attention, False, 32)
    assert thumbs.shape == (result.attention.n_layers, result.attention.n_heads, n, n)
    np.testing.assert_array_equal(
        np.nan_to_num(panel.grid.image.image, nan=-1), np.nan_to_num(ad.mosaic(thumbs), nan=-1)
    )
    panel.set_hide_first(True)  # the grid follows the sink toggle
    np.testing.assert_array_equal(
        np.nan_to_num(panel.grid.image.image, nan=-1),
        np.nan_to_num(ad.mosaic(ad.thumbnails(result.attention, True, 32)), nan=-1),
    )


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
    p.set_result(r)
    assert p.grid.image.image.shape[0] == r.attention.n_layers * (32 + 1)  # 32 bins of 4 tokens + a gap
    np.testing.assert_array_equal(p.current_matrix(), r.attention.head(0, 0))


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
    qtbot.wait(20)
    return p


def _assert_apart(rects, what):
    rects = list(rects)
    for i, a in enumerate(rects):
        for b in rects[i + 1 :]:
            assert not a.intersects(b), (what, a, b)


def test_heatmap_fills_its_width_and_height(panel, result):
    hm = panel.heatmap
    rect, vb = _matrix_rect(hm), hm.vb.sceneBoundingRect()
    assert rect.width() >= 0.65 * hm.width()  # square cells used to leave much of the width empty
    assert rect.width() >= vb.width() - 1 and rect.height() >= vb.height() - 1
    assert abs(rect.width() / result.n_tokens - rect.height() / result.n_tokens) > 1  # cells need not be square


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
        steps = {b - a for a, b in itertools.pairwise(shown)}
        assert len(steps) <= 1  # every k-th token
        box = ax.boundingRect()
        for rect in rects.values():  # inside the axis (the room the widget gives it)
            assert box.adjusted(-1, -1, 1, 1).contains(rect), (ax.orientation, rect, box)
    if size == (1100, 800) and n_tokens is None:  # every token labelled
        assert sorted(hm.left_axis.label_rects()) == list(range(r.n_tokens))
        assert sorted(hm.bottom_axis.label_rects()) == list(range(r.n_tokens))


def test_short_sentence_column_labels_stand_upright(qtbot, engine):
    r = engine.analyze("How many r's are in strawberry?")
    p = _sized(qtbot, r, (1100, 800))
    ax = p.heatmap.bottom_axis
    assert ax.mode in ("flat", "stagger") and ax.labels == ax.full_labels  # upright, nothing shortened
    assert sorted(ax.label_rects()) == list(range(r.n_tokens))
    assert ax.geometry().height() < 0.25 * p.heatmap.height()


def test_narrow_heatmap_rotates_and_shortens_column_labels(qtbot, result):
    p = _sized(qtbot, result, (420, 700))
    ax = p.heatmap.bottom_axis
    assert ax.mode in ("rotated", "stagger")
    assert ax.geometry().height() <= 0.45 * p.heatmap.height()  # the matrix keeps most of the height
    assert all(s == f or s.endswith("…") for s, f in zip(ax.labels, ax.full_labels))
    _assert_apart(ax.label_rects().values(), "narrow")


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
