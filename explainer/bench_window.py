"""``explainer bench``'s picture time: a real key event in the window until every visible panel has drawn.

The engine runs where the app runs it (the controller's worker thread) and the window is the app's main window
(offscreen unless a display is set; its settings and autosave go to a temporary folder). For each case the
window shows the case's text; then each keystroke is a key press/release sent to the editor with the text's next
character, and the clock stops when the window has shown the result for that text and the event loop has drawn
every widget that asked for a repaint (Paint events, followed until an event-loop pass draws nothing more).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable


def picture_times(
    engine,
    texts: dict[int, tuple[str, str]],
    keystrokes: int,
    max_tokens: int = 512,
    size=(1600, 1000),
    timeout_s: float = 120.0,
) -> dict[int, list[float]]:
    """``texts``: case -> (the starting text, the characters to type); ``max_tokens``: the window's analysis
    limit for the run (the app's default is lower than the longest case). Milliseconds per keystroke, per case."""
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    scratch = tempfile.mkdtemp(prefix="explainer-bench-")
    os.environ["EXPLAINER_DATA"] = scratch  # the window's autosave: never the user's
    import pyqtgraph as pg
    from PySide6.QtCore import QEvent, QObject, QSettings, Qt
    from PySide6.QtGui import QKeyEvent
    from PySide6.QtWidgets import QApplication

    from explainer.runtime.controller import Controller
    from explainer.ui.main_window import MainWindow

    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, scratch)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)

    class Paints(QObject):
        count = 0

        def eventFilter(self, obj, event):
            if event.type() == QEvent.Paint:
                Paints.count += 1
            return False

    paints = Paints()
    controller = Controller(lambda progress: engine)
    controller.settings = dataclasses.replace(controller.settings, max_tokens=max_tokens)
    controller.start()
    window = MainWindow(controller, text="", backend=engine.backend)
    window.resize(*size)
    window.show()
    app.installEventFilter(paints)
    shown: list = []
    window.resultShown.connect(shown.append)
    maps: list = []
    controller.projectionReady.connect(maps.append)  # the embedding map's axes: prepared once, when idle

    def wait(cond: Callable[[], bool]) -> None:
        end = time.perf_counter() + timeout_s
        while not cond():
            if time.perf_counter() > end:
                raise RuntimeError("the window showed no picture in time")
            app.processEvents()
            time.sleep(0.0005)

    def drawn() -> None:
        """Let the event loop draw until a pass draws nothing more."""
        for _ in range(50):
            before = Paints.count
            app.processEvents()
            if Paints.count == before:
                return

    def showing(text: str) -> Callable[[], bool]:
        return lambda: bool(shown) and shown[-1].text == text and not controller.busy

    out: dict[int, list[float]] = {}
    try:
        wait(lambda: controller.model is not None)
        window.set_text("warm up")
        wait(lambda: bool(maps) and not controller.busy)
        for case, (text, typed) in texts.items():
            window.set_text(text)
            wait(showing(text))
            drawn()
            times = []
            for ch in typed[:keystrokes]:
                text += ch
                t0 = time.perf_counter()
                for kind in (QEvent.KeyPress, QEvent.KeyRelease):
                    QApplication.sendEvent(window.editor, QKeyEvent(kind, 0, Qt.NoModifier, ch))
                wait(showing(text))
                drawn()
                times.append((time.perf_counter() - t0) * 1000.0)
            out[case] = times
    finally:
        app.removeEventFilter(paints)
        controller.shutdown()
        window.close()
        app.processEvents()
    return out


def summary(times: list[float]) -> dict:
    return {
        "picture_ms": round(statistics.median(times), 2),
        "picture_p90_ms": round(sorted(times)[int(0.9 * (len(times) - 1))], 2),
    }
