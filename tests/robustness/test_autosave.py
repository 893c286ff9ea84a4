"""Nothing lost: the Autosaver writes text, scene and settings atomically, only when changed, on a timer and on
close, and a new window restores them. Damaged or unwritable autosave files never stop the window."""

from __future__ import annotations

import json
import os
import threading

import pytest

from explainer.ui import automation, autosave
from explainer.ui import theme as th
from tests.robustness.conftest import wait_for_result
from tests.robustness.hostile_texts import HOSTILE

LECTURE = "Lecture 7 — attention ✓ 漢字 " + HOSTILE["zwj_family"] + " \x00 end"


def factory(engine):
    return lambda progress: engine


def saved(path=None) -> dict:
    return json.loads((path or autosave.autosave_path()).read_bytes())


def test_data_dir_follows_the_environment(qt_isolated):
    assert autosave.autosave_path() == qt_isolated / "data" / "autosave.json"


def test_roundtrip_text_scene_and_settings(qtbot, make_main_window, tiny_engine):
    w = make_main_window(factory(tiny_engine), text=LECTURE)
    w.autosaver.timer.stop()  # saved by hand below (on a loaded machine the 3 s tick could save it first)
    wait_for_result(qtbot, w)
    w.set_theme(th.DARK)
    w.tokens.set_tokenizer("o200k_base")
    w.tokens.set_heat(True)
    w.attention.select_head(1, 2)
    w.attention.tabs.setCurrentIndex(1)
    w.attention.set_hide_first(True)
    w.view.set_selected(2)
    w.controller.set_settings(max_tokens=300, top_k=20)
    wait_for_result(qtbot, w)
    assert w.autosaver.save_if_changed(wait=True)
    data = saved()
    assert data["format"] == 1 and data["text"] == LECTURE
    assert data["scene"]["theme"] == "dark" and data["scene"]["panels"]["attention"]["layer"] == 1
    assert data["settings"]["max_tokens"] == 300
    w.close()

    w2 = make_main_window(factory(tiny_engine), text=None)
    assert w2.editor.toPlainText() == LECTURE
    assert w2.theme is th.DARK and w2.tokens.tokenizer_name == "o200k_base" and w2.tokens.heat.isChecked()
    assert w2.attention.tabs.currentIndex() == 1 and w2.attention.hide_first
    assert w2.controller.settings.max_tokens == 300 and w2.controller.settings.top_k == 20
    wait_for_result(qtbot, w2)  # layer / head / position need a result first
    assert (w2.attention.layer, w2.attention.head) == (1, 2)
    assert w2.tokens.selected_position == 2
    w2.set_theme(th.LIGHT)


def test_explicit_text_wins_over_the_autosave(qtbot, make_main_window, tiny_engine):
    w = make_main_window(factory(tiny_engine), text="saved text")
    w.close()
    assert saved()["text"] == "saved text"
    w2 = make_main_window(factory(tiny_engine), text="from --text")
    assert w2.editor.toPlainText() == "from --text"


def test_writes_only_when_something_changed(qtbot, make_main_window, tiny_engine):
    w = make_main_window(factory(tiny_engine), text="one", start=False)
    a = w.autosaver
    assert a.save_if_changed(wait=True) and a.writes == 1
    mtime = os.stat(a.path).st_mtime_ns
    assert not a.save_if_changed(wait=True) and a.writes == 1 and os.stat(a.path).st_mtime_ns == mtime
    w.set_text("two")
    assert a.save_if_changed(wait=True) and a.writes == 2 and saved()["text"] == "two"
    w.set_theme(th.DARK)  # a scene change is a change too
    assert a.save_if_changed(wait=True) and saved()["scene"]["theme"] == "dark"
    w.set_theme(th.LIGHT)


def test_timer_saves_typing_within_the_interval(qtbot, make_main_window, tiny_engine):
    w = make_main_window(factory(tiny_engine), text="", start=False)
    w.autosaver.timer.setInterval(200)
    automation.type_text(w.editor, "typed ✓ 👍\nline two", interval_ms=5)
    qtbot.waitUntil(lambda: w.editor.toPlainText() == "typed ✓ 👍\nline two", timeout=5000)
    qtbot.waitUntil(
        lambda: autosave.autosave_path().exists() and saved()["text"] == "typed ✓ 👍\nline two", timeout=3000
    )


def test_close_saves_even_before_the_first_tick(qtbot, make_main_window, tiny_engine):
    w = make_main_window(factory(tiny_engine), text="x", start=False)
    w.autosaver.timer.setInterval(10**7)
    w.set_text("last words before closing")
    w.close()
    assert saved()["text"] == "last words before closing"
    assert not w.autosaver.timer.isActive()


def test_failed_write_keeps_the_old_file_and_retries(qtbot, make_main_window, tiny_engine, monkeypatch):
    w = make_main_window(factory(tiny_engine), text="good", start=False)
    a = w.autosaver
    assert a.save_if_changed(wait=True)
    failures = []
    a.saveFailed.connect(failures.append)
    real_replace = os.replace

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    w.set_text("newer")
    a.save_if_changed(wait=True)
    assert saved()["text"] == "good"  # the old file is intact
    assert a.last_error and "No space left" in a.last_error
    assert [p.name for p in a.path.parent.iterdir()] == ["autosave.json"]  # no temporary file left behind
    qtbot.waitUntil(lambda: bool(failures), timeout=2000)
    monkeypatch.setattr(os, "replace", real_replace)
    assert a.save_if_changed(wait=True) and saved()["text"] == "newer" and a.last_error is None


def test_unwritable_data_folder_never_stops_the_window(qtbot, qt_isolated, make_main_window, tiny_engine, monkeypatch):
    blocker = qt_isolated / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    monkeypatch.setenv("EXPLAINER_DATA", str(blocker))
    w = make_main_window(factory(tiny_engine), text="still works")
    wait_for_result(qtbot, w)
    w.autosaver.save_if_changed(wait=True)
    assert w.autosaver.last_error is not None
    w.close()  # the last save fails quietly


BAD_EVERYTHING = (
    b'{"format": 1, "text": "ok", "scene": {"theme": "neon", "attention": {"layer": "x", "head": -5, '
    b'"tab": 99}, "selected_position": 10000, "tokens": {"tokenizer": "gpt7", "heat": "yes"}}, '
    b'"settings": {"max_tokens": -1, "top_k": true, "start_token": "no", "parse_specials": 1, "bogus": 3}}'
)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"\xff\xfe garbage",
        b"[1, 2, 3]",
        b"null",
        b'{"format": 99, "text": "future"}',
        b'{"format": 1, "text": 42, "scene": "dark", "settings": [1]}',
        BAD_EVERYTHING,
        b'{"format": 1, "text": "ok", "settings": {"max_tokens": 1000000000, "top_k": 10000000}}',
    ],
)
def test_damaged_autosave_is_ignored(qtbot, qt_isolated, make_main_window, tiny_engine, content):
    from explainer.runtime.worker import AnalysisSettings
    from explainer.ui.main_window import DEFAULT_TEXT

    path = qt_isolated / "data" / "autosave.json"
    path.parent.mkdir()
    path.write_bytes(content)
    w = make_main_window(factory(tiny_engine), text=None)
    wait_for_result(qtbot, w)
    assert w.editor.toPlainText() == ("ok" if content.startswith(b'{"format": 1, "text": "ok"') else DEFAULT_TEXT)
    assert w.controller.settings == AnalysisSettings()  # nothing unusable was taken over
    assert w.theme is th.LIGHT and w.tokens.tokenizer_name == "smollm2" and not w.tokens.heat.isChecked()
    assert w.attention.tabs.currentIndex() in (0, 1) and w.attention.head >= 0
    assert all(p.selected_position < w.result.n_tokens for p in w.panels.values())
    # a damaged file is not overwritten at start (one with a usable text is)
    assert path.read_bytes() == content or content.startswith(b'{"format": 1, "text": "ok"')


def test_encode_survives_lone_surrogates_nul_and_a_megabyte():
    for text in ("a\ud800b\udfff", "\x00" * 10, "x" * 1_000_000, HOSTILE["zwj_storm"]):
        state = {"format": 1, "text": text, "scene": {}, "settings": {}}
        assert json.loads(autosave.Autosaver.encode(state))["text"] == text


def test_atomic_write_replaces_whole_files(tmp_path):
    target = tmp_path / "sub" / "autosave.json"
    autosave.write_atomic(target, b'{"a": 1}')
    seen = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                seen.append(json.loads(target.read_bytes()))
            except FileNotFoundError:
                pass

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(200):
            autosave.write_atomic(target, json.dumps({"a": i, "pad": "x" * 20000}).encode())
    finally:
        stop.set()
        t.join()
    assert seen and all("a" in s for s in seen)  # a reader never saw half a file (json.loads would raise)
    assert sorted(p.name for p in target.parent.iterdir()) == ["autosave.json"]


def test_no_thread_or_timer_left_after_close(qtbot, make_main_window, tiny_engine):
    w = make_main_window(factory(tiny_engine), text="bye", start=False)
    w.autosaver.save_if_changed(wait=True)
    w.close()
    assert not w.autosaver.timer.isActive()
    assert not [t for t in threading.enumerate() if t.name.startswith("explainer-autosave")]


def test_two_windows_at_once_keep_their_own_text(qtbot, make_main_window, tiny_engine):
    """Two instances open together: each writes its own file, so neither overwrites the other; closing the first
    frees its file for the next window, which gets that text back."""
    a = make_main_window(factory(tiny_engine), text="first window's lecture notes")
    b = make_main_window(factory(tiny_engine), text="second window's draft")
    assert a.autosaver.path.name == "autosave.json" and b.autosaver.path.name == "autosave-2.json"
    assert a.autosaver.save_if_changed(wait=True) and b.autosaver.save_if_changed(wait=True)
    assert saved(a.autosaver.path)["text"] == "first window's lecture notes"
    assert saved(b.autosaver.path)["text"] == "second window's draft"
    a.close()
    c = make_main_window(factory(tiny_engine), text=None)  # takes the freed first file
    assert c.autosaver.path == a.autosaver.path and c.editor.toPlainText() == "first window's lecture notes"
    d = make_main_window(factory(tiny_engine), text=None)  # the second file is still b's: d gets a third one
    assert d.autosaver.path.name == "autosave-3.json"
    d.set_text("third window")
    assert d.autosaver.save_if_changed(wait=True)
    assert saved(b.autosaver.path)["text"] == "second window's draft"
    b.close()
    e = make_main_window(factory(tiny_engine), text=None)
    assert e.autosaver.path == b.autosaver.path and e.editor.toPlainText() == "second window's draft"
