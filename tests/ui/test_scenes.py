"""Scenes in the window: the lecture set, save → load round trips, damaged files, defaults between scenes."""

from __future__ import annotations

import json

import pytest

from explainer.core.scene import Scene
from explainer.ui.scenes_ui import find_scene, lecture_set
from explainer.ui.teach_area import view_key

TEXT = "The cat sat on the mat. The cat sat on the mat."
LECTURE_KEYWORDS = (
    *("strawberry", "cat", "induction", "sink", "chat", "bank", "hallucination", "context", "close"),
    *("knock-out", "france", "berlin"),
)


def test_the_lecture_set_is_complete_and_findable():
    scenes = lecture_set()
    assert len(scenes) == 12
    stems = " ".join(p.stem for p, _ in scenes)
    assert all(k in stems for k in LECTURE_KEYWORDS)
    for path, scene in scenes:
        assert scene.title and scene.text and scene.note, path
        assert view_key(scene.view) is not None, (path, scene.view)
    assert find_scene("strawberry", scenes)[1].stem == "01-strawberry"
    assert find_scene("4", scenes)[1].stem == "04-attention-sink"
    assert find_scene("Canberra", scenes)[1].stem == "09-close-call"
    assert find_scene("nothing like this", scenes) is None


def test_every_lecture_scene_loads_and_applies(qtbot, make_main_window, wait_result):
    w = make_main_window(text=TEXT)
    wait_result(w, TEXT)
    info = w.result.model
    for i, (path, scene) in enumerate(w.scenes.lecture):
        w.scenes.open_lecture(i)
        wait_result(w, scene.text)
        assert w.editor.toPlainText() == scene.text, path
        assert w.result.specials_parsed == scene.parse_specials and w.result.start_token == scene.start_token
        assert w.teach.focused_key() == view_key(scene.view), path
        assert w.presenter.caption.title.text() == scene.title
        att = scene.panels.get("attention", {})
        if "layer" in att:
            assert w.attention.layer == min(att["layer"], info.n_layers - 1)
            assert w.attention.hide_first == att.get("hide_sink", False)
        if "tokens" in scene.panels:
            assert w.tokens.heat.isChecked() == scene.panels["tokens"]["surprisal_heat"]
        if "head" in att:
            assert w.attention.head == min(att["head"], info.n_heads - 1)
        if "embeddings" in scene.panels:
            assert w.embeddings.layer == min(scene.panels["embeddings"]["layer"], info.n_layers)
        # a scene's pair of tokens is ringed on the map; the next scene clears it
        marks = scene.panels.get("embeddings", {}).get("highlight", [])
        assert w.embeddings.highlight == marks and list(w.embeddings.map.marked) == marks
        nxt = scene.panels.get("next_token", {})
        assert w.next_token.sampling_settings()[0] == pytest.approx(nxt.get("temperature", 1.0))
        assert w.next_token.seed == nxt.get("seed") and w.next_token.draws == 0  # sampling starts at draw 0
        assert w.next_token.position == nxt.get("position", w.result.n_tokens - 1)
        assert w.scenes.index == i


def test_save_then_load_restores_the_same_view(qtbot, make_main_window, wait_result, tmp_path):
    w = make_main_window(text=TEXT)
    wait_result(w, TEXT)
    teach = w.teach.panels
    w.tokens.set_heat(True)
    w.attention.select_head(1, 2)
    w.attention.set_hide_first(True)
    w.attention.tabs.setCurrentIndex(1)
    w.embeddings.set_layer(2)
    w.next_token.temperature.setValue(1.5)
    w.next_token.top_k.setValue(10)
    w.next_token.top_p.setValue(0.8)
    w.view.set_selected(4)  # the window's view state: every panel follows it
    teach["heads"].set_role("previous_token")
    teach["chat"].set_messages([{"role": "user", "content": "Hello there"}])
    teach["chat"].generation.setChecked(False)
    teach["bpe"].set_word("photosynthesis")
    teach["bpe"].tabs.setCurrentIndex(1)
    teach["bpe"].set_step(3)
    w.controller.set_settings(parse_specials=True)
    w.teach.show_view("walkthrough")
    wait_result(w, TEXT)
    saved_states = {k: p.scene_state() for k, p in w.teach.all_panels().items()}
    path = tmp_path / "my scene.json"
    assert w.scenes.save_path(path, "My scene", "A note")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["title"] == "My scene" and data["view"] == "walkthrough" and data["parse_specials"] is True

    # change everything, then load the scene again
    other = "A different text entirely."
    w.editor.setPlainText(other)
    w.tokens.set_heat(False)
    w.attention.select_head(0, 0)
    w.attention.set_hide_first(False)
    w.attention.tabs.setCurrentIndex(0)
    w.embeddings.set_layer(0)
    w.next_token.reset_sampling()
    teach["heads"].set_role("induction")
    teach["chat"].set_messages([])
    teach["bpe"].set_word("cat")
    w.controller.set_settings(parse_specials=False)
    w.teach.show_view("live")
    wait_result(w, other)

    assert w.scenes.open_path(path)
    wait_result(w, TEXT)
    assert w.editor.toPlainText() == TEXT and w.controller.settings.parse_specials
    assert w.teach.current_key() == "walkthrough"
    assert {k: p.scene_state() for k, p in w.teach.all_panels().items()} == saved_states
    assert (w.attention.layer, w.attention.head) == (1, 2) and w.attention.hide_first
    walk = teach["walkthrough"]
    assert (walk.walk.layer, walk.walk.head, walk.walk.query) == (1, 2, 4)
    assert w.next_token.position == 4 and w.embeddings.layer == 2
    assert w.next_token.sampling_settings() == pytest.approx((1.5, 10, 0.8))
    assert w.presenter.caption.title.text() == "My scene" and w.presenter.caption.note.text() == "A note"


def test_scenes_do_not_carry_state_into_the_next_one(qtbot, make_main_window, wait_result):
    w = make_main_window(text=TEXT)
    wait_result(w, TEXT)
    i = find_scene("sink", w.scenes.lecture)[0]
    w.scenes.open_lecture(i)
    wait_result(w, w.scenes.current.text)
    w.attention.set_hide_first(True)
    w.next_token.temperature.setValue(1.8)
    w.scenes.step(-1)  # the induction scene says nothing about them: defaults again
    wait_result(w, w.scenes.current.text)
    assert "nduction" in w.scenes.current.title
    assert not w.attention.hide_first and w.next_token.sampling_settings() == (1.0, 0, 1.0)
    w.scenes.index = len(w.scenes.lecture) - 1
    w.scenes.step(1)  # past the last scene: stays, says so
    assert "last scene" in w.statusBar().currentMessage()


def test_a_scene_is_one_analysis_with_its_own_knocked_out_heads(qtbot, make_main_window, wait_result, real_engine):
    """Into the knock-out scene and out of it again (on the model the scenes are made for): each scene's text goes
    to the model once, with that scene's heads (none for a scene that names none), never with the previous one's."""
    w = make_main_window(lambda progress: real_engine, text=TEXT)
    wait_result(w, TEXT)
    sent = []
    real_dispatch = w.controller._dispatch

    def dispatch():
        if w.controller._pending is not None:
            sent.append((w.controller._pending.text, w.controller._pending.settings.ablated))
        real_dispatch()

    w.controller._dispatch = dispatch
    knock = find_scene("knock-out", w.scenes.lecture)[0]
    for i in (knock, knock + 1):
        sent.clear()
        w.scenes.open_lecture(i)
        scene = w.scenes.current
        wait_result(w, scene.text)
        qtbot.waitUntil(lambda: not w.controller.busy, timeout=20000)
        heads = tuple(sorted(tuple(p) for p in scene.panels.get("attention", {}).get("knocked_out", [])))
        assert heads or i > knock
        assert {(text, ablated) for text, ablated in sent} == {(scene.text, heads)}, scene.title
        assert w.result.ablated == heads and w.view.knocked_out == frozenset(heads)


@pytest.mark.parametrize(
    "content, sentence",
    [
        (b"this is not json", "not a valid scene file"),
        (b'{"title": "no text"}', "has no text"),
        (b'{"text": "x", "version": "seven"}', "version is not a number"),
        (b'{"text": "x", "version": 99}', "newer explainer"),
        (b"\xff\xfe\x00garbage", "cannot be read"),
        (b'["a", "list"]', "is not an explainer scene (a scene is a JSON object with a text)"),
        (b'{"text": 7}', "text is not a string"),
        (b"[" * 100_000 + b"]" * 100_000, "not a valid scene file"),
    ],
)
def test_a_broken_scene_file_gives_a_sentence_not_a_crash(
    qtbot, make_main_window, wait_result, tmp_path, content, sentence
):
    w = make_main_window(text=TEXT)
    wait_result(w, TEXT)
    path = tmp_path / "broken.json"
    path.write_bytes(content)
    assert not w.scenes.open_path(path)
    box = w.scenes.last_dialog
    assert box is not None and sentence in box.text() and "\n" not in box.text().strip()
    assert w.editor.toPlainText() == TEXT  # nothing changed
    box.close()
    assert not w.scenes.open_path(tmp_path / "missing.json")
    assert "does not exist" in w.scenes.last_dialog.text()


def test_odd_panel_values_in_a_scene_are_ignored(qtbot, make_main_window, wait_result, tmp_path):
    w = make_main_window(text=TEXT)
    wait_result(w, TEXT)
    scene = Scene(
        "Odd",
        "Odd values here.",
        view="no such view",
        panels={
            "attention": {"layer": "x", "head": -3, "tab": 99, "hide_sink": "yes"},
            "next_token": {"temperature": "hot", "top_k": 1e9, "position": 10_000},
            "embeddings": {"layer": 99},
            "heads": {"role": "juggler"},
            "chat": {"messages": "hello"},
            "unknown_panel": {"x": 1},
        },
    )
    w.scenes.apply(scene)
    wait_result(w, "Odd values here.")
    assert w.attention.layer in range(w.result.model.n_layers) and not w.attention.hide_first
    assert w.next_token.position == w.result.n_tokens - 1 and w.next_token.top_k.value() == 100
    assert w.embeddings.layer == w.result.model.n_layers


def test_numbers_no_control_can_hold_are_left_out_of_a_scene(tmp_path, capfd):
    """A scene file's layer, head, position or slider value beyond a C int (or not finite) is ignored like any
    other unusable value, also when the scene opens before the model has answered (``explainer --scene``)."""
    from explainer.ui.app import main

    huge = 10**12
    for view, panels in (
        ("next_token", {"next_token": {"position": huge, "temperature": 1e300, "top_k": huge, "seed": huge}}),
        ("attention", {"attention": {"layer": huge, "head": huge, "key": huge, "knocked_out": [[huge, 1]]}}),
        ("embeddings", {"embeddings": {"layer": huge, "highlight": [huge]}}),
        ("walkthrough", {"walkthrough": {"layer": huge, "head": -huge}}),
        ("lens", {"lens": {"layer": huge, "position": huge}}),
    ):
        path = tmp_path / f"{view}.json"
        text = json.dumps({"version": 1, "text": "Huge numbers here.", "view": view, "panels": panels})
        path.write_text(text.replace("1e+300", "Infinity"), encoding="utf-8")
        assert main(["--demo", "--scene", str(path), "--screenshot", str(tmp_path / f"{view}.png")]) == 0
        err = capfd.readouterr().err
        assert "Traceback" not in err and "Error" not in err and "Overflow" not in err, (view, err)
        assert (tmp_path / f"{view}.png").stat().st_size > 10_000


def test_a_scene_path_that_is_no_file_or_too_big_gives_a_sentence(tmp_path, monkeypatch):
    import os

    from explainer.core import scene as scene_mod
    from explainer.core.errors import UserError

    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    for path, sentence in (
        (fifo, "is not a regular file"),
        ("/dev/zero", "is not a regular file"),
        (tmp_path, "is a folder"),
    ):
        with pytest.raises(UserError, match=sentence):  # at once: a pipe without a writer would wait forever
            scene_mod.load_scene(path)
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"text": "x" * 3 * 2**20}), encoding="utf-8")
    monkeypatch.setattr(scene_mod, "MAX_SCENE_BYTES", 2**20)
    with pytest.raises(UserError, match=r"big.json is 3 MB; a scene file is at most 1 MB"):
        scene_mod.load_scene(big)
    monkeypatch.setattr(scene_mod, "MAX_SCENE_BYTES", 4 * 2**20)
    assert scene_mod.load_scene(big).text == "x" * 3 * 2**20


def test_app_start_options_fail_with_a_sentence(tmp_path, capsys):
    from explainer.ui.app import main

    shot = str(tmp_path / "x.png")
    assert main(["--demo", "--scene", "no such scene", "--screenshot", shot]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["--demo", "--view", "no such view", "--screenshot", shot]) == 2
    assert "no view called" in capsys.readouterr().err
    assert main(["--demo", "--view", "", "--screenshot", shot]) == 2
    assert "no view called ''" in capsys.readouterr().err
    for blank in ("", "  "):
        assert main(["--demo", "--scene", blank, "--screenshot", shot]) == 2
        assert "--scene needs a scene file or the name or number of a lecture scene" in capsys.readouterr().err
    assert main(["--demo", "--scene", "0", "--screenshot", shot]) == 2  # no scene 0 (not the first containing "0")
    assert "does not exist" in capsys.readouterr().err


def test_a_lecture_scene_is_found_by_its_number_only_when_the_name_is_a_number():
    scenes = lecture_set()
    assert len(scenes) >= 10
    for name, stem in (("4", "04-"), ("04", "04-"), ("0004", "04-"), ("10", "10-"), ("strawberry", "01-")):
        assert find_scene(name, scenes)[1].stem.startswith(stem), name
    for name in ("0", "99", "", "   "):
        assert find_scene(name, scenes) is None, name


@pytest.mark.parametrize("size", [(1920, 1080), (1600, 1000)])
def test_the_chat_scene_shows_where_the_assistant_answers(qtbot, make_main_window, wait_result, size):
    """The ChatML text is longer than the editor: its end (the final <|im_start|>assistant, the scene's point)
    is in view, with the caret there, so the prediction is the assistant's first token."""
    w = make_main_window(text="Hello", size=size)
    wait_result(w, "Hello")
    w.hide()  # as at start-up (explainer --scene 5): the scene comes before the window has its size
    w.editor.resize(200, 20)
    w.scenes.open_lecture(find_scene("chat", w.scenes.lecture)[0])
    w.show()
    text = w.scenes.current.text
    wait_result(w, text)
    qtbot.wait(50)
    e = w.editor
    bar = e.verticalScrollBar()
    assert bar.maximum() > 0  # the text does not fit: the test means something
    assert e.textCursor().atEnd() and bar.value() == bar.maximum()
    assert 0 <= e.cursorRect().top() and e.cursorRect().bottom() <= e.viewport().height()
    assert w.next_token.position == w.result.n_tokens - 1


@pytest.mark.slow
def test_the_close_call_scene_flips_on_the_real_model(qtbot, make_main_window, wait_result):
    """As the note says: Ctrl+G samples "Canberra", Ctrl+Z and Ctrl+G again sample "Sydney"; the panel names each
    choice before it is drawn."""
    import re

    from explainer.runtime.controller import engine_factory

    w = make_main_window(engine_factory(None, device="cpu"), text="Hello", size=(1600, 1000))
    wait_result(w, "Hello", timeout=300000)
    w.scenes.open_lecture(find_scene("close", w.scenes.lecture)[0])
    text = w.scenes.current.text
    wait_result(w, text, timeout=60000)
    nt = w.next_token

    def upcoming() -> str:
        return re.search(r"Next sample \(Ctrl\+G\): “([^”]+)”", re.sub(r"<[^>]+>", "", nt.footer.text())).group(1)

    assert upcoming() == "·Canberra"
    w.flow.sample_action.trigger()
    assert w.editor.toPlainText() == text + " Canberra"
    w.flow.undo_action.trigger()
    wait_result(w, text, timeout=60000)
    assert upcoming() == "·Sydney"
    w.flow.sample_action.trigger()
    assert w.editor.toPlainText() == text + " Sydney"
