"""Embeddings panel: the points are the projector's coordinates, on a fixed map per layer."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QRectF, Qt

from explainer.core.projection import Projector, nearest_neighbours
from explainer.ui import theme as th
from explainer.ui.panels import demo_data
from explainer.ui.panels.embeddings import EmbeddingsPanel, layer_name
from tests.pixels import distinct_colours, screenshot_alone

TEXT = demo_data.DEMO_TEXT


@pytest.fixture(scope="module")
def engine():
    from explainer.core.engine import demo_engine

    return demo_engine()  # its own: the projector fits axes on it


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def projector(engine, cache_root):
    p = Projector(engine, cache_dir=cache_root / "projection")  # the layout paths.cache_dir() uses
    p.prepare()
    return p


@pytest.fixture
def panel(qtbot, projector, engine):
    p = EmbeddingsPanel(projector=projector)
    qtbot.addWidget(p)
    p.resize(1000, 750)
    p.show()
    p.set_result(engine.analyze(TEXT))
    qtbot.waitExposed(p)
    return p


def test_coordinates_equal_projector(panel, projector):
    r = panel.result
    for layer in range(r.model.n_layers + 1):
        panel.set_layer(layer)
        np.testing.assert_array_equal(panel.coordinates(), projector.project(r, layer))
        assert panel.coordinates().shape == (r.n_tokens, 2)
        drawn = panel.map.points.positions()
        x0, x1, y0, y1 = projector.fit_layer(layer).bounds
        want = np.column_stack([np.clip(panel.coordinates()[:, 0], x0, x1), np.clip(panel.coordinates()[:, 1], y0, y1)])
        np.testing.assert_allclose(drawn, want, rtol=1e-5, atol=1e-5)


def test_slider_changes_layer_and_coordinates(panel, qtbot):
    n = panel.result.model.n_layers
    first = panel.coordinates().copy()
    with qtbot.waitSignal(panel.layerChanged) as sig:
        panel.slider.setValue(n)
    assert sig.args == [n]
    assert panel.layer == n and panel.layer_label.text() == layer_name(n) == f"after layer {n}"
    assert not np.allclose(first, panel.coordinates())
    panel.slider.setValue(0)
    assert panel.layer_label.text() == "Layer 0" and "Layer 0 (input embeddings)" in panel.info.text()
    np.testing.assert_array_equal(first, panel.coordinates())


def test_view_is_fixed_while_typing(panel, projector, engine):
    panel.set_layer(1)
    fits = projector.fit_count
    view = panel.map.vb.viewRange()
    coords = panel.coordinates().copy()
    for text in ("I sat", "I sat on the bank of the river. I put", TEXT):
        panel.set_result(engine.analyze(text))
        assert panel.map.vb.viewRange() == view
    assert projector.fit_count == fits
    # same text → same coordinates (up to the engine's float noise between full and incremental runs)
    np.testing.assert_allclose(panel.coordinates(), coords, atol=1e-4)


def test_same_token_context_moves_apart(panel):
    """Layer 0 gives both "bank"s the same point; a later layer separates them (any model mixes context)."""
    r = panel.result
    banks = [i for i, t in enumerate(r.tokens) if t.display == "·bank"]
    assert len(banks) == 2
    panel.set_layer(0)
    c = panel.coordinates()
    assert np.allclose(c[banks[0]], c[banks[1]])
    panel.set_layer(r.model.n_layers)
    c = panel.coordinates()
    assert np.linalg.norm(c[banks[0]] - c[banks[1]]) > 1e-3


def test_the_map_names_tokens_as_every_panel_does(panel):
    r = panel.result
    assert r.tokens[0].added and panel.map.texts[0] == "⟨start⟩"  # not its special token's text
    assert panel.map.texts == [t.label for t in r.tokens]


def test_click_and_hover_points(panel, qtbot):
    panel.set_layer(0)
    m = panel.map
    i = 3
    scene = m.vb.mapViewToScene(QPointF(*m.xy[i]))
    with qtbot.waitSignal(panel.tokenHovered) as hov:
        m._on_mouse_moved(scene)
    assert hov.args[0] in np.nonzero(np.all(m.xy == m.xy[i], axis=1))[0]
    with qtbot.waitSignal(panel.tokenSelected) as sel:
        qtbot.mouseClick(m.viewport(), Qt.LeftButton, pos=m.mapFromScene(scene))
    j = sel.args[0]
    assert np.allclose(m.xy[j], m.xy[i]) and panel.selected_position == j
    assert "Nearest to" in panel.neighbours.text()
    tid = int(panel.result.ids[j])
    first = nearest_neighbours(panel.projector.embedding_table, tid, 1)[0][0]
    assert (panel.projector.token_label(first) or str(first)).replace("<", "&lt;") in panel.neighbours.text()


def test_highlight_and_path(panel):
    panel.highlight_token(2)
    assert panel.map.hovered == 2
    n = panel.result.model.n_layers
    panel.select_position(5)
    panel.set_layer(n)
    panel.path_box.setChecked(True)
    xs, ys = panel.map.path.getData()
    assert len(xs) == n + 1
    want = panel.projector.trajectory(panel.result, 5, n)
    x0, x1, y0, y1 = panel.map.bounds
    np.testing.assert_allclose(xs, np.clip(want[:, 0], x0, x1), rtol=1e-5)
    np.testing.assert_allclose(ys, np.clip(want[:, 1], y0, y1), rtol=1e-5)
    np.testing.assert_allclose(want[-1], panel.coordinates()[5], rtol=1e-5)
    panel.path_box.setChecked(False)
    xs, _ = panel.map.path.getData()
    assert xs is None or len(xs) == 0


def test_without_prepared_axes(qtbot, engine, tmp_path):
    p = EmbeddingsPanel(projector=Projector(engine, cache_dir=tmp_path))  # nothing fitted, fit_missing False
    qtbot.addWidget(p)
    p.set_result(engine.analyze(TEXT))
    assert "being prepared" in p.info.text() and p.coordinates().shape == (0, 2)
    p.set_projector(p.projector, fit_missing=True)
    assert p.coordinates().shape == (p.result.n_tokens, 2)
    q = EmbeddingsPanel()
    qtbot.addWidget(q)
    q.set_result(engine.analyze(TEXT))
    assert "No projection" in q.info.text()


def test_grab_is_not_blank(panel):
    img = panel.grab().toImage()
    colours = {img.pixel(x, y) for x in range(0, img.width(), 7) for y in range(0, img.height(), 7)}
    assert len(colours) > 20


def test_runs_alone(tmp_path, projector, cache_root):
    # shares the module's projection cache: the demo engine is seeded, so the axes are found on disk
    env = {"EXPLAINER_CACHE": str(cache_root)}
    pixels = screenshot_alone("embeddings", tmp_path / "embeddings.png", "--layer", "1", env=env, timeout=180)
    assert pixels.shape == (750, 1000, 3)
    assert distinct_colours(pixels) > 500  # the map in colour: text alone gives a few hundred shades


@pytest.mark.parametrize("text, start", [("", False), ("", True), ("Hi", True)])
def test_tiny_texts(qtbot, projector, engine, text, start):
    r = engine.analyze(text, start_token=start)
    p = EmbeddingsPanel(projector=projector)
    qtbot.addWidget(p)
    p.set_result(r)
    p.select_position(0)
    p.path_box.setChecked(True)
    for layer in (0, r.model.n_layers):
        p.set_layer(layer)
        assert p.coordinates().shape == (r.n_tokens, 2)
    p.grab()


# --- layout: the map fills the plot, labels never overlap (legibility on a projector) ---------------------------
def _label_boxes(m):
    """``{position: scene rect}`` of the token labels as they are drawn."""
    m.grab()  # paint: the view's transform and the labels' are brought up to date
    boxes = {}
    for i, t in m.labels.items():
        if i < len(m.texts) and t.isVisible():
            t.updateTransform(force=True)
            boxes[i] = t.sceneBoundingRect()
    return boxes


def _assert_legible(m, must_show=()):
    boxes = _label_boxes(m)
    items = list(boxes.items())
    for k, (i, a) in enumerate(items):
        for j, b in items[k + 1 :]:
            assert not a.intersects(b), (m.texts[i], m.texts[j], a, b)
    plot = m.vb.sceneBoundingRect().adjusted(-1, -1, 1, 1)
    for i, box in boxes.items():
        if i not in must_show:
            assert plot.contains(box), (m.texts[i], box, plot)
            for j in range(len(m.texts)):  # an ordinary label hides no point
                if not np.allclose(m.xy[j], m.xy[i]):
                    c = m.vb.mapViewToScene(QPointF(*m.xy[j]))
                    assert not box.adjusted(2, 2, -2, -2).contains(c), (m.texts[i], m.texts[j])
    for i in must_show:
        assert i in boxes and m.texts[i] in m.labels[i].toPlainText()
    return boxes


@pytest.mark.parametrize("size", [(1000, 750), (760, 330)])
def test_labels_never_overlap(panel, qtbot, size):
    panel.resize(*size)
    qtbot.wait(20)
    for layer in (0, 1, panel.result.model.n_layers):
        panel.set_layer(layer)
        boxes = _assert_legible(panel.map)
        assert len(boxes) >= 4, (size, layer, len(boxes))


def test_hovered_and_selected_labels_always_show(panel, qtbot):
    panel.resize(760, 330)
    qtbot.wait(20)
    m = panel.map
    for layer in (0, panel.result.model.n_layers):
        panel.set_layer(layer)
        panel.select_position(2)
        for i in range(panel.result.n_tokens):
            panel.highlight_token(i)
            _assert_legible(m, must_show=(i, 2) if i != 2 else (2,))
    panel.highlight_token(-1)
    panel.select_position(-1)


def test_map_fills_the_plot_area(panel, qtbot):
    for size in ((1000, 750), (1200, 420)):  # a wide, short plot too: the map is stretched, not boxed
        panel.resize(*size)
        qtbot.wait(20)
        m = panel.map
        x0, x1, y0, y1 = m.bounds
        drawn = m.vb.mapViewToScene(QRectF(x0, y0, x1 - x0, y1 - y0)).boundingRect()
        vb = m.vb.sceneBoundingRect()
        assert drawn.width() >= 0.9 * vb.width() and drawn.height() >= 0.9 * vb.height(), (size, drawn, vb)


@pytest.mark.parametrize("size", [(1000, 750), (700, 300)])
def test_axis_titles_fit(panel, qtbot, size):
    from PySide6.QtGui import QFontMetricsF

    panel.resize(*size)
    qtbot.wait(20)
    item = panel.map.getPlotItem()
    x, y = panel.map.axis_titles()
    assert x.startswith("axis 1") and y.startswith("axis 2")
    for name, title in (("bottom", x), ("left", y)):
        ax = item.getAxis(name)
        length = ax.geometry().width() if name == "bottom" else ax.geometry().height()
        assert QFontMetricsF(ax.label.font()).horizontalAdvance(title) <= length, (size, title, length)
    if size == (1000, 750):
        assert "%" in x and "%" in y  # the share of the spread, where there is room


def test_a_scene_pair_is_ringed_and_labelled(panel, qtbot):
    panel.resize(760, 330)  # small: ordinary labels give way, the pair's do not
    qtbot.wait(20)
    m, n = panel.map, panel.result.n_tokens
    pair = [2, n - 1]
    panel.apply_scene_state({"layer": panel.result.model.n_layers, "highlight": pair})
    assert panel.highlight == pair and panel.scene_state()["highlight"] == pair
    _assert_legible(m, must_show=pair)
    pens = {i: pg_colour(style[3]) for i, style in enumerate(m.points.styles())}  # outline colours
    assert all(pens[i] == pg_colour(th.HIGHLIGHT) for i in pair)
    panel.apply_scene_state({"highlight": []})
    assert m.marked == () and "highlight" not in panel.scene_state()
    panel.apply_scene_state({"highlight": ["x"]})  # a damaged scene value is ignored
    assert m.marked == ()


def test_a_scene_names_the_words_the_pair_sits_by(panel, qtbot):
    """Context words a scene names are labelled however crowded the map, in the plain colour and without a ring."""
    panel.resize(760, 330)
    qtbot.wait(20)
    m, n = panel.map, panel.result.n_tokens
    pair, words = [2, n - 1], [1, n - 2]
    panel.apply_scene_state({"layer": panel.result.model.n_layers, "highlight": pair, "labelled": words})
    assert m.named == tuple(words) and panel.scene_state()["labelled"] == words
    _assert_legible(m, must_show=pair + words)
    pens = {i: pg_colour(style[3]) for i, style in enumerate(m.points.styles())}  # outline colours
    assert all(pens[i] != pg_colour(th.HIGHLIGHT) for i in words)  # named, not ringed
    assert all(m.labels[i].textItem.defaultTextColor().name() != pg_colour(th.HIGHLIGHT) for i in words)
    panel.apply_scene_state({"labelled": ["x"]})  # a damaged scene value is ignored
    assert m.named == tuple(words)


def pg_colour(c: str) -> str:
    from PySide6.QtGui import QColor

    return QColor(c).name()


def test_redrawing_reuses_the_point_symbols(panel, engine):
    """Each update restyles every point; each look's image is drawn once and then reused, not drawn anew (and
    kept) on every keystroke."""
    m = panel.map
    results = [engine.analyze(TEXT + " again" * (k + 1)) for k in range(2)]

    def cycle():
        for k in range(6):
            panel.set_result(results[k % 2])
            panel.select_position(2 + k % 3)
            panel.map.grab()  # drawn

    cycle()  # every style once
    size = m.points.sprite_count()
    assert size >= 2  # plain and selected points at least
    cycle()
    cycle()
    assert m.points.sprite_count() == size
    assert len({s for s in m.points.styles()}) <= 4


def test_a_crowded_map_labels_only_the_focus_and_its_twins(panel, qtbot, engine):
    """Above MAX_LABELS tokens only the hovered / selected token and the tokens sharing its id are labelled; moving
    the hover takes the old label away, and a shorter text hides the labels of the points it no longer has. Only
    the labels shown are ever made (a long text does not cost a text item per token)."""
    from explainer.ui.widgets.embedding_map import MAX_LABELS

    m = panel.map
    made = set(m.labels)  # for the text shown before
    long_text = " ".join(["the cat sat on the mat"] * 20)
    panel.set_result(engine.analyze(long_text))
    n = panel.result.n_tokens
    assert n > MAX_LABELS

    def shown():
        return {i for i, t in m.labels.items() if t.isVisible()}

    assert shown() == set() and set(m.labels) == made  # a label is made only for a token that is named
    ids = panel.result.ids
    a, b = 3, n - 2
    assert ids[a] != ids[b]
    panel.highlight_token(a)
    assert a in shown() and shown() <= set(np.nonzero(ids == ids[a])[0].tolist())
    panel.highlight_token(b)
    assert b in shown() and a not in shown() and shown() <= set(np.nonzero(ids == ids[b])[0].tolist())
    panel.set_result(engine.analyze("the cat"))
    short = panel.result.n_tokens
    assert all(i < short for i in shown())
    _assert_legible(m)


def test_the_vocabulary_cloud_is_cached_and_redrawn_when_it_changes(qtbot):
    """The thousands of cloud dots are drawn once into a pixmap, not at every keystroke; that pixmap follows a
    new cloud (another layer) and a new size at once."""
    from PySide6.QtWidgets import QGraphicsItem

    from explainer.ui.widgets.embedding_map import EmbeddingMap

    m = EmbeddingMap()
    qtbot.addWidget(m)
    m.resize(420, 420)
    m.show()
    qtbot.waitExposed(m)
    m.set_bounds((-1.0, 1.0, -1.0, 1.0))
    assert m.cloud.cacheMode() == QGraphicsItem.DeviceCoordinateCache
    rng = np.random.default_rng(0)

    def shown():
        qtbot.wait(20)
        return m.grab().toImage()

    m.set_cloud(rng.uniform(-1, 0, (800, 2)))  # the lower left quarter
    left = shown()
    m.set_cloud(rng.uniform(0, 1, (800, 2)))  # the upper right quarter
    right = shown()
    assert left != right

    def dots(img, x0, x1, y0, y1):  # pixels that differ from the map's background, in a part of the map
        bg = img.pixelColor(int(x0 * img.width()), 2)
        return sum(
            img.pixelColor(x, y) != bg
            for x in range(int(x0 * img.width()), int(x1 * img.width()), 3)
            for y in range(int(y0 * img.height()), int(y1 * img.height()), 3)
        )

    assert dots(right, 0.6, 0.9, 0.15, 0.4) > dots(left, 0.6, 0.9, 0.15, 0.4) + 20  # the new cloud, not the old
    m.resize(620, 620)
    bigger = shown()
    assert bigger.size() != right.size() and dots(bigger, 0.6, 0.9, 0.15, 0.4) > 20


@pytest.mark.parametrize("vector", [False, True], ids=["pixels", "vector"])
def test_each_point_is_drawn_at_its_place_in_its_colour(panel, vector):
    """A point's marker is centred on its coordinates, filled with its style's colour: drawn from its image into
    pixels, or as a vector symbol where the painter records shapes (an SVG export; here a QPicture)."""
    from PySide6.QtGui import QImage, QPainter, QPicture

    from tests.pixels import image_array, rgb

    m = panel.map
    panel.set_layer(panel.result.model.n_layers)
    view = m.viewport()
    if vector:
        picture = QPicture()
        p = QPainter(picture)
        m.render(p)
        p.end()
        image = QImage(m.size(), QImage.Format_ARGB32)
        image.fill(0)
        p = QPainter(image)
        picture.play(p)
        p.end()
        pixels = image_array(image)
    else:
        pixels = image_array(m)
    xy, styles = m.points.positions(), m.points.styles()
    device = np.array([[*m.mapFromScene(m.vb.mapViewToScene(QPointF(*pt))).toTuple()] for pt in xy])
    device += np.array(view.mapTo(m, view.rect().topLeft()).toTuple())
    checked = 0
    for i, (x, y) in enumerate(device):
        symbol, size, fill, _line, _width = styles[i]
        others = np.delete(device, i, axis=0)
        if symbol != "o" or (len(others) and np.hypot(*(others - (x, y)).T).min() < size + 4):
            continue  # a marker another one overlaps
        covered = [t.sceneBoundingRect() for t in m.labels.values() if t.isVisible()]
        if any(r.adjusted(-2, -2, 2, 2).contains(m.vb.mapViewToScene(QPointF(*xy[i]))) for r in covered):
            continue  # under a label
        got = pixels[int(round(y)), int(round(x))]
        assert np.abs(got - rgb(fill)).max() <= 12, (i, got, fill)
        checked += 1
    assert checked >= 3


def test_a_moved_point_redraws_only_around_it_and_the_screen_shows_what_a_fresh_map_shows(qtbot):
    """A new last token of the same text moves one point (earlier tokens' vectors stay): only around its old and
    new places is the map drawn again, and the screen then shows exactly what a map given only the new points
    shows."""
    from explainer.ui.widgets.embedding_map import EmbeddingMap
    from tests.pixels import exposed, on_screen, painted_area

    rng = np.random.default_rng(7)
    n = 100  # a crowded map: no labels, points only
    xy = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    texts, ids, special = [f"t{i}" for i in range(n)], np.arange(n), np.zeros(n, bool)
    cloud = rng.uniform(-1.2, 1.2, (300, 2))

    def shown_map():
        m = exposed(qtbot, EmbeddingMap(), (500, 420))
        m.set_cloud(cloud)
        return m

    typed = shown_map()
    typed.set_points(xy, texts, ids, special)
    qtbot.wait(50)
    xy = xy.copy()
    xy[-1] = (0.1, 0.1)
    typed.set_points(xy, texts, ids, special)  # (Qt's scene draws the whole view at an item's first update)
    on_screen(typed)
    painted = painted_area(typed.viewport())
    view = typed.viewport().width() * typed.viewport().height()
    shown = []
    for _ in range(3):
        xy = xy.copy()
        xy[-1] += rng.uniform(-0.1, 0.1, 2)  # (a far move draws the box around both places)
        painted.area = 0
        typed.set_points(xy, texts, ids, special)
        shown.append((xy, on_screen(typed), painted.area))
    for step, (points, screen, area) in enumerate(shown):
        assert 0 < area <= 0.05 * view, step  # around the point's two places, not the view
        fresh = shown_map()
        fresh.set_points(points, texts, ids, special)
        assert screen == on_screen(fresh) == fresh.grab().toImage(), step
