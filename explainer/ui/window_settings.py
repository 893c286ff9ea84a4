"""What the window keeps between runs (QSettings, organisation "explainer"): its geometry, the splitters once the
user has moved them, whether the explanations show under the titles, the theme, the text, and ``window.state()``
(the same state scenes and the autosave keep). Settings of an older version are read for their few keys."""

from __future__ import annotations

import json

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtGui import QTextCursor

from explainer.ui import theme as th
from explainer.ui.view_state import LIVE

DEFAULT_TEXT = "How many r's are in strawberry?"
SETTINGS_VERSION = 5  # bump when the splitter layout changes


def app_settings() -> QSettings:
    return QSettings(QSettings.IniFormat, QSettings.UserScope, "explainer", "explainer")


def saved_theme(s=None) -> th.Theme:
    """The theme of the last session (light on a first start)."""
    s = s if s is not None else app_settings()
    return th.THEMES.get(str(s.value("view/theme", "light")), th.LIGHT)


def restore_settings(window, text: str | None) -> None:
    """The settings of the last session (a first start: the defaults), then ``text`` or the last text."""
    s = app_settings()
    window.geometry_restored = False
    window.layout_auto = True
    current = int(s.value("settings/version", 0)) == SETTINGS_VERSION
    window.set_theme(saved_theme(s))
    if current:
        geom = s.value("window/geometry")
        if isinstance(geom, QByteArray):
            window.geometry_restored = window.restoreGeometry(geom)
        if str(s.value("window/user_layout", "false")).lower() == "true":
            window.restore_splitters({k: s.value(f"window/{k}") for k in window.splitters})
            window.layout_auto = window.live.auto = False
    # explanations: as last time; the first time, inline only on a large window (decided when shown)
    window.help_default_pending = not (current and s.contains("view/help"))
    window.set_help_visible(not current or str(s.value("view/help", "true")).lower() == "true")
    saved = s.value("view/state")
    try:
        state = json.loads(saved) if isinstance(saved, str) else None
    except ValueError:
        state = None
    if state is None:  # settings of an older version: its few keys
        state = {
            "theme": str(s.value("view/theme", "light")),
            "view": str(s.value("view/current", LIVE)),
            "tokens": {
                "tokenizer": str(s.value("tokens/tokenizer", "smollm2")),
                "heat": str(s.value("tokens/heat", "false")).lower() == "true",
            },
        }
    example = text is None and not s.contains("editor/text")  # a first start shows the example question
    if text is None:
        text = str(s.value("editor/text", DEFAULT_TEXT))
    window.editor.setPlainText(text)
    window.editor.moveCursor(QTextCursor.End)
    if example:  # selected, so that what a new user types replaces it (the caret stays at its end)
        window.editor.selectAll()
    window.restore(state)


def save_settings(window) -> None:
    s = app_settings()
    s.setValue("settings/version", SETTINGS_VERSION)
    s.setValue("window/geometry", window.saveGeometry())
    s.setValue("window/user_layout", "false" if window.layout_auto and window.live.auto else "true")
    for key, state in window.save_splitters().items():
        s.setValue(f"window/{key}", state)
    s.setValue("view/theme", window.theme.name)
    s.setValue("view/help", "true" if window.help_action.isChecked() else "false")
    s.setValue("view/state", json.dumps(window.state()))
    s.setValue("editor/text", window.editor.toPlainText())
    s.sync()
