"""The window under fire: broken model files, an analysis that raises, a panel that raises, hostile texts typed.

A lecture must go on: the old model keeps answering, the text stays, the last good picture stays, and the user
sees one sentence (a dialog or the banner), never a crash.
"""

from __future__ import annotations

import logging

import pytest

from explainer.core.errors import ModelFileError
from tests.robustness.conftest import FailOn, wait_for_result
from tests.robustness.hostile_texts import HOSTILE, big_paste


def tiny_factory(engine):
    def make(progress):
        progress("Building the demo model…", 0.5)
        return engine

    return make


# --- broken model files --------------------------------------------------------------------------------------------
def broken_files(tmp_path, tiny_gguf) -> dict:
    data = tiny_gguf.read_bytes()
    files = {
        "empty": b"",
        "text": b"this is not a model\n",
        "gguf_magic_then_garbage": b"GGUF" + bytes(range(256)) * 4,
        "gguf_header_only": data[:64],
        "truncated_half": data[: len(data) // 2],
        "truncated_last_byte": data[:-1],
    }
    paths = {}
    for name, content in files.items():
        p = tmp_path / f"{name}.gguf"
        p.write_bytes(content)
        paths[name] = p
    paths["folder"] = tmp_path / "a-folder.gguf"
    paths["folder"].mkdir()
    paths["missing"] = tmp_path / "does-not-exist.gguf"
    paths["odd_name"] = tmp_path / "evil\u202ename\n.gguf"
    paths["odd_name"].write_bytes(b"GGUF")
    return paths


BROKEN = [
    "empty",
    "text",
    "gguf_magic_then_garbage",
    "gguf_header_only",
    "truncated_half",
    "truncated_last_byte",
    "folder",
    "missing",
    "odd_name",
]


@pytest.mark.parametrize("name", BROKEN)
def test_open_broken_model_shows_a_dialog_and_keeps_the_model(
    qtbot, make_main_window, dialogs, tmp_path, tiny_gguf, tiny_engine, name
):
    w = make_main_window(tiny_factory(tiny_engine), text="The lecture goes on")
    wait_for_result(qtbot, w)
    model = w.controller.model
    path = broken_files(tmp_path, tiny_gguf)[name]
    w.open_model(str(path))
    qtbot.waitUntil(lambda: bool(dialogs), timeout=60000)
    qtbot.waitUntil(lambda: not w.controller.loading, timeout=5000)
    assert len(dialogs) == 1
    kind, title, text = dialogs[0]
    assert "current model stays" in text and "Traceback" not in text
    assert w.controller.model is model and w.windowTitle().endswith(model.info.name)
    # the old model still answers
    w.set_text("The lecture goes on, and on")
    wait_for_result(qtbot, w)
    assert w.result.model is model.info and w.editor.toPlainText() == "The lecture goes on, and on"


def test_file_menu_open_model_with_a_broken_file(qtbot, make_main_window, dialogs, tmp_path, tiny_engine, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    w = make_main_window(tiny_factory(tiny_engine), text="menu test")
    wait_for_result(qtbot, w)
    model = w.controller.model
    action = next(a for m in w.menuBar().actions() for a in m.menu().actions() if "Open model" in a.text())
    # cancelled dialog: nothing happens
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: ("", "")))
    action.trigger()
    qtbot.wait(100)
    assert not dialogs and not w.controller.loading
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 100)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(bad), "GGUF (*.gguf)")))
    action.trigger()
    qtbot.waitUntil(lambda: bool(dialogs), timeout=60000)
    assert w.controller.model is model
    w.set_text("menu test 2")
    wait_for_result(qtbot, w)


def test_broken_model_at_start_then_a_good_one(qtbot, make_main_window, dialogs, tiny_gguf):
    """No model at all (the bundled file is damaged, say): a banner, typing still works, and opening a good
    model recovers."""

    def broken(progress):
        progress("Reading the model file", 0.1)
        raise ModelFileError(
            "The model file x.gguf is damaged or truncated and cannot be read as GGUF; download it again."
        )

    w = make_main_window(broken, text="no model yet")
    qtbot.waitUntil(lambda: w.banner.isVisible() and w.banner.kind == "error", timeout=10000)
    assert "could not be loaded" in w.banner.label.text() and w.controller.model is None
    w.set_text("still typing")
    qtbot.wait(100)
    assert w.editor.toPlainText() == "still typing" and w.result is None
    w.open_model(str(tiny_gguf))
    wait_for_result(qtbot, w, timeout=120000)
    assert w.result.model.name == "tiny-test-llama" and not dialogs


# --- errors inside the analysis and inside a panel ------------------------------------------------------------------
class Panic(BaseException):
    """Like pyo3's PanicException: not an Exception subclass."""


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("fake failure inside the analysis"),
        MemoryError(),
        Panic("tiktoken panicked"),
        ValueError("x" * 5000 + "\nsecond line"),
    ],
)
def test_analysis_error_shows_banner_keeps_text_and_picture(qtbot, make_main_window, tiny_engine, exc):
    engine = FailOn(tiny_engine, "BOOM", exc)
    w = make_main_window(tiny_factory(engine), text="a good text")
    wait_for_result(qtbot, w)
    good = w.result
    w.set_text("a good text BOOM")
    qtbot.waitUntil(lambda: w.banner.isVisible() and w.banner.kind == "error", timeout=10000)
    qtbot.waitUntil(lambda: not w.controller.busy, timeout=10000)
    message = w.banner.label.text()
    assert "last text that worked" in message and "\n" not in message and len(message) < 400
    assert w.editor.toPlainText() == "a good text BOOM"
    assert w.result is good and all(p.result is good for p in w.panels.values())
    w.set_text("a good text again")
    wait_for_result(qtbot, w)
    assert not w.banner.isVisible() and w.result is not good


def test_an_error_before_any_picture_does_not_promise_one(qtbot, make_main_window, tiny_engine):
    engine = FailOn(tiny_engine, "BOOM", RuntimeError("fake failure inside the analysis"))
    w = make_main_window(tiny_factory(engine), text="BOOM at once")
    qtbot.waitUntil(lambda: w.banner.isVisible() and w.banner.kind == "error", timeout=20000)
    message = w.banner.label.text()
    assert w.result is None and "last text that worked" not in message and "until a text can be analysed" in message
    w.set_text("a good text")
    wait_for_result(qtbot, w)
    assert not w.banner.isVisible()


def test_a_panel_that_raises_does_not_take_the_others_down(qtbot, make_main_window, tiny_engine, caplog):
    w = make_main_window(tiny_factory(tiny_engine), text="panels")
    wait_for_result(qtbot, w)

    def explode(result):
        raise RuntimeError("panel bug")

    w.embeddings.set_result = explode
    with caplog.at_level(logging.ERROR):
        w.set_text("panels again")
        wait_for_result(qtbot, w)
    assert w.tokens.result is w.result and w.attention.result is w.result and w.next_token.result is w.result
    assert any("panel bug" in (r.exc_text or "") or "failed to draw" in r.getMessage() for r in caplog.records)


# --- hostile texts typed into the window ------------------------------------------------------------------------------
UI_TEXTS = [
    "empty",
    "whitespace_only",
    "c0_controls",
    "nul_inside",
    "del",
    "no_token_only",
    "plane4_U40000",
    "lone_combining",
    "rtl_override",
    "zwj_family",
    "zwj_rainbow_flag",
    "flag_fr",
    "math_alnum",
    "special_im_end",
    "special_im_start_chat",
    "repeated_emoji",
    "zwj_storm",
    "long_word",
    "mixed_scripts_long",
    "lone_high_surrogate",
    "surrogate_escapes",
]


def test_hostile_texts_in_the_editor(qtbot, make_main_window, tiny_engine, caplog):
    w = make_main_window(tiny_factory(tiny_engine), text="start")
    wait_for_result(qtbot, w)
    with caplog.at_level(logging.WARNING, logger="explainer"):
        for name in UI_TEXTS:
            w.set_text(HOSTILE[name])
            wait_for_result(qtbot, w)  # Qt drops lone surrogates from the editor: compare with what it holds
            assert not w.banner.isVisible(), (name, w.banner.label.text())
            for position in (0, w.result.n_tokens - 1):
                for p in w.panels.values():
                    p.select_position(position)
                    p.highlight_token(position)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]


def test_one_megabyte_paste_in_the_editor(qtbot, make_main_window, tiny_engine):
    w = make_main_window(tiny_factory(tiny_engine), text="start")
    wait_for_result(qtbot, w)
    big = big_paste()
    w.editor.setPlainText(big)
    wait_for_result(qtbot, w, timeout=120000)
    assert w.result.truncated and w.result.n_tokens <= w.controller.settings.max_tokens
    assert w.editor.toPlainText() == big
    assert "(cut)" in w.status_tokens.text()
