"""The window from the keyboard: Tab leaves the editor, every control is reachable, a visible focus ring, menus
without clashing letters or shortcuts, file dialogs that start where the user was, dialogs that remember."""

from __future__ import annotations

import json
import os
import re

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QDialog, QFileDialog, QMenu

from explainer.ui.export_ui import ExportDialog
from explainer.ui.scenes_ui import SceneDialog

TEXT = "The cat sat on the mat."


@pytest.fixture
def window(make_main_window, wait_result, qtbot):
    w = make_main_window(text=TEXT, size=(1366, 768))
    wait_result(w, TEXT)
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow)
    return w


def focus(w):
    return QApplication.focusWidget()


@pytest.mark.parametrize(
    "key, modifiers",
    [
        (Qt.Key_Tab, Qt.NoModifier),
        (Qt.Key_Backtab, Qt.ShiftModifier),
        (Qt.Key_Tab, Qt.ControlModifier),
        (Qt.Key_Backtab, Qt.ControlModifier | Qt.ShiftModifier),
    ],
)
def test_tab_keys_leave_the_editor(qtbot, window, key, modifiers):
    w = window
    w.editor.setFocus()
    qtbot.waitUntil(w.editor.hasFocus)
    qtbot.keyClick(w.editor, key, modifiers)
    assert not w.editor.hasFocus()
    assert w.editor.toPlainText() == TEXT  # no tab character typed


def test_tab_reaches_every_control_and_comes_back(qtbot, window):
    w = window
    w.editor.setFocus()
    qtbot.waitUntil(w.editor.hasFocus)
    seen = []
    for _ in range(60):
        qtbot.keyClick(focus(w), Qt.Key_Tab)
        seen.append(focus(w))
        if focus(w) is w.editor:
            break
    assert seen[-1] is w.editor  # a cycle: Tab comes back to the editor
    a, nt, e = w.attention, w.next_token, w.embeddings

    def reached(widget):
        return any(s is widget or widget.isAncestorOf(s) for s in seen)

    wanted = {
        "view tabs": w.teach.tabBar(),
        "tokenizer": w.tokens.selector,
        "surprisal heat": w.tokens.heat,
        "temperature": nt.temperature,
        "top-k": nt.top_k,
        "top-p": nt.top_p,
        "sample": nt.sample_button,
        "bars": nt.bars,
        "embedding layer": e.slider,
        "attention panel (arrow keys)": a,
        "heatmap button": a.view_buttons.button(0),
        "layer": a.layer_spin,
        "head": a.head_spin,
        "average": a.average_box,
        "hide first": a.sink_box,
        "grid measure": a.measure_box,
    }
    missing = [name for name, widget in wanted.items() if not reached(widget)]
    assert not missing, missing
    order = [seen.index(next(s for s in seen if s is x or x.isAncestorOf(s))) for x in wanted.values()]
    assert order.index(min(order)) == 0  # the view tabs first, right under the editor


def test_keyboard_focus_wears_a_ring_and_a_click_does_not(qtbot, window):
    w = window
    w.editor.setFocus()
    qtbot.keyClick(w.editor, Qt.Key_Tab)
    target = focus(w)
    ring = w.focus_ring
    assert ring.isVisible() and ring.target is target
    box = ring.geometry()
    inner = target.rect().translated(target.mapTo(w, target.rect().topLeft()))
    assert box.contains(inner.intersected(w.rect()))
    qtbot.mouseClick(w.attention.layer_spin, Qt.LeftButton)
    assert not ring.isVisible()


def test_the_ring_is_drawn_on_its_band_and_typing_inside_it_does_not_draw_it_again(qtbot, window):
    from PySide6.QtCore import QEvent, QPoint

    from explainer.bench_window import paint_counter
    from explainer.ui import theme as th
    from tests.pixels import image_array, rgb

    w = window
    w.editor.setFocus(Qt.TabFocusReason)
    ring = w.focus_ring
    qtbot.waitUntil(lambda: ring.isVisible() and ring.target is w.editor)
    r = ring.rect()
    band = ring.mask()
    assert band.contains(QPoint(r.center().x(), 1)) and band.contains(QPoint(1, r.center().y()))
    assert not band.contains(r.center())  # the control's inside is not the ring's
    # the ring's colour along its edge, in the window's own rendering
    shot = image_array(w.grab(ring.geometry()).toImage())
    edge = shot[:3, r.width() // 4 : 3 * r.width() // 4].reshape(-1, 3).astype(int)
    assert (abs(edge - rgb(th.HIGHLIGHT)).sum(axis=1) < 60).mean() > 0.3
    paints = paint_counter(QEvent.Paint)
    ring.installEventFilter(paints)
    for ch in "typing":
        qtbot.keyClick(w.editor, ch)
    qtbot.wait(50)
    assert w.editor.toPlainText().endswith("typing")
    assert paints.count == 0


def test_the_ring_follows_its_control_when_the_panels_move(qtbot, window):
    """In presenter mode a longer text makes the editor taller and pushes the hero down: the ring moves with the
    focused control (the control itself did not move inside its panel)."""
    w = window
    w.presenter.fullscreen = False
    w.presenter.enter()
    w.view.set_hero("attention")
    qtbot.waitUntil(lambda: w.attention.layer_spin.isVisible())
    w.attention.layer_spin.setFocus(Qt.TabFocusReason)
    target, ring = w.attention.layer_spin, w.focus_ring
    qtbot.waitUntil(lambda: ring.isVisible() and ring.target is target)
    before = target.mapTo(w, target.rect().topLeft())
    w.editor.setPlainText("\n".join(["A line of text."] * 4))  # more lines: the editor grows
    qtbot.waitUntil(lambda: target.mapTo(w, target.rect().topLeft()) != before, timeout=5000)
    qtbot.wait(20)
    inner = target.rect().translated(target.mapTo(w, target.rect().topLeft()))
    assert ring.geometry().contains(inner.intersected(w.rect()))


def _menus(w):
    out = []

    def walk(menu):
        out.append(menu)
        for a in menu.actions():
            if a.menu() is not None:
                walk(a.menu())

    for a in w.menuBar().actions():
        walk(a.menu())
    return out


def test_no_two_entries_of_a_menu_share_a_letter(window):
    for menu in _menus(window):
        letters = [m.group(1).lower() for a in menu.actions() for m in [re.search(r"&(\w)", a.text())] if m]
        assert len(letters) == len(set(letters)), (menu.title(), letters)
    bar = [re.search(r"&(\w)", a.text()).group(1).lower() for a in window.menuBar().actions()]
    assert len(bar) == len(set(bar))


def test_every_shortcut_has_one_action(window):
    seen: dict[str, str] = {}
    for a in window.findChildren(QAction):
        for k in a.shortcuts():
            key = k.toString()
            assert key not in seen or seen[key] == a.text(), (key, seen.get(key), a.text())
            seen[key] = a.text()
    s, e, f = window.scenes, window.exports, window.flow
    assert s.save_action.shortcut().toString() == "Ctrl+Shift+S"
    assert s.open_action.shortcut().toString() == "Ctrl+Shift+O"
    assert e.action.shortcut().toString() == "Ctrl+E"
    assert f.sample_action.shortcut().toString() == "Ctrl+G"


def _recording_dialogs(monkeypatch, answers):
    """QFileDialog's static functions, answering from ``answers`` and recording the folder each starts in."""
    started = []

    def answer(_parent, _caption, start, _filters, *a, **k):
        started.append(start)
        return answers.pop(0), "Scenes (*.json)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(answer))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(answer))
    return started


def test_open_model_folder_starts_where_the_last_model_folder_was(window, tmp_path, monkeypatch):
    w = window
    models = tmp_path / "models"
    (models / "tiny-gpt2").mkdir(parents=True)
    (models / "tiny-llama").mkdir()
    started, opened = [], []
    answers = [str(models / "tiny-gpt2"), str(models / "tiny-llama")]

    def answer(_parent, _caption, start, *a, **k):
        started.append(start)
        return answers.pop(0)

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(answer))
    monkeypatch.setattr(w, "open_model", opened.append)
    w.models_menu.folder_action.trigger()
    w.models_menu.folder_action.trigger()
    assert opened == [str(models / "tiny-gpt2"), str(models / "tiny-llama")]
    assert started[1] == str(models)  # beside the folder opened last, not the launch folder


def test_save_scene_asks_for_title_and_note_and_remembers_the_folder(qtbot, window, wait_result, tmp_path, monkeypatch):
    w = window
    w.scenes.open_lecture(1)
    scene = w.scenes.current
    wait_result(w, scene.text)
    seen = {}

    def fill(dlg):
        seen.update(title=dlg.title.text(), note=dlg.note.toPlainText(), width=dlg.width())
        dlg.note.setPlainText("My own note.")
        return QDialog.Accepted

    monkeypatch.setattr(SceneDialog, "exec", fill)
    folder = tmp_path / "talk"
    folder.mkdir()
    started = _recording_dialogs(monkeypatch, [str(folder / "one.json"), str(folder / "two.json")])
    w.scenes.save_action.trigger()
    assert seen["title"] == scene.title and seen["note"] == scene.note  # the current note, shown and editable
    assert seen["width"] >= 500
    saved = json.loads((folder / "one.json").read_text())
    assert saved["note"] == "My own note." and saved["title"] == scene.title
    w.scenes.save_action.trigger()
    assert os.path.dirname(started[1]) == str(folder)  # the folder used last, not the launch folder
    assert seen["note"] == "My own note."  # the note saved last is the scene's now


def test_export_dialog_remembers_view_format_and_part(qtbot, window, make_main_window, tmp_path, monkeypatch):
    w = window
    calls = []

    def choose(dlg):
        calls.append((dlg.view.currentData(), dlg.fmt, dlg.part_key))
        if len(calls) == 1:
            dlg.view.setCurrentIndex(dlg.view.findData("next_token"))
            dlg.format.setCurrentIndex(dlg.format.findData("svg"))
            dlg.part.setCurrentIndex(dlg.part.findData("panel"))
        return QDialog.Accepted

    monkeypatch.setattr(ExportDialog, "exec", choose)
    started = _recording_dialogs(monkeypatch, [str(tmp_path / "a.svg"), ""])
    qtbot.keyClick(w.next_token.bars, Qt.Key_E, Qt.ControlModifier)  # Ctrl+E from anywhere
    assert calls and (tmp_path / "a.svg").is_file()
    w.exports.export_dialog()
    assert calls[1] == ("next_token", "svg", "panel")
    assert started[1].startswith(str(tmp_path))  # the export folder used last


def test_file_dialogs_do_not_start_in_the_launch_folder(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    started = _recording_dialogs(monkeypatch, [""])
    from explainer.ui.window_menus import open_model_dialog

    open_model_dialog(window)
    assert started and started[0] and os.path.abspath(started[0]) != str(tmp_path)


def test_lecture_scenes_have_number_keys_in_their_menu(window):
    texts = [a.text() for a in window.scenes.lecture_menu.actions() if a.text()]
    assert texts[0].startswith("&1.") and texts[8].startswith("&9.")
    assert isinstance(window.scenes.lecture_menu, QMenu)


def test_the_focus_ring_outlives_a_deleted_control(qtbot, make_main_window):
    """Closing a window deletes its controls one by one while the focus moves on: the ring lets go quietly."""
    import shiboken6
    from PySide6.QtWidgets import QLineEdit

    from explainer.ui.keyboard import FocusRing

    w = make_main_window(text="The cat")
    ring = w.findChild(FocusRing)
    control = QLineEdit(w)
    ring.target = control
    control.installEventFilter(ring)
    shiboken6.delete(control)
    ring._on_app_focus_changed(None, None)
    assert ring.target is None and ring.isHidden()


def test_closing_a_dialog_gives_the_keyboard_back_to_the_control_that_had_it(qtbot, window):
    """Ctrl+E, Esc: the editor has the keyboard again (with no window manager to hand it back, it would be
    nowhere), and the next shortcut works."""
    from PySide6.QtCore import QTimer

    w = window
    w.editor.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is w.editor)
    w.teach.show_view("bpe")
    seen = []

    def dismiss():
        d = QApplication.activeModalWidget()
        seen.append(d)
        qtbot.keyClick(d, Qt.Key_Escape)

    QTimer.singleShot(100, dismiss)
    qtbot.keyClick(w.editor, Qt.Key_E, Qt.ControlModifier)
    assert isinstance(seen[0], ExportDialog) and not seen[0].isVisible()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is w.editor, timeout=3000)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key_1, Qt.ControlModifier)
    assert w.teach.focused_key() is not None and w.view.view == "live"
