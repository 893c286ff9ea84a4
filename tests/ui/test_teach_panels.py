"""The teaching panels (head roles, attention walk-through, logit lens) on the demo engine's results."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from explainer.core import heads as core_heads
from explainer.core import lens as core_lens
from explainer.ui.panels.heads import REFERENCE, HeadRolesPanel
from explainer.ui.panels.lens import RIGHT_ROLE, TOP_K, LensPanel
from explainer.ui.panels.walkthrough import WalkthroughPanel
from tests.pixels import distinct_colours, screenshot_alone

TEXT = "The cat sat on the mat. The cat sat on the mat."


@pytest.fixture
def result(demo):
    return demo.analyze(TEXT)


def _shot(widget, name):
    os.makedirs("/tmp/shots/teach", exist_ok=True)
    widget.grab().save(f"/tmp/shots/teach/test-{name}.png")


# --- walk-through ---------------------------------------------------------------------------------------------------
def test_walkthrough_shows_the_attention_panels_weights(qtbot, result):
    p = WalkthroughPanel()
    qtbot.addWidget(p)
    p.resize(1000, 600)
    p.set_result(result)
    info = result.model
    for layer in range(info.n_layers):
        for head in range(info.n_heads):
            for q in (0, 4, result.n_tokens - 1):
                p.set_head(layer, head)
                p.select_position(q)
                np.testing.assert_allclose(p.displayed_weights(), result.attention.row(layer, head, q), atol=1e-5)
                assert p.table.rowCount() == q + 1 + (1 if q < result.n_tokens - 1 else 0)
    # the spin boxes show 1-based numbers and drive the head
    with qtbot.waitSignal(p.headSelected) as sig:
        p.head_spin.setValue(1)
    assert sig.args == [p.layer, 0]
    p.select_position(-1)  # default: the last token
    assert p.query == result.n_tokens - 1
    assert "−∞" not in p.table.item(p.query, 3).text()
    p.select_position(3)
    assert p.table.item(4, 3).text() == "−∞"  # later tokens are masked
    assert "RoPE" in p.rope.text() and "rotated" in p.rope.text()
    assert "Output" in p.output.text()
    _shot(p, "walkthrough")


def test_walkthrough_query_box_selects_token(qtbot, result):
    p = WalkthroughPanel()
    qtbot.addWidget(p)
    p.set_result(result)
    assert p.query_box.count() == result.n_tokens
    with qtbot.waitSignal(p.tokenSelected) as sig:
        p.query_box.activated.emit(2)
    assert sig.args == [2] and p.query == 2


# --- logit lens -----------------------------------------------------------------------------------------------------
def test_lens_panel_last_layer_is_the_next_token_result(qtbot, result, demo):
    p = LensPanel()
    qtbot.addWidget(p)
    p.set_token_decoder(demo.tokenizer.token_bytes)
    p.resize(1100, 800)
    p.set_result(result)
    L = result.model.n_layers
    for pos in (0, 5, result.n_tokens - 1):
        p.select_position(pos)
        assert p.table.rowCount() == L + 1
        assert p.top_token(L) == int(result.top_ids[pos][0])
        cell = p.table.item(L, 0)
        assert cell.text() == p.token_text(int(result.top_ids[pos][0]))
        assert cell.data(RIGHT_ROLE).endswith("%")
        rank = p.table.item(L, TOP_K).text()
        if pos + 1 < result.n_tokens:
            assert rank == f"#{core_lens.logit_lens(result, pos).next_rank[-1]:,}"
        else:
            assert rank == "—"
    # neighbours of the selected token, from the (tied) embedding table
    assert p.nb_table.rowCount() > 0
    tid = int(result.ids[result.n_tokens - 1])
    expected = core_lens.nearest_neighbours(demo.embedding_table, tid, p.nb_table.rowCount())
    assert p.nb_table.item(0, 0).text() == p.token_text(expected[0][0])
    _shot(p, "lens")


def test_lens_panel_without_weights_says_so(qtbot, result):
    import dataclasses

    p = LensPanel()
    qtbot.addWidget(p)
    p.set_result(dataclasses.replace(result, weights=None))
    assert "weights" in p.info.text()


# --- head roles -----------------------------------------------------------------------------------------------------
def test_head_roles_live_scores_and_click(qtbot, result):
    p = HeadRolesPanel()
    qtbot.addWidget(p)
    p.resize(1000, 650)
    p.set_result(result)
    p.show()
    qtbot.waitExposed(p)
    live = core_heads.scores_from_result(result)
    np.testing.assert_allclose(p.grid.scores, live.induction)
    layer, head, score = live.top("induction", 1)[0]
    assert p.table.item(0, 0).text() == f"L{layer + 1} H{head + 1}  {score:.2f}"
    p.set_role("previous_token")
    np.testing.assert_allclose(p.grid.scores, live.previous_token)
    # clicking a badge opens that head
    left, top, w, h = p.grid._geometry()
    pos = QPointF(left + 1.5 * w, top + 0.5 * h)
    with qtbot.waitSignal(p.headSelected) as sig:
        qtbot.mouseClick(p.grid, Qt.LeftButton, pos=pos.toPoint())
    assert sig.args == [0, 1]
    _shot(p, "heads-live")


def test_head_roles_text_without_repeats_explains(qtbot, demo):
    p = HeadRolesPanel()
    qtbot.addWidget(p)
    p.set_result(demo.analyze("One two three four"))
    assert np.isnan(p.grid.scores).all()
    assert "repeats" in p.note.text()


def test_head_roles_reference_runs_in_background(qtbot, demo, result):
    calls = []

    def runner():
        import threading

        calls.append(threading.current_thread().name)
        return core_heads.reference_scores(demo, length=10, n_seeds=1)

    p = HeadRolesPanel(reference_runner=runner)
    qtbot.addWidget(p)
    p.set_result(result)
    assert not p.run_button.isHidden()
    p.run_button.click()
    qtbot.waitUntil(lambda: p.reference is not None and not p.running, timeout=30000)
    assert calls and calls[0] != "MainThread"
    assert p.source == REFERENCE and p.run_button.isHidden()
    np.testing.assert_allclose(p.grid.scores, p.reference.induction)
    _shot(p, "heads-reference")


# --- each runs alone ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("module", ["heads", "walkthrough", "lens"])
def test_panel_runs_alone(module, tmp_path):
    pixels = screenshot_alone(module, tmp_path / f"{module}.png", "--size", "900x600")
    assert pixels.shape == (600, 900, 3)
    assert distinct_colours(pixels) > 500  # plots in colour: text alone gives a few hundred shades
