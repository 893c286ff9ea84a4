"""Next-token panel: bars equal the core's top candidates, sampling controls reshape the right-hand bars, clicks."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication

from explainer.core import sampling
from explainer.ui.panels.next_token import NextTokenPanel
from tests.pixels import assert_dark_and_legible, distinct_colours, image_array, screenshot_alone


def make_panel(qtbot, result, decoder=None):
    panel = NextTokenPanel()
    qtbot.addWidget(panel)
    panel.resize(700, 700)
    panel.show()
    if decoder is not None:
        panel.set_token_decoder(decoder)
    panel.set_result(result)
    qtbot.waitExposed(panel)
    return panel


def row_point(panel, row: int) -> QPoint:
    b = panel.bars
    return QPoint(b.width() // 2, int(b.header_height + (row + 0.5) * b.row_height))


@pytest.fixture
def result(demo):
    return demo.analyze("The cat sat on the")


def test_bars_are_the_core_top_candidates(qtbot, demo, result):
    panel = make_panel(qtbot, result, demo.tokenizer.token_bytes)
    n = len(panel.bars.labels)
    assert 3 <= n <= 15
    last = result.n_tokens - 1
    assert panel._row_ids == [int(i) for i in result.top_ids[last, :n]]
    assert np.allclose(panel.bars.raw, result.top_probs[last, :n])
    # default settings: the sampling distribution is the model's own
    assert np.allclose(panel.bars.sampled, panel.bars.raw, atol=1e-5)
    labels = [demo.tokenizer.token_bytes(i).decode("utf-8", "replace") for i in panel._row_ids]
    assert [lb.replace("·", " ") for lb in panel.bars.labels] == labels
    assert f"{float(result.entropy_bits[last]):.2f} bits" in panel.summary.text()
    assert "49,152" in panel._help.text()


def test_labels_without_an_explicit_decoder(qtbot, demo, result):
    panel = make_panel(qtbot, result)
    assert not any(lb.startswith("#") for lb in panel.bars.labels)


def test_temperature_top_k_top_p_reshape_sampling(qtbot, result):
    panel = make_panel(qtbot, result)
    last = result.n_tokens - 1
    panel.temperature.setValue(0.5)
    expected = sampling.sampling_distribution(result.logits_at(last), 0.5)
    assert np.allclose(panel.bars.sampled, expected[panel._row_ids])
    assert panel.bars.sampled[0] > panel.bars.raw[0]  # colder: the favourite gains
    panel.top_k.setValue(1)
    assert panel.bars.sampled[0] == pytest.approx(1.0)
    assert all(v == 0 for v in panel.bars.sampled[1:])
    assert "1 token left" in panel.summary.text()
    panel.reset_sampling()
    panel.top_p.setValue(0.5)
    expected = sampling.sampling_distribution(result.logits_at(last), 1.0, 0, 0.5)
    assert np.allclose(panel.bars.sampled, expected[panel._row_ids])
    kept = int(np.count_nonzero(expected))
    assert f"{kept:,} token" in panel.summary.text()
    raw = sampling.softmax(result.logits_at(last))[np.flatnonzero(expected)]
    assert raw.sum() >= 0.5 - 1e-9 and raw.sum() - raw.min() < 0.5  # the smallest nucleus reaching p
    panel.reset_sampling()
    assert panel.sampling_settings() == (1.0, 0, 1.0)


def test_click_emits_candidate(qtbot, result):
    panel = make_panel(qtbot, result)
    with qtbot.waitSignal(panel.candidateChosen, timeout=1000) as sig:
        qtbot.mouseClick(panel.bars, Qt.LeftButton, pos=row_point(panel, 1))
    assert sig.args == [panel._row_ids[1]]


def test_the_row_under_the_pointer_is_lit_and_lets_go_when_it_leaves(qtbot, result):
    from PySide6.QtCore import QEvent, QPointF
    from PySide6.QtGui import QMouseEvent

    panel = make_panel(qtbot, result)
    bars = panel.bars
    at = QPointF(row_point(panel, 2))
    move = QMouseEvent(QEvent.MouseMove, at, bars.mapToGlobal(at), Qt.NoButton, Qt.NoButton, Qt.NoModifier)
    QApplication.sendEvent(bars, move)
    assert bars.hovered == 2
    assert bars.cursor().shape() == Qt.PointingHandCursor
    QApplication.sendEvent(bars, QEvent(QEvent.Leave))
    assert bars.hovered == -1


def test_selected_position_shows_what_the_model_expected(qtbot, demo, result):
    panel = make_panel(qtbot, result, demo.tokenizer.token_bytes)
    pos = 2  # after "The cat"; the text continues with " sat"
    panel.select_position(pos)
    assert panel.position == pos
    assert panel._row_ids == [int(i) for i in result.top_ids[pos, : len(panel._row_ids)]]
    actual = int(result.tokens[pos + 1].id)
    rank = sampling.rank_of(result.distribution(pos), actual)
    text = panel.footer.text()
    assert "The model expected" in text and "·sat" in text and f"rank {rank:,}" in text
    assert f"{100 * float(result.token_prob[pos + 1]):.3g} %" in text
    if actual in panel._row_ids:
        assert panel.bars.marked == panel._row_ids.index(actual)
    panel.select_position(-1)
    assert panel.position == result.n_tokens - 1 and "The model expected" not in panel.footer.text()


def test_position_beyond_a_shorter_result_falls_back_to_last(qtbot, demo):
    panel = make_panel(qtbot, demo.analyze("one two three four five"))
    panel.select_position(5)
    r = demo.analyze("one")
    panel.set_result(r)
    assert panel.position == r.n_tokens - 1


def test_small_panel_still_draws_three_rows(qtbot, result):
    panel = make_panel(qtbot, result)
    panel.resize(420, 380)
    qtbot.wait(20)
    bars = panel.bars
    assert bars.visible_rows() >= 3 and bars.height() >= bars.minimumSizeHint().height()
    pixels = image_array(bars)
    label_w = int(bars._geometry()[0])
    for row in range(3):  # each row's label is drawn (text: many shades), inside the widget
        y0 = int(bars.header_height + row * bars.row_height)
        assert distinct_colours(pixels[y0 + 2 : int(y0 + bars.row_height) - 2, :label_w]) > 4, row


def test_panel_runs_alone(tmp_path):
    pixels = screenshot_alone("next_token", tmp_path / "next.png", "--size", "640x600", "--dark")
    assert pixels.shape == (600, 640, 3)
    assert_dark_and_legible(pixels, "the next-token panel run alone with --dark")


def test_a_candidate_that_draws_nothing_shows_its_bytes(qtbot, demo, result):
    """After an emoji the model may predict U+FE0F (emoji presentation) alone: no glyph, so its bytes."""
    first = int(result.top_ids[result.n_tokens - 1, 0])

    def decode(token_id):
        return "\ufe0f".encode() if token_id == first else demo.tokenizer.token_bytes(token_id)

    panel = make_panel(qtbot, result, decode)
    assert panel.bars.labels[0] == "<EF B8 8F>"
    assert all(label.strip() for label in panel.bars.labels)


def test_the_bars_work_from_the_keyboard(qtbot, result):
    panel = make_panel(qtbot, result)
    bars = panel.bars
    assert bars.focusPolicy() & Qt.TabFocus  # reachable with Tab
    bars.setFocus()
    qtbot.waitUntil(bars.hasFocus)
    assert bars.current == 0  # the first candidate (or the one the text continues with)
    qtbot.keyClick(bars, Qt.Key_Down)
    qtbot.keyClick(bars, Qt.Key_Down)
    qtbot.keyClick(bars, Qt.Key_Up)
    assert bars.current == 1
    with qtbot.waitSignal(panel.candidateChosen, timeout=1000) as sig:
        qtbot.keyClick(bars, Qt.Key_Return)
    assert sig.args == [panel._row_ids[1]]  # the same signal as a click on that row
    qtbot.keyClick(bars, Qt.Key_End)
    assert bars.current == bars.visible_rows() - 1
    with qtbot.waitSignal(panel.candidateChosen, timeout=1000) as sig:
        qtbot.keyClick(bars, Qt.Key_Space)
    assert sig.args == [panel._row_ids[bars.current]]
    qtbot.keyClick(bars, Qt.Key_Home)
    qtbot.keyClick(bars, Qt.Key_Up)
    assert bars.current == 0 and "%" in bars.accessibleDescription()


@pytest.mark.parametrize("name", ["temperature", "top_k", "top_p"])
def test_sliders_follow_arrow_keys_and_page_keys(qtbot, result, name):
    panel = make_panel(qtbot, result)
    slider = getattr(panel, name)
    slider.setValue(slider.minimum())
    slider.setFocus()  # Tab lands on the slider itself, which takes the keys
    target = panel.focusWidget()
    assert target is not None and (target is slider or slider.isAncestorOf(target))
    v0, step, page = slider.value(), slider.singleStep(), slider.pageStep()
    qtbot.keyClick(target, Qt.Key_Right)
    assert slider.value() == pytest.approx(v0 + step)
    qtbot.keyClick(target, Qt.Key_PageUp)
    assert slider.value() == pytest.approx(v0 + step + page)
    qtbot.keyClick(target, Qt.Key_Left)
    assert slider.value() == pytest.approx(v0 + page)
    qtbot.keyClick(target, Qt.Key_End)
    assert slider.value() == pytest.approx(slider.maximum())
    qtbot.keyClick(target, Qt.Key_PageDown)
    assert slider.value() == pytest.approx(slider.maximum() - page)
    qtbot.keyClick(target, Qt.Key_Home)
    assert slider.value() == pytest.approx(slider.minimum())


def test_sampling_draws_with_the_seed_and_restarts_with_a_scene(qtbot, result):
    panel = make_panel(qtbot, result)
    panel.apply_scene_state({"temperature": 1.5, "seed": 11})
    assert panel.scene_state()["seed"] == 11
    p = panel.sampled_distribution()
    draws = [panel.sample_token() for _ in range(4)]
    assert draws == [sampling.draw(p, 11, i) for i in range(4)] and panel.draws == 4
    panel.apply_scene_state({"seed": 11})  # the scene again: the same choices again
    assert [panel.sample_token() for _ in range(4)] == draws
    panel.apply_scene_state({"seed": None})
    assert panel.seed is None and "seed" not in panel.scene_state()
    assert panel.sample_token() is not None and panel.seed is not None  # a fresh seed, kept for saving
