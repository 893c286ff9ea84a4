"""The main window end to end (offscreen): typing → worker → every panel; linking; errors; settings; shutdown."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import shiboken6
from PySide6.QtCore import QEvent, QPoint, Qt
from PySide6.QtGui import QImage, QKeyEvent
from PySide6.QtWidgets import QApplication

from explainer.runtime.controller import Controller
from explainer.ui import theme as th
from explainer.ui.main_window import MainWindow, format_params


class SlowProxy:
    """Wraps an engine so each analysis takes at least ``delay_s`` (to make typing outrun the model)."""

    def __init__(self, engine, delay_s):
        self._engine, self.delay_s, self.calls = engine, delay_s, []

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def analyze(self, text, **kw):
        self.calls.append(text)
        time.sleep(self.delay_s)
        return self._engine.analyze(text, **kw)


def wait_for_text(qtbot, w: MainWindow, text: str, timeout=20000):
    qtbot.waitUntil(lambda: w.result is not None and w.result.text == text and not w.controller.busy, timeout=timeout)


def type_text(w: MainWindow, text: str) -> None:
    """One key event per character, carrying its text (qtbot.keyClicks aborts on non-ASCII)."""
    for ch in text:
        for kind in (QEvent.KeyPress, QEvent.KeyRelease):
            QApplication.sendEvent(w.editor, QKeyEvent(kind, 0, Qt.NoModifier, ch))


def test_typing_updates_every_panel_with_the_core_result(qtbot, make_main_window):
    from explainer.core.engine import demo_engine

    w = make_main_window()
    final = "Nǐ hǎo, the cat sat on the"
    type_text(w, final)
    wait_for_text(qtbot, w, final)
    assert w.editor.toPlainText() == final
    direct = demo_engine().analyze(final)
    r = w.result
    for name, panel in w.panels.items():
        assert panel.result is r, name
    assert np.array_equal(r.ids, direct.ids)
    assert np.allclose(r.token_prob, direct.token_prob, atol=1e-5, equal_nan=True)
    assert np.allclose(r.top_probs, direct.top_probs, atol=1e-5)
    assert [c.sub for c in w.tokens.view.chips] == [str(i) for i in direct.ids]
    n = len(w.next_token._row_ids)
    assert w.next_token._row_ids == [int(i) for i in direct.top_ids[-1, :n]]
    typed = direct.n_tokens - 1
    assert w.status_tokens.text() == f"{typed} tokens"
    assert "ms" in w.status_latency.text()
    assert (
        "tiny-random-llama" in w.status_model.text() and format_params(direct.model.n_params) in w.status_model.text()
    )


def test_fast_typing_shows_only_the_final_generation(qtbot, make_main_window):
    from explainer.core.engine import demo_engine

    proxy = SlowProxy(demo_engine(), 0.12)
    w = make_main_window(lambda progress: proxy, refresh_while_typing_ms=None)
    qtbot.waitUntil(lambda: w.controller.model is not None, timeout=10000)
    qtbot.waitUntil(lambda: not w.controller.busy, timeout=10000)  # the empty text's own result is in first
    shown = []
    w.resultShown.connect(lambda r: shown.append((r.generation, r.text)))
    final = "The quick brown fox"
    qtbot.keyClicks(w.editor, final, delay=45)  # faster than the model
    wait_for_text(qtbot, w, final)
    qtbot.wait(200)
    c = w.controller
    assert shown[-1] == (c.generation, final)
    assert len(shown) == 1  # every earlier result was stale when it arrived
    assert c.dropped >= 1
    assert len(proxy.calls) < len(final)  # pending requests were coalesced


def test_clicking_a_candidate_appends_it(qtbot, make_main_window):
    w = make_main_window(text="The cat sat on the")
    wait_for_text(qtbot, w, "The cat sat on the")
    tok = w.controller.tokenizer
    rows = w.next_token._row_ids
    row = next(i for i, t in enumerate(rows) if not tok.is_special(t) and tok.token_bytes(t).isascii())
    piece = tok.token_bytes(rows[row]).decode()
    b = w.next_token.bars
    qtbot.mouseClick(b, Qt.LeftButton, pos=QPoint(b.width() // 2, int(b.header_height + (row + 0.5) * b.row_height)))
    assert w.editor.toPlainText() == "The cat sat on the" + piece
    wait_for_text(qtbot, w, "The cat sat on the" + piece)


def test_tokenizer_selector_changes_the_chips(qtbot, make_main_window):
    w = make_main_window(text="strawberry")
    wait_for_text(qtbot, w, "strawberry")
    assert [c.sub for c in w.tokens.view.chips] == ["0", "302", "1709", "9500"]
    w.tokens.selector.setCurrentIndex(w.tokens.selector.findData("cl100k_base"))
    assert [c.sub for c in w.tokens.view.chips] == ["496", "675", "15717"]


def test_hover_and_selection_are_linked(qtbot, make_main_window):
    w = make_main_window(text="The cat sat on the mat")
    wait_for_text(qtbot, w, "The cat sat on the mat")
    w.tokens.view.chipClicked.emit(2)
    assert all(p.selected_position == 2 for p in w.panels.values())
    assert w.next_token.position == 2
    w.tokens.view.chipHovered.emit(3)
    assert all(p.hovered_position == 3 for p in w.panels.values())
    assert w.tokens.view.highlighted == {3}


def test_error_banner_keeps_text_and_last_picture(qtbot, make_main_window, fakes):
    engine = fakes.FakeEngine(fail_on="boom")
    w = make_main_window(lambda progress: engine, text="all good")
    wait_for_text(qtbot, w, "all good")
    good = w.result
    w.set_text("now boom")
    qtbot.waitUntil(lambda: w.banner.isVisible(), timeout=5000)
    assert w.banner.kind == "error" and "The analysis failed" in w.banner.label.text()
    assert w.editor.toPlainText() == "now boom"
    assert all(p.result is good for p in w.panels.values())
    w.set_text("fine again")
    wait_for_text(qtbot, w, "fine again")
    assert not w.banner.isVisible()


def test_open_model_failure_shows_dialog_and_keeps_model(qtbot, make_main_window, tmp_path):
    w = make_main_window(text="hello")
    wait_for_text(qtbot, w, "hello")
    model = w.controller.model
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"this is not a gguf file")
    w.open_model(str(bad))
    qtbot.waitUntil(lambda: getattr(w, "last_dialog", None) is not None and w.last_dialog.isVisible(), timeout=20000)
    assert "current model stays" in w.last_dialog.text()
    assert w.controller.model is model
    w.last_dialog.close()
    w.set_text("hello again")
    wait_for_text(qtbot, w, "hello again")


def test_progress_while_loading_then_the_picture(qtbot, make_main_window, fakes):
    go = threading.Event()

    def slow(progress):
        progress("Dequantizing the weights…", 0.4)
        go.wait(10)
        return fakes.FakeEngine()

    w = make_main_window(slow, text="early text")
    assert w.isVisible()  # the window is up before the model
    qtbot.waitUntil(lambda: w.banner.isVisible() and w.banner.kind == "progress", timeout=5000)
    assert w.banner.progress.value() == 40 and "Dequantizing" in w.banner.label.text()
    go.set()
    wait_for_text(qtbot, w, "early text")
    assert not w.banner.isVisible()


def test_busy_indicator_only_for_slow_requests(qtbot, make_main_window, fakes):
    fired = []
    fast = fakes.FakeEngine()
    w = make_main_window(lambda progress: fast, text="a")
    w._busy_timer.timeout.connect(lambda: fired.append(1))
    wait_for_text(qtbot, w, "a")
    w.set_text("ab")
    wait_for_text(qtbot, w, "ab")
    qtbot.wait(200)
    assert not fired and not w.busy.isVisible()
    fast.delay_s = 0.5
    w.set_text("abc")
    qtbot.waitUntil(lambda: w.busy.isVisible(), timeout=2000)
    wait_for_text(qtbot, w, "abc")
    assert not w.busy.isVisible() and not w._busy_timer.isActive()


def test_settings_are_restored(qtbot, make_main_window, fakes):
    w = make_main_window(lambda p: fakes.FakeEngine(), text="remember me")
    w.set_theme(th.DARK)
    w.tokens.set_tokenizer("o200k_base")
    w.tokens.set_heat(True)
    w.set_help_visible(False)
    w.vsplit.setSizes([150, 600])
    w.vsplit.splitterMoved.emit(150, 1)  # as a drag of the handle does: the user's sizes are kept from now on
    sizes = w.vsplit.sizes()
    w.close()
    w2 = MainWindow(Controller(lambda p: fakes.FakeEngine()))
    qtbot.addWidget(w2)
    assert w2.geometry_restored
    w2.resize(1280, 800)  # the offscreen screen is smaller than the saved geometry, which restoring clamps
    w2.show()
    qtbot.waitExposed(w2)
    assert w2.editor.toPlainText() == "remember me"
    assert w2.theme is th.DARK and w2.theme_actions["dark"].isChecked()
    assert w2.tokens.tokenizer_name == "o200k_base" and w2.tokens.heat.isChecked()
    assert not w2.help_action.isChecked()
    assert all(abs(a - b) <= 3 for a, b in zip(w2.vsplit.sizes(), sizes)), (w2.vsplit.sizes(), sizes)
    w2.set_theme(th.LIGHT)
    w2.close()


def test_theme_reaches_every_panel(qtbot, make_main_window, fakes):
    w = make_main_window(lambda p: fakes.FakeEngine(), text="x")
    w.set_theme(th.DARK)
    assert all(p.theme is th.DARK for p in w.panels.values())
    assert QApplication.instance().palette().window().color().name() == th.DARK.surface
    w.set_theme(th.LIGHT)
    assert QApplication.instance().palette().window().color().name() == th.LIGHT.surface


@pytest.mark.parametrize("help_on", [False, True])
def test_nothing_clipped_at_1280x720(qtbot, make_main_window, help_on):
    w = make_main_window(text="How many r's are in strawberry?", size=(1280, 720))
    assert not w.help_action.isChecked()  # a small window starts without the explanations
    w.set_help_visible(help_on)
    wait_for_text(qtbot, w, "How many r's are in strawberry?")
    qtbot.wait(50)
    assert (w.width(), w.height()) == (1280, 720)
    # with the explanations under the titles, the map's panel cannot keep a readable map beside next token: it is
    # left out, and the window says how to see it (without them, everything fits)
    dropped = {"embeddings"} if help_on else set()
    assert {name for name, p in w.panels.items() if not p.isVisible()} == dropped
    assert w.live.plan.dropped == ("embeddings" if help_on else "")
    for name, p in w.panels.items():
        if name not in dropped:
            hint = p.minimumSizeHint()
            assert p.width() >= hint.width() and p.height() >= hint.height(), (name, p.size(), hint)
    assert w.editor.height() >= w.editor.fontMetrics().lineSpacing() + 8
    assert w.next_token.bars.visible_rows() >= 3
    assert w.tokens.view.chips[-1].rect.bottom() <= w.tokens.scroll.viewport().height() + 1


def test_close_leaves_no_thread_or_timer(qtbot, make_main_window, temp_cache):
    w = make_main_window(text="bye", projection=True)  # closing may interrupt the embedding map's preparation
    wait_for_text(qtbot, w, "bye")
    c = w.controller
    worker, thread = c.worker, c.thread
    w.set_text("bye bye")  # a request may still be pending
    w.close()
    assert not thread.isRunning()
    assert not shiboken6.isValid(worker)
    assert not w._busy_timer.isActive()
    assert c.is_closed
    from PySide6.QtCore import QTimer

    assert [t.objectName() for t in w.findChildren(QTimer) if t.isActive()] == []


def _png_stats(path):
    img = QImage(str(path))
    small = img.scaled(64, 40)
    colours = {small.pixel(x, y) for x in range(64) for y in range(40)}
    return img.width(), img.height(), len(colours)


def _run_app(args, timeout=240, cache=None):
    env = dict(os.environ)
    if cache is not None:
        env["EXPLAINER_CACHE"] = str(cache)
    return subprocess.run(
        [sys.executable, "-c", "import sys; from explainer.ui.app import main; sys.exit(main(sys.argv[1:]))", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_screenshot_command_demo(tmp_path, temp_cache):
    out = tmp_path / "shot.png"
    proc = _run_app(
        ["--demo", "--text", "The cat sat on the mat", "--screenshot", str(out), "--size", "1280x720"], cache=temp_cache
    )
    assert proc.returncode == 0, proc.stderr
    w, h, colours = _png_stats(out)
    assert (w, h) == (1280, 720) and colours > 20


def test_screenshot_with_a_broken_model_exits_2(tmp_path, temp_cache):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF nonsense")
    out = tmp_path / "shot.png"
    proc = _run_app(["--model", str(bad), "--screenshot", str(out)], cache=temp_cache)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.endswith(".") and not out.exists()


@pytest.mark.slow
def test_screenshot_command_real_model(tmp_path):
    out = tmp_path / "real.png"
    proc = _run_app(["--text", "The cat sat on the", "--screenshot", str(out), "--size", "1600x1000"], 600)
    assert proc.returncode == 0, proc.stderr
    w, h, colours = _png_stats(out)
    assert (w, h) == (1600, 1000) and colours > 20


def test_panels_use_their_room_at_1600x1000(qtbot, make_main_window, temp_cache):
    """The lecture layout: the attention matrix fills its width with every token labelled, the embedding labels
    never overlap, and the chain rule sits right under the token chips."""
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QFontMetricsF

    text = "How many r's are in strawberry?"
    w = make_main_window(text=text, size=(1600, 1000), projection=True)
    wait_for_text(qtbot, w, text)
    qtbot.waitUntil(lambda: len(w.embeddings.coordinates()) == w.result.n_tokens, timeout=60000)
    qtbot.wait(50)
    n = w.result.n_tokens
    hm = w.attention.heatmap
    matrix = hm.vb.mapViewToScene(QRectF(0, 0, n, n)).boundingRect()
    assert matrix.width() >= 0.6 * hm.width(), (matrix, hm.width())
    for ax in (hm.left_axis, hm.bottom_axis):
        rects = ax.label_rects()
        assert sorted(rects) == list(range(n)), ax.orientation  # every token labelled …
        boxes = list(rects.values())
        assert not any(a.intersects(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])  # … none overlapping
    for ax, length in zip(
        hm._title_axes(),
        (
            hm.left_axis.geometry().height(),
            hm.bottom_axis.geometry().width(),
            hm.colorbar.getAxis("left").geometry().height(),
        ),
    ):
        assert QFontMetricsF(ax.label.font()).horizontalAdvance(ax.labelText) <= length  # titles not clipped
    m = w.embeddings.map
    m.grab()
    shown = []
    for i, t in m.labels.items():
        if i < len(m.texts) and t.isVisible():
            t.updateTransform(force=True)
            shown.append(t.sceneBoundingRect())
    assert len(shown) >= 5
    assert not any(a.intersects(b) for i, a in enumerate(shown) for b in shown[i + 1 :])
    tokens = w.tokens
    assert abs(tokens.scroll.height() - tokens.view._content_height) <= 2
    chips_bottom = tokens.scroll.mapTo(tokens, QPoint(0, tokens.scroll.height())).y()
    assert tokens.chain.mapTo(tokens, QPoint(0, 0)).y() - chips_bottom <= 12


def test_a_new_users_example_is_replaced_by_what_they_type(qtbot, make_main_window):
    from explainer.ui.window_settings import DEFAULT_TEXT

    w = make_main_window(text=None)
    assert w.editor.toPlainText() == DEFAULT_TEXT
    assert w.editor.textCursor().selectedText() == DEFAULT_TEXT
    assert w.editor.textCursor().position() == len(DEFAULT_TEXT)  # the prediction follows the caret: the end
    w.editor.setFocus()
    qtbot.keyClicks(w.editor, "The cat")
    assert w.editor.toPlainText() == "The cat"
    w.close()
    again = make_main_window(text=None)  # the next start restores the text, unselected: typing appends
    assert again.editor.toPlainText() == "The cat" and not again.editor.textCursor().hasSelection()


def test_setting_the_same_theme_again_leaves_the_panels_alone(qtbot, make_main_window, monkeypatch):
    w = make_main_window(text="x")
    w.set_theme(th.DARK)
    calls = []
    for p in [*w.panels.values(), *w.teach.panels.values()]:
        monkeypatch.setattr(p, "set_theme", lambda theme, p=p: calls.append((p, theme)))
    w.set_theme(th.DARK)  # as restoring a scene or the autosave does
    assert calls == []
    w.set_theme(th.LIGHT)
    assert {p for p, _ in calls} >= set(w.panels.values()) and all(t is th.LIGHT for _, t in calls)
