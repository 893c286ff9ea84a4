"""Asking the model why in the window: head knock-out (grid, button, menu, Head roles, Restore), attribution on
the token chips, the two-texts view (compare, patching with progress and cancel), their exports and layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from explainer.core.attribution import attribute
from explainer.core.knockout import heads_label
from explainer.core.types import START_LABEL
from explainer.ui.export_ui import export_view
from explainer.ui.why.colours import DOWN, UP
from tests.ui import layout_checks

TEXT = "The cat sat on the mat. The cat sat on the"


@pytest.fixture
def window(make_main_window, wait_result):
    w = make_main_window(text=TEXT, size=(1366, 768), sync=True)
    wait_result(w, TEXT)
    return w


def engine_of(w):
    return w.controller.worker.engine


def click_head(qtbot, grid, layer, head, modifier=Qt.NoModifier, button=Qt.LeftButton):
    x, y = grid._cell(layer, head)
    scene_pt = grid.vb.mapViewToScene(QPointF(x + 0.5, y + 0.5))
    pt = grid.mapFromScene(scene_pt)
    qtbot.mouseClick(grid.viewport(), button, modifier, QPoint(pt.x(), pt.y()))


def test_ctrl_click_knocks_a_head_out_everywhere_and_restore_brings_the_clean_numbers_back(window, qtbot):
    w = window
    clean = w.result
    grid = w.attention.grid
    click_head(qtbot, grid, 1, 2, Qt.ControlModifier)
    assert w.view.knocked_out == {(1, 2)}
    click_head(qtbot, grid, 0, 1, Qt.ShiftModifier)
    assert w.view.knocked_out == {(1, 2), (0, 1)}
    r = w.result
    assert r.ablated == ((0, 1), (1, 2)) and r.text == TEXT
    expected = engine_of(w).analyze(TEXT, ablated=[(0, 1), (1, 2)])
    np.testing.assert_allclose(r.top_probs, expected.top_probs, atol=1e-6)
    assert not np.allclose(r.top_probs, clean.top_probs, atol=1e-4)  # the knocked-out model's own numbers
    # the clean result of the same text is kept beside it, and the next-token panel shows both
    base = w.controller.baseline
    assert base is not None and base.ablated == () and base.text == TEXT
    np.testing.assert_allclose(base.top_probs, clean.top_probs, atol=1e-6)
    ba = w.knockout.before_after
    assert ba.isVisibleTo(w) and not w.next_token.bars.isVisibleTo(w)
    p_clean = np.exp(base.logits_at(base.n_tokens - 1) - base.logits_at(base.n_tokens - 1).max())
    p_clean /= p_clean.sum()
    for i, c in zip(ba.ids, ba.clean):
        assert c == pytest.approx(p_clean[i], abs=1e-5)
    # the bar names the heads; the grid crosses them out
    assert w.knockout.bar.isVisibleTo(w) and heads_label([(0, 1), (1, 2)]) in w.knockout.bar.label.text()
    assert "2 heads knocked out" in w.knockout.bar.label.text()
    assert grid.marked == {(0, 1), (1, 2)} and grid.n_marks == 2
    # a plain click still only selects
    click_head(qtbot, grid, 1, 0)
    assert (w.view.layer, w.view.head) == (1, 0) and len(w.view.knocked_out) == 2
    w.knockout.bar.restore.click()
    assert w.view.knocked_out == frozenset() and w.result.ablated == ()
    np.testing.assert_allclose(w.result.top_probs, clean.top_probs, atol=1e-6)
    assert not w.knockout.bar.isVisibleTo(w) and not ba.isVisibleTo(w) and w.next_token.bars.isVisibleTo(w)
    assert grid.n_marks == 0 and w.controller.baseline is None


def test_a_shorter_text_after_a_pinned_late_position_with_heads_knocked_out(window, qtbot, wait_result):
    """The next-token panel pinned near the end of a long knocked-out text, then a much shorter text: the window
    shows the short text's before / after at a position it has (no stale position reaches the numbers)."""
    w = window
    w.view.set_knocked_out({(1, 2)})
    qtbot.waitUntil(lambda: w.result.ablated == ((1, 2),) and w.knockout.before_after.isVisibleTo(w), timeout=20000)
    last = w.result.n_tokens - 1
    w.next_token.select_position(last - 1)
    assert w.next_token.position == last - 1
    w.set_text("Hi")
    wait_result(w, "Hi")
    qtbot.waitUntil(lambda: w.knockout.before_after.isVisibleTo(w), timeout=20000)
    r, base = w.result, w.controller.baseline
    assert r.text == "Hi" and r.ablated == ((1, 2),) and base.text == "Hi"
    pos = w.next_token.position
    assert 0 <= pos < r.n_tokens
    p_clean = np.exp(base.logits_at(pos) - base.logits_at(pos).max())
    p_clean /= p_clean.sum()
    ba = w.knockout.before_after
    for i, c in zip(ba.ids, ba.clean):
        assert c == pytest.approx(p_clean[i], abs=1e-5)
    # the caret moves to the first token: the comparison moves with the panel
    w.next_token.set_caret_position(0)
    assert w.next_token.position == 0
    p_clean = np.exp(base.logits_at(0) - base.logits_at(0).max())
    p_clean /= p_clean.sum()
    p_knocked = np.exp(r.logits_at(0) - r.logits_at(0).max())
    p_knocked /= p_knocked.sum()
    for i, c, k in zip(ba.ids, ba.clean, ba.knocked):
        assert c == pytest.approx(p_clean[i], abs=1e-5) and k == pytest.approx(p_knocked[i], abs=1e-5)


def test_knock_out_button_menu_and_the_top_induction_heads(window, qtbot):
    w = window
    w.view.set_head(1, 1)
    w.knockout.button.click()
    assert w.view.knocked_out == {(1, 1)} and w.knockout.button.isChecked()
    w.knockout.button.click()
    assert w.view.knocked_out == frozenset()
    w.knockout._on_grid_menu(0, 2, w.mapToGlobal(QPoint(10, 10)))
    actions = {a.text(): a for a in w.knockout.menu.actions()}
    actions["Knock out layer 1, head 3"].trigger()
    assert w.view.knocked_out == {(0, 2)}
    w.knockout.menu.close()
    w.knockout._on_grid_menu(0, 2, w.mapToGlobal(QPoint(10, 10)))
    assert "Bring back layer 1, head 3" in [a.text() for a in w.knockout.menu.actions()]
    w.knockout.menu.close()
    w.knockout.induction_button.click()
    from explainer.core.heads import scores_from_result

    top = scores_from_result(w.controller.baseline or w.result).top("induction", 3)
    assert w.view.knocked_out == {(la, h) for la, h, _ in top} and len(top) == 3


def test_knocked_out_heads_go_with_the_state_and_a_scene_for_a_larger_model_keeps_what_fits(window):
    w = window
    w.view.set_knocked_out([(1, 0)])
    state = w.state()
    assert state["panels"]["attention"]["knocked_out"] == [[1, 0]]
    w.knockout.restore()
    w.restore(state)
    assert w.view.knocked_out == {(1, 0)} and w.result.ablated == ((1, 0),)
    w.view.set_knocked_out([(1, 1), (25, 3)])  # layer 26 does not exist in the demo model
    assert w.view.knocked_out == {(1, 1)} and w.result.ablated == ((1, 1),)
    assert w.banner.kind != "error"


def _rgb(hex_colour):
    h = hex_colour.lstrip("#")
    return np.array([int(h[i : i + 2], 16) for i in (0, 2, 4)], float)


def test_why_colours_the_chips_by_the_scores_signs_with_a_legend(window):
    w = window
    w.tokens.set_why(True)
    a = w.attribution.attribution
    r = w.result
    expected = attribute(engine_of(w), r.ids)
    assert a is not None and a.target == int(r.top_ids[-1, 0]) and a.position == r.n_tokens - 1
    np.testing.assert_allclose(a.scores, expected.scores, atol=1e-6)
    ov = w.tokens.overlay
    assert ov is not None and ov.column == "input_x_gradient"
    scale = np.abs(a.scores).max()
    up, down = _rgb(UP), _rgb(DOWN)
    for i, s in enumerate(a.scores):
        fill = _rgb(w.tokens.view.chips[i].fill)
        if abs(s) > 0.05 * scale:  # clearly signed: towards vermillion when it pushes up, blue when down
            towards = up if s > 0 else down
            away = down if s > 0 else up
            assert np.linalg.norm(fill - towards) < np.linalg.norm(fill - away), (i, s, fill)
        assert w.tokens.view.chips[i].sub == f"{s:+.3f}".replace("-", "−")
    assert w.attribution.legend.scale == pytest.approx(scale)
    assert w.attribution.row.isVisibleTo(w) and "Why “" in w.attribution.caption.text()
    # another bar of the next-token panel: its own attribution
    second = int(r.top_ids[-1, 1])
    w.attribution.explain(second)
    assert w.attribution.attribution.target == second
    np.testing.assert_allclose(
        w.attribution.attribution.scores, attribute(engine_of(w), r.ids, target=second).scores, atol=1e-6
    )
    # another position selected: its top token there; tokens after it score nothing
    w.view.set_selected(3)
    b = w.attribution.attribution
    assert b.position == 3 and b.target == int(r.top_ids[3, 0]) and not b.scores[4:].any()
    assert w.tokens.view.chips[5].sub == "after"
    # with heads knocked out the attribution is the knocked-out model's
    w.view.set_knocked_out([(0, 0)])
    assert w.attribution.attribution.ablated == ((0, 0),)
    w.tokens.set_why(False)
    assert w.tokens.overlay is None and not w.attribution.row.isVisibleTo(w)
    assert w.tokens.view.chips[1].sub == str(r.tokens[1].id)


def test_with_the_tokens_panel_alone_the_explanation_is_written_larger_on_its_own_line(window, qtbot):
    """Alone (presenter mode's hero, a focused panel) the chips grow: the explanation's sentence and its legend
    grow with them, the sentence whole on a line above the legend; among the other panels one small line again."""
    w, link = window, window.attribution
    w.tokens.set_why(True)
    qtbot.waitUntil(lambda: "Why “" in link.caption.text())
    small = (link.caption.font().pointSizeF(), link.legend.font().pointSizeF())
    assert link.caption.geometry().top() == link.legend.geometry().top() or (
        abs(link.caption.geometry().center().y() - link.legend.geometry().center().y()) <= 2
    )  # side by side
    w.live.show_only("tokens")
    qtbot.waitUntil(lambda: link.caption.font().pointSizeF() > small[0])
    qtbot.wait(50)
    assert link.caption.font().pointSizeF() == pytest.approx(2 * small[0])
    assert link.legend.font().pointSizeF() == pytest.approx(2 * small[1])
    cap, leg = link.caption.geometry(), link.legend.geometry()
    assert leg.top() >= cap.bottom()  # its own line, the legend under it
    assert "…" not in link.caption._elidedText() and link.caption._elidedText().endswith(").")  # not shortened
    assert leg.width() >= link.legend.sizeHint().width() - 1  # the longer bar of the larger letters
    scroll = w.tokens.scroll
    chips_bottom = scroll.mapTo(w.tokens, QPoint(0, scroll.height())).y()
    assert link.caption.mapTo(w.tokens, QPoint(0, 0)).y() >= chips_bottom - 1  # under the chips
    w.live.show_only(None)
    qtbot.wait(50)
    assert (link.caption.font().pointSizeF(), link.legend.font().pointSizeF()) == small
    cap, leg = link.caption.geometry(), link.legend.geometry()
    assert abs(cap.center().y() - leg.center().y()) <= 2  # one line again


def test_the_bars_right_click_menu_explains_that_token(window, qtbot):
    w = window
    bars = w.next_token.bars
    y = int(bars.header_height + 1.5 * bars.row_height)
    ev_pos = QPoint(40, y)
    from PySide6.QtGui import QContextMenuEvent

    QApplication = pytest.importorskip("PySide6.QtWidgets").QApplication
    QApplication.sendEvent(bars, QContextMenuEvent(QContextMenuEvent.Mouse, ev_pos, bars.mapToGlobal(ev_pos)))
    menu = w.attribution.menu
    why = [a for a in menu.actions() if a.text().startswith("Why")][0]
    second = int(w.result.top_ids[-1, 1])
    why.trigger()
    menu.close()
    assert w.tokens.why.isChecked() and w.attribution.attribution.target == second


def show_two(w, clean, corrupt):
    p = w.teach.panels["two_texts"]
    p.clean_edit.setText(clean)
    p.corrupt_edit.setText(corrupt)
    w.teach.show_view("two_texts")
    return p


def test_patching_fills_every_layer_row_by_row_with_progress(window):
    w = window
    p = w.teach.panels["two_texts"]
    rows, fractions, shown = [], [], []
    orig = p._on_patch_progress

    def spy(message, fraction, item):
        if isinstance(item, tuple) and item[0] == "row":
            rows.append(item[1])
        fractions.append(fraction)
        shown.append(not p.progress.isHidden() and not p.cancel_button.isHidden() and p.cancel_button.isEnabled())
        orig(message, fraction, item)

    p._on_patch_progress = spy
    show_two(w, "The cat sat on the mat", "The dog sat on the mat")  # shown: it runs
    L = w.result.model.n_layers
    assert sorted(rows) == list(range(L)) and p.heatmap.rows_filled == L
    assert max(fractions) == pytest.approx(1.0) and p.progress.value() == 1000
    assert shown and all(shown)  # while it runs: the bar and Cancel
    assert p.progress.isHidden() and p.cancel_button.isHidden()  # the run is over: the grid has their room
    eng = engine_of(w)
    from explainer.core.patching import patch

    ids = [
        [t.id for t in eng.tokens_for(s, start_token=True, max_tokens=512, parse_specials=False)[1]]
        for s in ("The cat sat on the mat", "The dog sat on the mat")
    ]
    np.testing.assert_allclose(p.heatmap.grid, patch(eng, *ids).prob, atol=1e-6)
    assert p.heatmap.labels[2] == "·cat/·dog" and "clean" in p.status.text()
    assert p.heatmap.labels[0] == START_LABEL  # the start token as every panel names it
    assert p.compare.pair is not None and p.compare.pair[0].text == "The cat sat on the mat"
    assert p.compare.diff.shape == (len(ids[0]), len(ids[0]))
    # hover reads the number
    p._on_heatmap_hovered(0, 2)
    assert f"{100 * p.heatmap.grid[0, 2]:.2f} %" in p.readout.text()


def test_patching_different_lengths_gives_the_sentence(window):
    p = show_two(window, "The cat sat", "The big black cat sat")
    assert "The clean text has 4 tokens and the corrupted text has 6" in p.status.text()
    assert p.patching is None and "same token length" in p.compare.attn_title.text()


def test_patching_cancel_stops_and_keeps_the_rows_done(window):
    w = window
    p = w.teach.panels["two_texts"]
    orig = p._on_patch_progress

    def cancel_after_first_row(message, fraction, item):
        orig(message, fraction, item)
        if isinstance(item, tuple) and item[0] == "row":
            p.cancel_button.click()

    p._on_patch_progress = cancel_after_first_row
    show_two(w, "one two three four five", "one two six four five")
    assert p.status.text().startswith("Cancelled") and p.patching is None
    assert 0 < p.heatmap.rows_filled < w.result.model.n_layers and not p.cancel_button.isEnabled()
    assert p.progress.isHidden() and p.cancel_button.isHidden()


def test_patching_in_a_threaded_window_leaves_the_window_free(make_main_window, wait_result, qtbot):
    w = make_main_window(text="a b c", size=(1366, 768))
    wait_result(w, "a b c")
    p = show_two(w, "The cat sat on the mat", "The dog sat on the mat")
    assert p.busy  # the window went on at once; the worker computes
    qtbot.waitUntil(lambda: not p.busy, timeout=30000)
    qtbot.waitUntil(lambda: p.patching is not None, timeout=5000)
    assert p.heatmap.rows_filled == w.result.model.n_layers
    p.run()
    p.cancel()
    qtbot.waitUntil(lambda: not p.busy, timeout=30000)
    qtbot.waitUntil(lambda: p.status.text().startswith("Cancelled"), timeout=5000)


def test_while_the_attribution_is_computed_the_chips_line_says_so(make_main_window, wait_result, qtbot):
    """The first "Why?" can take seconds (torch's import, the readable model): meanwhile the line under the chips
    says that it is being computed (not the chain rule, as if nothing had been asked)."""
    w = make_main_window(text="a b c", size=(1366, 768))
    wait_result(w, "a b c")
    qtbot.waitUntil(lambda: not w.controller.busy, timeout=30000)
    w.attribution.explain()
    assert w.attribution._job is not None and not w.attribution._job.finished  # (asked of the model's thread)
    assert w.attribution.row.isVisibleTo(w) and not w.tokens.chain.isVisibleTo(w)
    assert w.attribution.caption.text() == "Computing the attribution…"
    qtbot.waitUntil(lambda: w.attribution.attribution is not None, timeout=30000)
    assert w.attribution.row.isVisibleTo(w) and "Why “" in w.attribution.caption.text()


def test_asking_why_never_loads_torch_in_the_window_thread(make_main_window, wait_result, qtbot, monkeypatch):
    """Attribution and patching run on torch, whose first import takes over a second: it happens in the model's
    thread, never in the window's, which goes on drawing meanwhile."""
    import builtins
    import threading

    heavy = ("torch", "explainer.core.attribution", "explainer.core.patching", "explainer.core.llama")
    in_window: list[str] = []
    real_import = builtins.__import__

    def watched(name, *args, **kwargs):
        if threading.current_thread() is threading.main_thread() and name.startswith(heavy):
            in_window.append(name)
        return real_import(name, *args, **kwargs)

    w = make_main_window(text="a b c", size=(1366, 768))
    wait_result(w, "a b c")
    monkeypatch.setattr(builtins, "__import__", watched)
    w.attribution.explain()
    qtbot.waitUntil(lambda: w.attribution.attribution is not None, timeout=30000)
    p = show_two(w, "The cat sat on the mat", "The dog sat on the mat")
    qtbot.waitUntil(lambda: not p.busy and p.patching is not None, timeout=30000)
    assert in_window == []


def test_comparing_two_texts_multiplies_with_the_vocabulary_table_in_the_model_thread(
    make_main_window, wait_result, qtbot, monkeypatch
):
    """The next-token distributions of both texts (a product with the whole vocabulary table each) are computed
    where the texts are analysed; the window only draws them."""
    import threading

    from explainer.core.types import AnalysisResult

    threads: list[bool] = []
    real = AnalysisResult.logits_at

    def logits_at(self, position):
        threads.append(threading.current_thread() is threading.main_thread())
        return real(self, position)

    w = make_main_window(text="a b c", size=(1366, 768))
    wait_result(w, "a b c")
    monkeypatch.setattr(AnalysisResult, "logits_at", logits_at)
    p = show_two(w, "The cat sat on the mat", "The dog sat on the mat")
    qtbot.waitUntil(lambda: not p.busy and p.compare.pair is not None, timeout=30000)
    assert threads and not any(threads)
    clean = p.compare.pair[0]
    logits = real(clean, clean.n_tokens - 1).astype(np.float64)
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    bars = p.compare.bars
    assert bars.ids and np.allclose(bars.clean, expected[bars.ids], rtol=1e-5, atol=1e-7)


def test_leaving_the_two_texts_view_stops_its_run_and_coming_back_runs_it_again(make_main_window, wait_result, qtbot):
    """Patching holds the model's thread for many seconds: a lecturer moving on to the next view gets its analysis
    at once, not after the patching; back on the view, the patching runs again."""
    w = make_main_window(text="a b c", size=(1366, 768))
    wait_result(w, "a b c")
    p = show_two(w, "The cat sat on the mat", "The dog sat on the mat")
    qtbot.waitUntil(lambda: p.busy, timeout=10000)
    w.teach.show_view("live")
    qtbot.waitUntil(lambda: not p.busy, timeout=10000)  # stopped at its next check, long before the end
    assert p.patching is None
    w.set_text("The eagle catches the fish")
    wait_result(w, "The eagle catches the fish")
    w.teach.show_view("two_texts")
    assert p.busy  # again, for the same two texts
    qtbot.waitUntil(lambda: p.patching is not None, timeout=60000)
    assert p.heatmap.rows_filled == w.result.model.n_layers


def test_why_explains_only_the_newest_text(make_main_window, wait_result, qtbot):
    """Asked while a newer text is being analysed (a scene sets its text, then turns "Why?" on), the attribution
    waits for that text: no model time is spent on the text being replaced."""
    w = make_main_window(text="The cat sat on the mat", size=(1366, 768))
    wait_result(w, "The cat sat on the mat")
    asked_for: list[str] = []
    start = w.jobs.start

    def recording(fn, *args, **kwargs):
        asked_for.append(w.result.text)
        return start(fn, *args, **kwargs)

    w.jobs.start = recording
    w.set_text("In Germany, the capital is")
    w.attribution.explain()
    wait_result(w, "In Germany, the capital is")
    qtbot.waitUntil(lambda: w.attribution.attribution is not None, timeout=30000)
    assert asked_for == ["In Germany, the capital is"]
    assert w.attribution.attribution.ids.tolist() == w.result.ids.tolist()


def test_why_with_a_pinned_late_token_then_a_shorter_text(window, wait_result, qtbot):
    """ "Why?" on, a token near the end pinned, then a much shorter text: the pin is dropped with the old text, the
    chips explain the new text's last position (no stale position reaches the numbers)."""
    w = window
    w.tokens.set_why(True)
    w.view.set_selected(w.result.n_tokens - 2)
    qtbot.waitUntil(
        lambda: w.attribution.attribution is not None and w.attribution.attribution.position == w.result.n_tokens - 2,
        timeout=30000,
    )
    w.set_text("Hi")
    wait_result(w, "Hi")
    qtbot.waitUntil(
        lambda: (
            w.attribution.attribution is not None and w.attribution.attribution.ids.tolist() == w.result.ids.tolist()
        ),
        timeout=30000,
    )
    qtbot.waitUntil(lambda: w.attribution.attribution.position == w.next_token.position, timeout=30000)
    r, a = w.result, w.attribution.attribution
    assert a.position == r.n_tokens - 1 == w.next_token.position and a.target == int(r.top_ids[-1, 0])
    np.testing.assert_allclose(a.scores, attribute(engine_of(w), r.ids).scores, atol=1e-6)
    # the caret on the first token: the next-token panel shows the prediction after it, and the chips explain that
    w.view.set_caret(0)
    assert w.next_token.position == 0
    qtbot.waitUntil(lambda: w.attribution.attribution.position == 0, timeout=30000)
    a = w.attribution.attribution
    assert a.target == int(r.top_ids[0, 0])
    np.testing.assert_allclose(a.scores, attribute(engine_of(w), r.ids, position=0).scores, atol=1e-6)


def test_exports_of_the_new_views(window, tmp_path):
    w = window
    w.view.set_knocked_out([(0, 1)])
    w.tokens.set_why(True)
    for fmt, name in (("png", "nt.png"), ("svg", "nt.svg"), ("data", "nt.json")):
        export_view(w.next_token, fmt, tmp_path / name, part="plot", caption="c")
        assert (tmp_path / name).stat().st_size > 200
    data = json.loads((tmp_path / "nt.json").read_text())
    assert data["knocked_out"]["heads"] == [[1, 2]] and data["knocked_out"]["rows"]
    export_view(w.tokens, "data", tmp_path / "tok.json")
    tok = json.loads((tmp_path / "tok.json").read_text())
    assert tok["target"]["id"] == w.attribution.attribution.target
    assert [r["input_x_gradient"] for r in tok["rows"]] == pytest.approx(
        list(w.attribution.attribution.scores), abs=1e-6
    )
    assert tok["ablated"] == [[1, 2]]
    export_view(w.tokens, "data", tmp_path / "tok.csv")
    assert "input_x_gradient" in (tmp_path / "tok.csv").read_text().splitlines()[0]
    p = show_two(w, "The cat sat on the mat", "The dog sat on the mat")
    for tab in (0, 1):
        p.tabs.setCurrentIndex(tab)
        for fmt, name in (
            ("png", f"two{tab}.png"),
            ("svg", f"two{tab}.svg"),
            ("data", f"two{tab}.json"),
            ("data", f"two{tab}.csv"),
        ):
            export_view(p, fmt, tmp_path / name, part="plot", caption=p.caption_extra())
            assert (tmp_path / name).stat().st_size > 100, name
    patched = json.loads((tmp_path / "two1.json").read_text())
    assert len(patched["matrix"]) == w.result.model.n_layers and patched["ablated"] == [[1, 2]]
    assert "clean_surprisal" in json.loads((tmp_path / "two0.json").read_text())


@pytest.mark.parametrize("size", [(1366, 768), (1280, 720)])
def test_the_new_views_are_readable(make_main_window, wait_result, qtbot, size):
    w = make_main_window(text=TEXT, size=size, sync=True)
    wait_result(w, TEXT)
    w.view.set_knocked_out([(0, 1), (1, 2)])
    w.tokens.set_why(True)
    qtbot.wait(50)
    for check in (layout_checks.overlaps, layout_checks.clipped):
        assert not check(w), (size, check.__name__, check(w)[:6])
    show_two(w, "The cat sat on the mat", "The dog sat on the mat")
    qtbot.wait(50)
    for check in (layout_checks.overlaps, layout_checks.clipped):
        assert not check(w), (size, "two texts", check.__name__, check(w)[:6])
    if size == (1280, 720):
        w.presenter.fullscreen = False
        w.presenter.enter()
        qtbot.wait(80)
        for check in (layout_checks.overlaps, layout_checks.clipped):
            assert not check(w), ("presenter", check.__name__, check(w)[:6])
        w.presenter.leave()


def test_two_texts_without_tokens_say_so(window):
    w = window
    w.controller.set_settings(start_token=False)
    p = show_two(w, "", "The dog")
    assert "The clean text has 0 tokens and the corrupted text has 2" in p.status.text()
    assert p.compare.pair is None and "both fields" in p.compare.next_title.text()


@pytest.mark.parametrize("size", [(1366, 768), (1280, 720)])
def test_the_knock_out_bar_takes_no_room_from_the_editor_s_lines(make_main_window, wait_result, qtbot, size):
    """A scene that knocks heads out shows the bar under the editor: the editor keeps its two whole lines (the bar
    took its room from the second line, and a long text's end showed alone above an empty row); the bar gone, the
    editor is as it was."""
    text = "Mr and Mrs Dursley, of number four, Privet Drive, were proud to say. " * 3
    w = make_main_window(text=text, size=size, sync=True)
    wait_result(w, text)
    qtbot.wait(50)
    rows = lambda: w.editor.viewport().height() / w.editor.fontMetrics().lineSpacing()  # noqa: E731
    before = w.editor.height()
    assert rows() >= 2
    w.view.set_knocked_out([(0, 1)])
    qtbot.waitUntil(lambda: w.knockout.bar.isVisible())
    qtbot.wait(50)
    assert rows() >= 2 and w.knockout.bar.height() > 0
    w.view.set_knocked_out([])
    qtbot.waitUntil(lambda: not w.knockout.bar.isVisible())
    qtbot.wait(50)
    assert w.editor.height() == before


def test_the_change_column_fits_inside_the_row_outline(qtbot):
    """The largest change is bold with its arrow, and the row around it is outlined: the text ends before the
    outline (it ran into it on a 1280-pixel projector)."""
    from explainer.ui.why.before_after import BeforeAfterBars
    from tests.pixels import image_array

    for width in (420, 640, 1280):
        w = BeforeAfterBars()
        qtbot.addWidget(w)
        w.resize(width, 160)
        w.set_rows([1, 2], ["·number", "·the"], [0.908, 0.013], [0.001, 0.097])  # −90.7 pts, outlined
        img = image_array(w)
        top = int(w.header_height + 5)
        strip = img[top : int(w.header_height + w.row_height - 5), width - 10 : width - 4]
        assert (strip == strip[0, 0]).all(), width  # only the background between the text and the outline
