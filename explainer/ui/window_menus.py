"""The window's menus. File: open model (a file, a folder, recent and local models), scenes, export, screenshot,
quit. Edit: undo, redo, sample the next token, unpin. View: theme, the explanations under the titles or as
popovers, Focus (keys 1–4, Esc), reset layout, the views (Ctrl+1…7), presenter mode and zoom, the analysis settings.
Within a menu no two entries share an underlined letter (Alt+letter)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence

from explainer.ui import file_dialogs, models_menu
from explainer.ui.analysis_menu import AnalysisMenu
from explainer.ui.keys import key_list
from explainer.ui.view_state import LIVE_PANELS
from explainer.ui.window_settings import app_settings


def build_menus(window) -> None:
    """File, View and their parts (scenes, export, focus, views, presenter mode, analysis settings)."""
    m = window.file_menu = window.menuBar().addMenu("&File")
    act = m.addAction("&Open model…", lambda: open_model_dialog(window))
    act.setShortcut(QKeySequence.Open)
    for part in (window.scenes, window.exports):
        m.addSeparator()
        part.add_menu_actions(m)
    m.addAction("Save screens&hot…", lambda: save_screenshot_dialog(window))
    m.addSeparator()
    act = m.addAction("&Quit", window.close)
    act.setShortcuts(key_list(QKeySequence.Quit, "Ctrl+Q"))  # the standard key is empty on some platforms

    e = window.edit_menu = window.menuBar().addMenu("&Edit")
    window.flow.add_menu_actions(e)

    v = window.view_menu = window.menuBar().addMenu("&View")
    group = QActionGroup(window)
    window.theme_actions: dict[str, QAction] = {}
    for name, label in (("light", "&Light theme"), ("dark", "&Dark theme")):
        a = v.addAction(label)
        a.setCheckable(True)
        a.setData(name)
        group.addAction(a)
        window.theme_actions[name] = a
    group.triggered.connect(window.on_theme_action)
    v.addSeparator()
    window.help_action = v.addAction("Show “&What am I seeing?” under the titles")
    window.help_action.setCheckable(True)
    window.help_action.setChecked(True)
    window.help_action.setToolTip("Off: the explanations take no room and open from their buttons")
    window.help_action.toggled.connect(window.set_help_visible)
    _build_focus_menu(window, v.addMenu("&Focus"))
    v.addAction("&Reset layout", window.reset_layout)
    v.addSeparator()
    window.teach.add_menu_actions(v)
    v.addSeparator()
    window.presenter.add_menu_actions(v)
    v.addSeparator()
    window.analysis = AnalysisMenu(window, v)
    models_menu.install(window, app_settings())  # File: model folder, recent models, models on this computer
    _keys_without_menu_bar(window)


def _keys_without_menu_bar(window) -> None:
    """Every menu entry's keys also on the window: a menu's keys work only while its menu bar is shown, and
    presenter mode hides it (Ctrl+Q must still quit)."""
    on_window = set(window.actions())
    for a in menu_entries(window):
        if not a.shortcut().isEmpty() and a not in on_window:
            window.addAction(a)


def menu_entries(window) -> list[QAction]:
    """The entries of the window's menus, those of their submenus included (not the submenus themselves)."""
    entries, menus = [], [a.menu() for a in window.menuBar().actions() if a.menu() is not None]
    while menus:
        for a in menus.pop().actions():
            if a.menu() is not None:
                menus.append(a.menu())
            else:
                entries.append(a)
    return entries


def _build_focus_menu(window, menu) -> None:
    """Keys 1–4: that live panel alone (in presenter mode: the hero); Esc: all of them again."""
    window.focus_actions: dict[str, QAction] = {}
    group = QActionGroup(window)
    for i, key in enumerate(LIVE_PANELS):
        a = QAction(window.panels[key].title, window, checkable=True)
        a.setShortcut(QKeySequence(str(i + 1)))  # a text field takes the digit itself
        a.setShortcutContext(Qt.WindowShortcut)
        a.triggered.connect(lambda _=False, key=key: window.toggle_focus(key))
        group.addAction(a)
        menu.addAction(a)
        window.addAction(a)
        window.focus_actions[key] = a
    group.setExclusionPolicy(QActionGroup.ExclusionPolicy.ExclusiveOptional)
    menu.addSeparator()
    window.unfocus_action = QAction("All panels", window)
    window.unfocus_action.setShortcut(QKeySequence(Qt.Key_Escape))
    window.unfocus_action.setShortcutContext(Qt.WindowShortcut)
    window.unfocus_action.triggered.connect(window.escape)
    menu.addAction(window.unfocus_action)
    window.addAction(window.unfocus_action)


def open_model_dialog(window) -> None:
    path = file_dialogs.open_file(
        window,
        "model",
        "Open a model: a GGUF file, or the config.json of a model folder",
        "Models (*.gguf config.json);;GGUF models (*.gguf);;Model folders (config.json);;All files (*)",
    )
    if path:
        window.open_model(path)


def save_screenshot_dialog(window) -> None:
    path, _ = file_dialogs.save_file(window, "screenshot", "Save a screenshot", "explainer.png", "PNG images (*.png)")
    if path:
        if not path.lower().endswith(".png"):
            path += ".png"
        if window.grab().save(path, "PNG"):
            window.statusBar().showMessage(f"Screenshot saved to {path}.", 6000)
        else:
            window.statusBar().showMessage(f"Could not write the screenshot to {path}.", 8000)
