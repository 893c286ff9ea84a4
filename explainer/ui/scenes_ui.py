"""Scenes in the window: File ▸ Open scene…, Save scene…, Lecture scenes ▸, and next / previous scene.

A scene (``core.scene.Scene``) restores the text, the analysis settings (special tokens, start token), the view
to bring forward and every panel's own state (``Panel.scene_state`` / ``apply_scene_state``). Panel state is
applied at once and again when the scene's text has been analysed (a layer slider needs the model's size, a
position needs the tokens). Controls a scene does not mention go back to their defaults (``DEFAULTS``), so a
lecture does not carry "hide the first token" from one scene into the next; the attention layer and head stay
where they are unless the scene says. The selected position is ``panels["next_token"]["position"]`` (default:
none, i.e. the prediction after the end), linked to every panel.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMenu, QMessageBox

from explainer.core.errors import UserError
from explainer.core.scene import ASSET_SCENES, Scene, lecture_set, load_scene, save_scene
from explainer.ui.teach_area import view_key

log = logging.getLogger(__name__)

DEFAULTS = {
    "tokens": {"tokenizer": "smollm2", "surprisal_heat": False},
    "next_token": {"temperature": 1.0, "top_k": 0, "top_p": 1.0, "seed": None},
    "attention": {"average": False, "hide_sink": False, "tab": 0},
    "embeddings": {"path": False, "highlight": []},
}


def find_scene(name: str, scenes: list[tuple[Path, Scene]]) -> tuple[int, Path, Scene] | None:
    """A lecture scene by file stem, number, or part of the stem or title ("strawberry", "04", "sink")."""
    n = name.strip().lower()
    for match in (
        lambda p, s: p.stem.lower() == n,
        lambda p, s: p.stem.split("-", 1)[0] == n.zfill(2),
        lambda p, s: n in p.stem.lower(),
        lambda p, s: n in s.title.lower(),
    ):
        for i, (p, s) in enumerate(scenes):
            if match(p, s):
                return i, p, s
    return None


class SceneMenu(QObject):
    def __init__(self, window, teach, presenter):
        super().__init__(window)
        self.main, self.teach, self.presenter = window, teach, presenter
        self.lecture = lecture_set()
        self.index = -1  # position in the lecture set of the scene shown (-1: none)
        self.current: Scene | None = None
        self.last_dialog: QMessageBox | None = None
        self._pending: Scene | None = None  # applied again once its text has been analysed
        presenter.next_scene = lambda: self.step(1)
        presenter.previous_scene = lambda: self.step(-1)
        window.resultShown.connect(self._on_window_result_shown)

    def add_menu_actions(self, menu: QMenu, before=None) -> None:
        """Open scene…, Save scene…, Lecture scenes ▸ (inserted before ``before``)."""

        def add(action):
            menu.insertAction(before, action) if before is not None else menu.addAction(action)

        self.open_action = self.main.addAction("Open &scene…")
        self.open_action.triggered.connect(self.open_dialog)
        self.save_action = self.main.addAction("Sa&ve scene…")
        self.save_action.triggered.connect(self.save_dialog)
        add(self.open_action)
        add(self.save_action)
        self.lecture_menu = QMenu("&Lecture scenes", menu)
        for i, (_path, scene) in enumerate(self.lecture):
            a = self.lecture_menu.addAction(f"{i + 1}. {scene.title}")
            a.setToolTip(scene.note)
            a.triggered.connect(lambda _=False, i=i: self.open_lecture(i))
        self.lecture_menu.addSeparator()
        nxt = self.lecture_menu.addAction("Next scene", lambda: self.step(1))
        nxt.setShortcut("Ctrl+PgDown")
        prev = self.lecture_menu.addAction("Previous scene", lambda: self.step(-1))
        prev.setShortcut("Ctrl+PgUp")
        for a in (nxt, prev):
            a.setShortcutContext(Qt.WindowShortcut)
            self.main.addAction(a)
        if before is not None:
            menu.insertMenu(before, self.lecture_menu)
        else:
            menu.addMenu(self.lecture_menu)

    # --- the scene on screen ------------------------------------------------------------------------------------
    def capture(self, title: str | None = None, note: str | None = None) -> Scene:
        """The window as a scene."""
        w, cur = self.main, self.current
        text = w.editor.toPlainText()
        panels = {}
        for key, p in self.teach.all_panels().items():
            try:
                state = p.scene_state()
            except Exception:
                log.exception("scene_state of %s failed", key)
                continue
            if state:
                panels[key] = state
        same = cur is not None and cur.text == text
        if title is None:
            title = cur.title if same else (text.strip().splitlines() or ["Untitled scene"])[0][:60]
        if note is None:
            note = cur.note if same else ""
        s = w.controller.settings
        return Scene(
            title=title,
            text=text,
            parse_specials=s.parse_specials,
            start_token=s.start_token,
            view=self.teach.focused_key(),
            note=note,
            panels=panels,
        )

    def apply(self, scene: Scene) -> None:
        """Show ``scene``: text and settings now (one analysis), view and panel states now and again after it."""
        from explainer.ui.analysis_menu import set_text_and_settings

        w = self.main
        self.current = scene
        settings = w.controller.settings
        unchanged = (
            w.result is not None
            and w.result.text == scene.text
            and w.editor.toPlainText() == scene.text
            and (settings.parse_specials, settings.start_token) == (scene.parse_specials, scene.start_token)
        )
        set_text_and_settings(w, scene.text, parse_specials=scene.parse_specials, start_token=scene.start_token)
        self.teach.skip_cursor_word()
        if scene.view and not self.teach.show_view(scene.view):
            log.info("scene %r names an unknown view %r", scene.title, scene.view)
        self.presenter.set_focus_view(view_key(scene.view) if scene.view else None)
        self._apply_panels(scene, final=unchanged)
        self._pending = None if unchanged else scene
        self.presenter.set_caption(scene.title, scene.note)
        msg = scene.title + (f" — {scene.note}" if scene.note else "")
        w.statusBar().showMessage(msg, 20000)

    def _states(self, scene: Scene) -> dict:
        panels = scene.panels if isinstance(scene.panels, dict) else {}
        out = {k: dict(v) for k, v in DEFAULTS.items()}
        for key, state in panels.items():
            if isinstance(state, dict):
                out[key] = {**out.get(key, {}), **state}
        return out

    def _apply_panels(self, scene: Scene, final: bool) -> None:
        states, panels = self._states(scene), self.teach.all_panels()
        for key, state in states.items():
            p = panels.get(key)
            if p is None:
                continue
            try:
                p.apply_scene_state(state)
            except Exception:
                log.exception("apply_scene_state of %s failed", key)
        given = scene.panels if isinstance(scene.panels, dict) else {}
        for key in ("attention", "walkthrough"):  # linked: the scene's head everywhere
            st = given.get(key)
            if isinstance(st, dict) and _is_int(st.get("layer")) and _is_int(st.get("head")):
                self.teach.link_head(st["layer"], st["head"])
                break
        if final:
            r = self.main.result
            pos = states.get("next_token", {}).get("position", -1)
            pos = pos if _is_int(pos) and r is not None and -1 <= pos < r.n_tokens else -1
            for p in self.main.panels.values():
                p.select_position(pos)
            self.teach.sync_visible()

    def _on_window_result_shown(self, result) -> None:
        scene = self._pending
        if scene is not None and result.text == scene.text:
            self._pending = None
            self._apply_panels(scene, final=True)
            # once more after the other receivers of this result: the autosave restores the previous session's
            # layer / head / position on the first result, and a scene asked for at start-up must win
            QTimer.singleShot(0, self, lambda: self._reapply(scene))

    def _reapply(self, scene: Scene) -> None:
        r = self.main.result
        if self.current is scene and r is not None and r.text == scene.text:
            self._apply_panels(scene, final=True)

    # --- files ------------------------------------------------------------------------------------------------------
    def open_path(self, path) -> bool:
        """Open a scene file; a file that is not a scene gives a one-sentence dialog, never a crash."""
        try:
            scene = load_scene(path)
        except UserError as e:
            self._warn("Could not open the scene", str(e))
            return False
        idx = next((i for i, (p, _s) in enumerate(self.lecture) if p.resolve() == Path(path).resolve()), -1)
        self.index = idx if idx >= 0 else self.index
        self.apply(scene)
        return True

    def save_path(self, path, title: str | None = None, note: str | None = None) -> bool:
        try:
            save_scene(self.capture(title, note), path)
        except UserError as e:
            self._warn("Could not save the scene", str(e))
            return False
        self.main.statusBar().showMessage(f"Scene saved to {path}.", 6000)
        return True

    def open_lecture(self, index: int) -> None:
        if 0 <= index < len(self.lecture):
            self.index = index
            self.apply(self.lecture[index][1])

    def step(self, delta: int) -> None:
        """Next (+1) or previous (−1) lecture scene; from no scene, the first."""
        n = len(self.lecture)
        if not n:
            return
        i = 0 if self.index < 0 else self.index + delta
        if not 0 <= i < n:
            self.main.statusBar().showMessage("That was the " + ("last" if i >= n else "first") + " scene.", 4000)
            return
        self.open_lecture(i)

    def open_dialog(self) -> None:
        start = str(ASSET_SCENES) if ASSET_SCENES.is_dir() else ""
        path, _ = QFileDialog.getOpenFileName(self.main, "Open a scene", start, "Scenes (*.json);;All files (*)")
        if path:
            self.open_path(path)

    def save_dialog(self) -> None:
        suggestion = self.capture().title
        title, ok = QInputDialog.getText(self.main, "Save scene", "Title of the scene:", text=suggestion)
        if not ok:
            return
        path, _ = QFileDialog.getSaveFileName(self.main, "Save the scene", "scene.json", "Scenes (*.json)")
        if path:
            if not path.lower().endswith(".json"):
                path += ".json"
            self.save_path(path, title or suggestion)

    def _warn(self, title: str, sentence: str) -> None:
        box = QMessageBox(QMessageBox.Warning, title, sentence, QMessageBox.Ok, self.main)
        box.setAttribute(Qt.WA_DeleteOnClose)
        box.open()  # not modal-blocking: the window keeps running (and tests can read it)
        self.last_dialog = box


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
