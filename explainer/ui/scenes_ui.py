"""Scenes in the window: File ▸ Open scene… (Ctrl+Shift+O), Save scene… (Ctrl+Shift+S: a dialog with the title and
the note, both prefilled and editable, then the file), Lecture scenes ▸ (Alt+1…9), next / previous scene.

A scene (``core.scene.Scene``) is the text, the analysis settings (special tokens, start token), a title and a
note, and the window's state (``MainWindow.state``, see ``ui.window_state``): the view to bring forward, which in
presenter mode is the hero, and every panel's own controls with the view state's fields in their places. Opening
one sets the text and settings (one analysis) and ``MainWindow.restore(state, scene=True)``: controls a scene does
not mention go back to their defaults (``window_state.SCENE_DEFAULTS``), so a lecture does not carry "hide the
first token" from one scene into the next; the attention layer and head stay where they are unless the scene
says. The selected position is ``panels["next_token"]["position"]`` (default: none, i.e. the prediction after
the end).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
)

from explainer.core.errors import UserError
from explainer.core.scene import ASSET_SCENES, Scene, lecture_set, load_scene, save_scene
from explainer.ui import file_dialogs, window_state
from explainer.ui.keyboard import focus_kept
from explainer.ui.view_state import heads_of

log = logging.getLogger(__name__)


def find_scene(name: str, scenes: list[tuple[Path, Scene]]) -> tuple[int, Path, Scene] | None:
    """A lecture scene by file stem, number, or part of the stem or title ("strawberry", "04", "sink"); a number
    names a scene only by its number (0 is none), and a blank name none."""
    n = name.strip().lower()
    if not n:
        return None
    if n.isdecimal():
        for i, (p, s) in enumerate(scenes):
            lead = p.stem.split("-", 1)[0]
            if lead.isdecimal() and int(lead) == int(n):
                return i, p, s
        return None
    for match in (
        lambda p, s: p.stem.lower() == n,
        lambda p, s: n in p.stem.lower(),
        lambda p, s: n in s.title.lower(),
    ):
        for i, (p, s) in enumerate(scenes):
            if match(p, s):
                return i, p, s
    return None


def file_name(title: str) -> str:
    """A file name from a scene's title ("Why can't it count the r's?" → "why-can-t-it-count-the-r-s")."""
    name = re.sub(r"[^\w]+", "-", title.lower(), flags=re.UNICODE).strip("-")
    return name[:60].rstrip("-") or "scene"


class SceneDialog(QDialog):
    """Save scene: its title and its note (what the presenter's caption shows under it), both prefilled with the
    scene on screen and editable; the file is asked for next."""

    def __init__(self, title: str, note: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Save scene")
        form = QFormLayout(self)
        self.title = QLineEdit(title)
        self.title.setPlaceholderText("What the scene shows, in a few words")
        self.note = QPlainTextEdit(note)
        self.note.setTabChangesFocus(True)
        self.note.setPlaceholderText("The point of the scene, in a sentence or two (shown under the title)")
        lines = self.note.fontMetrics().lineSpacing()
        self.note.setMinimumHeight(int(5 * lines + 12))
        form.addRow("&Title:", self.title)
        form.addRow("&Note:", self.note)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.button(QDialogButtonBox.Ok).setText("Save…")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.setMinimumWidth(int(40 * self.fontMetrics().averageCharWidth() + 120))
        self.resize(max(self.minimumWidth(), 620), self.sizeHint().height())
        self.title.selectAll()

    def title_text(self) -> str:
        return self.title.text().strip()

    def note_text(self) -> str:
        return self.note.toPlainText().strip()


class SceneMenu(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.main = window
        self.lecture = lecture_set()
        self.index = -1  # position in the lecture set of the scene shown (-1: none)
        self.current: Scene | None = None
        self.last_dialog: QMessageBox | None = None
        self.scene_dialog: SceneDialog | None = None
        window.presenter.next_scene = lambda: self.step(1)
        window.presenter.previous_scene = lambda: self.step(-1)
        self._reveal_end_of: str | None = None  # a scene's text whose end the editor shows once it is analysed
        window.resultShown.connect(self._on_window_result_shown)

    def add_menu_actions(self, menu: QMenu, before=None) -> None:
        """Open scene…, Save scene…, Lecture scenes ▸ (inserted before ``before``)."""

        def add(action):
            menu.insertAction(before, action) if before is not None else menu.addAction(action)

        self.open_action = self.main.addAction("Open s&cene…")
        self.open_action.setShortcut(QKeySequence("Ctrl+Shift+O"))
        self.open_action.triggered.connect(self.open_dialog)
        self.save_action = self.main.addAction("&Save scene…")
        self.save_action.setShortcut(QKeySequence("Ctrl+Shift+S"))
        self.save_action.triggered.connect(self.save_dialog)
        for a in (self.open_action, self.save_action):
            a.setShortcutContext(Qt.WindowShortcut)
        add(self.open_action)
        add(self.save_action)
        self.lecture_menu = QMenu("&Lecture scenes", menu)
        for i, (_path, scene) in enumerate(self.lecture):
            a = self.lecture_menu.addAction(f"&{i + 1}. {scene.title}" if i < 9 else f"{i + 1}. {scene.title}")
            a.setToolTip(scene.note)
            a.triggered.connect(lambda _=False, i=i: self.open_lecture(i))
        self.lecture_menu.addSeparator()
        nxt = self.lecture_menu.addAction("&Next scene", lambda: self.step(1))
        nxt.setShortcut("Ctrl+PgDown")
        prev = self.lecture_menu.addAction("&Previous scene", lambda: self.step(-1))
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
        same = cur is not None and cur.text == text
        if title is None:
            title = cur.title if same else (text.strip().splitlines() or ["Untitled scene"])[0][:60]
        if note is None:
            note = cur.note if same else ""
        s = w.controller.settings
        return window_state.to_scene(
            w.state(), title=title, text=text, note=note, parse_specials=s.parse_specials, start_token=s.start_token
        )

    def apply(self, scene: Scene) -> None:
        """Show ``scene``: text and settings (one analysis), then its state (again once the text is analysed)."""
        from explainer.ui.analysis_menu import set_text_and_settings

        w = self.main
        self.current = scene
        state = window_state.from_scene(scene)
        fields = window_state.view_fields(state)
        heads = heads_of(fields)  # knocked out in the same request as the text
        set_text_and_settings(
            w,
            scene.text,
            parse_specials=scene.parse_specials,
            start_token=scene.start_token,
            ablated=None if heads is None else tuple(sorted(w.knockout.fitting(heads))),
        )
        w.teach.skip_cursor_word()
        self._reveal_end_of = scene.text  # the point of a scene is at its end (where the prediction is)
        w.editor.ensureCursorVisible()
        if scene.view and "view" not in fields:
            log.info("scene %r names an unknown view %r", scene.title, scene.view)
        w.restore(state, scene=True)
        w.presenter.set_caption(scene.title, scene.note)
        msg = scene.title + (f" — {scene.note}" if scene.note else "")
        w.statusBar().showMessage(msg, 20000)

    def _on_window_result_shown(self, result) -> None:
        """The editor has its size by now (a scene opened at start-up came before the window had one): a long
        scene text shows its end, with the caret, unless the user has moved the caret since."""
        if self._reveal_end_of is None or result.text != self._reveal_end_of:
            return
        self._reveal_end_of = None
        if self.main.editor.textCursor().atEnd():
            self.main.editor.ensureCursorVisible()

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
        fallback = ASSET_SCENES if ASSET_SCENES.is_dir() else None
        path = file_dialogs.open_file(
            self.main, "scene", "Open a scene", "Scenes (*.json);;All files (*)", fallback=fallback
        )
        if path:
            self.open_path(path)

    def save_dialog(self) -> None:
        """The title and note (the current scene's, editable), then the file."""
        scene = self.capture()
        self.scene_dialog = dlg = SceneDialog(scene.title, scene.note, self.main)
        with focus_kept(self.main):
            accepted = dlg.exec() == QDialog.Accepted
        if not accepted:
            return
        title, note = dlg.title_text() or scene.title, dlg.note_text()
        path, _ = file_dialogs.save_file(
            self.main, "scene", "Save the scene", file_name(title) + ".json", "Scenes (*.json)"
        )
        if path:
            if not path.lower().endswith(".json"):
                path += ".json"
            if self.save_path(path, title, note):
                self.current = self.capture(title, note)  # the note is the scene's now, for the next save

    def _warn(self, title: str, sentence: str) -> None:
        box = QMessageBox(QMessageBox.Warning, title, sentence, QMessageBox.Ok, self.main)
        box.setAttribute(Qt.WA_DeleteOnClose)
        box.open()  # not modal-blocking: the window keeps running (and tests can read it)
        self.last_dialog = box
