"""The window's one view state: changes are requests that emit only when something changed, panels follow it,
and scenes, the autosave and the settings all go through ``state()`` / ``restore()`` (old files included)."""

from __future__ import annotations

import json

import pytest

from explainer.core.scene import load_scene
from explainer.ui import window_state
from explainer.ui.view_state import ViewState

TEXT = "The cat sat on the mat. The cat sat on the mat."


def test_requests_emit_only_changes_and_respect_the_result(qtbot):
    vs = ViewState()
    seen = []
    vs.changed.connect(seen.append)
    with qtbot.waitSignal(vs.selectedChanged) as sig:
        assert vs.set_selected(4)
    assert sig.args == [4] and vs.selected == 4
    assert not vs.set_selected(4) and seen == ["selected"]  # the same value: nothing emitted
    assert vs.set_head(12, 3) and (vs.layer, vs.head) == (12, 3)  # no model yet: kept as asked
    assert not vs.set_head(-1, 0) and not vs.set_head("2", 0) and not vs.set_hero("nonsense")
    vs.fit_to(n_tokens=3, n_layers=2, n_heads=4)  # a smaller result: cut to its range
    assert vs.selected == -1 and (vs.layer, vs.head) == (1, 3)
    assert not vs.set_selected(5) and vs.position == 2  # out of range: refused; the last token is explained
    assert vs.set_knocked_out([(1, 2), (0, 0)]) and vs.knocked_out == frozenset({(1, 2), (0, 0)})
    saved = vs.to_dict()
    assert json.loads(json.dumps(saved)) == saved and saved["knocked_out"] == [[0, 0], [1, 2]]
    other = ViewState()
    other.restore(saved)
    assert other.to_dict() == saved
    other.restore({"layer": "x", "head": None, "average": "yes", "hero": 3, "knocked_out": [[1], "a"]})
    assert other.to_dict() == saved  # bad values are ignored


def test_panels_follow_the_state_and_send_requests(make_main_window, wait_result):
    w = make_main_window(text=TEXT)
    wait_result(w, TEXT)
    w.tokens.tokenSelected.emit(3)  # a click on a chip is a request
    assert w.view.selected == 3 and all(p.selected_position == 3 for p in w.panels.values())
    w.attention.set_hide_first(True)
    assert w.view.hide_first
    w.view.set_head(1, 2)  # from elsewhere (a scene, the walk-through): the attention panel shows it
    assert (w.attention.layer, w.attention.head) == (1, 2) and w.teach.panels["heads"].grid.selected == (1, 2)
    w.view.set_average(True)
    assert w.attention.average and not w.attention.head_spin.isEnabled()
    w.attention.select_head(0, 1)  # picking a head in the grid ends the average everywhere
    assert not w.view.average and (w.view.layer, w.view.head) == (0, 1)
    w.attention._on_heatmap_clicked(5, 2)
    assert w.view.selected == 5 and w.view.key == 2
    w.view.set_hovered(4)
    assert all(p.hovered_position == 4 for p in w.panels.values())


def test_state_round_trips_through_a_new_window(make_main_window, wait_result):
    w = make_main_window(text=TEXT)
    wait_result(w, TEXT)
    w.view.set_selected(4)
    w.view.set_head(1, 2)
    w.attention.set_hide_first(True)
    w.attention.set_measure("first")
    w.view.set_focus("attention")
    w.next_token.temperature.setValue(1.5)
    w.teach.show_view("embeddings")
    state = w.state()
    assert json.loads(json.dumps(state)) == state
    assert state["view"] == "embeddings" and state["focus"] == "attention"
    att = state["panels"]["attention"]
    assert (att["layer"], att["head"], att["hide_sink"], att["grid"]) == (1, 2, True, "first")
    assert state["panels"]["next_token"]["position"] == 4
    w2 = make_main_window(text=TEXT)
    w2.restore(state)
    wait_result(w2, TEXT)
    assert w2.state() == state
    assert (w2.attention.layer, w2.attention.head) == (1, 2) and w2.next_token.position == 4
    assert not w2.tokens.isVisibleTo(w2) and w2.attention.isVisibleTo(w2)  # the focus came back


@pytest.mark.parametrize("name", ["01", "02", "03", "04", "05", "06", "07", "08", "09"])
def test_every_lecture_scene_round_trips(make_main_window, wait_result, name):
    """scene → window → state → scene: what the scene says comes back the same."""
    from explainer.ui.scenes_ui import find_scene

    w = make_main_window(text="x")
    wait_result(w, "x")
    index, path, scene = find_scene(name, w.scenes.lecture)
    w.scenes.open_lecture(index)
    wait_result(w, scene.text)
    again = w.scenes.capture()
    assert (again.text, again.title, again.note) == (scene.text, scene.title, scene.note)
    assert (again.parse_specials, again.start_token) == (scene.parse_specials, scene.start_token)
    assert again.view == scene.view
    n_layers = w.result.model.n_layers
    for panel, values in scene.panels.items():
        for key, value in values.items():
            got = again.panels.get(panel, {}).get(key)
            if key == "layer" and panel in ("attention", "walkthrough"):
                value = min(value, n_layers - 1)  # the demo model is smaller than the lecture's
            if key == "head" and panel in ("attention", "walkthrough"):
                value = min(value, w.result.model.n_heads - 1)
            if key == "layer" and panel == "embeddings":
                value = min(value, n_layers)
            assert got == value, (path.name, panel, key, got, value)
    w.scenes.apply(again)  # and the captured scene shows the same again
    wait_result(w, scene.text)
    assert w.scenes.capture().panels == again.panels


def test_old_scene_files_and_autosaves_still_load(make_main_window, wait_result, tmp_path):
    old_scene = {
        "version": 1,
        "title": "Old",
        "text": TEXT,
        "view": "attention",
        "panels": {"attention": {"layer": 1, "head": 2, "hide_sink": True, "tab": 1}, "next_token": {"position": 3}},
    }
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old_scene), encoding="utf-8")
    w = make_main_window(text="x")
    wait_result(w, "x")
    assert w.scenes.open_path(path)
    wait_result(w, TEXT)
    assert (w.view.layer, w.view.head, w.view.hide_first, w.view.selected) == (1, 2, True, 3)
    assert w.attention.tabs.currentIndex() == 1 and w.view.hero == "attention"
    assert load_scene(path).panels == old_scene["panels"]
    legacy_autosave = {  # what the autosave wrote before the one state
        "theme": "dark",
        "selected_position": 2,
        "tokens": {"tokenizer": "o200k_base", "heat": True},
        "attention": {"layer": 1, "head": 1, "average": False, "hide_first": False, "tab": 0},
    }
    up = window_state.upgrade(legacy_autosave)
    assert up["panels"]["tokens"] == {"tokenizer": "o200k_base", "surprisal_heat": True}
    assert up["panels"]["next_token"] == {"position": 2} and up["panels"]["attention"]["hide_sink"] is False
    w.restore(legacy_autosave)
    assert w.theme.name == "dark" and w.tokens.tokenizer_name == "o200k_base" and w.tokens.heat.isChecked()
    assert (w.view.layer, w.view.head, w.view.hide_first, w.view.selected) == (1, 1, False, 2)
    from explainer.ui import theme as th

    w.set_theme(th.LIGHT)


def test_sampling_settings_and_the_embedding_layer_come_back_after_ctrl_q(qtbot, make_main_window, wait_result):
    """Quit with Ctrl+Q, start again (no text given, as the app does): the sliders are where they were."""
    from PySide6.QtCore import Qt

    w = make_main_window(text=TEXT)
    wait_result(w, TEXT)
    nt = w.next_token
    nt.temperature.setValue(1.35)
    nt.top_k.setValue(12)
    nt.top_p.setValue(0.8)
    w.embeddings.set_layer(2)
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow)
    qtbot.keyClick(w.next_token.bars, Qt.Key_Q, Qt.ControlModifier)
    qtbot.waitUntil(lambda: not w.isVisible())
    w2 = make_main_window(text=None)
    wait_result(w2, TEXT)
    assert w2.next_token.sampling_settings() == pytest.approx((1.35, 12, 0.8))
    assert w2.embeddings.layer == 2 and w2.embeddings.slider.value() == 2
