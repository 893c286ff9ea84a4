"""Drive a running window from outside, for tests of the real app process (``tests/robustness/test_kill.py``).

Environment variables, read once when the window is made (by :func:`explainer.ui.autosave.attach`):

- ``EXPLAINER_TEST_TYPE=text``: type ``text`` into the editor, one key event per character every
  ``EXPLAINER_TEST_TYPE_INTERVAL_MS`` (default 15) starting shortly after the window shows, then print
  ``TYPED <n>`` on standard output.
- ``EXPLAINER_PRINT_STATE=1``: print the restored state (text, scene, settings) as one JSON line and close the
  window.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtWidgets import QApplication


def install_from_environment(window: Any, saver: Any) -> None:
    if os.environ.get("EXPLAINER_PRINT_STATE"):

        def print_state() -> None:
            sys.stdout.write(json.dumps(saver.snapshot(), ensure_ascii=True) + "\n")
            sys.stdout.flush()
            window.close()

        QTimer.singleShot(0, print_state)
    text = os.environ.get("EXPLAINER_TEST_TYPE")
    if text:
        interval = int(os.environ.get("EXPLAINER_TEST_TYPE_INTERVAL_MS", "15"))
        QTimer.singleShot(
            200, lambda: type_text(window.editor, text, interval, done=lambda: print(f"TYPED {len(text)}", flush=True))
        )


def type_text(editor, text: str, interval_ms: int = 15, done: Callable[[], None] | None = None) -> None:
    """Type ``text`` into ``editor`` as key events, one character every ``interval_ms`` (non-ASCII included:
    the event carries the character's text, as a keyboard with an input method would)."""
    from PySide6.QtGui import QKeyEvent

    chars = list(text)
    editor.moveCursor(editor.textCursor().MoveOperation.End)

    def step() -> None:
        if not chars:
            timer.stop()
            timer.deleteLater()
            if done is not None:
                done()
            return
        ch = chars.pop(0)
        key = Qt.Key_Return if ch == "\n" else Qt.Key_unknown
        for kind in (QEvent.KeyPress, QEvent.KeyRelease):
            QApplication.sendEvent(editor, QKeyEvent(kind, key, Qt.NoModifier, "\r" if ch == "\n" else ch))

    timer = QTimer(editor)
    timer.setInterval(interval_ms)
    timer.timeout.connect(step)
    timer.start()
