"""``explainer bench``'s picture time: a real key event in the window until every visible panel has drawn.

The engine runs where the app runs it (the controller's worker thread) and the window is the app's main window
(offscreen unless a display is set; its settings and autosave go to a temporary folder). For each case the
window shows the case's text; then each keystroke is a key press/release sent to the editor with the text's next
character, and the clock stops when the window has shown the result for that text and the event loop has drawn
every widget that asked for a repaint (the window's repaint passes, followed until an event-loop pass draws nothing more).

Main-thread time per picture: the wall time the window's thread spent handling events (the key events, the
editor, the result reaching every panel, painting) between the key press and the drawn picture, without the
time it waited for the model's thread (asleep, as in the app, until that thread has a result); and that thread's
CPU time over the same spans (what a busy machine does not inflate).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def paint_counter(kind=None):
    """An event filter that counts the events of type ``kind`` (default: Paint) of what it is installed on
    (``.count``)."""
    from PySide6.QtCore import QEvent, QObject

    wanted = QEvent.Paint if kind is None else kind

    class PaintCounter(QObject):
        count = 0

        def eventFilter(self, obj, event):
            if event.type() == wanted:
                self.count += 1
            return False

    return PaintCounter()


@contextmanager
def scratch_app(prefix: str = "explainer-bench-") -> Iterator:
    """The QApplication for a timed window (offscreen unless a display is set), with the window's settings and
    autosave in a temporary folder, never the user's (removed afterwards); pyqtgraph set up as the app sets it."""
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    scratch = tempfile.mkdtemp(prefix=prefix)
    os.environ["EXPLAINER_DATA"] = scratch
    try:
        import pyqtgraph as pg
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QApplication

        QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, scratch)
        app = QApplication.instance() or QApplication([sys.argv[0]])
        pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)
        yield app
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def open_window(engine, text: str = "", size=(1366, 768), max_tokens: int | None = None):
    """The app's main window on ``engine``, shown at ``size`` with ``text``, its model in a started controller's
    thread as in the app (``max_tokens``: the analysis limit, default the app's): ``(controller, window)``."""
    from explainer.runtime.controller import Controller
    from explainer.ui.main_window import MainWindow

    controller = Controller(lambda progress: engine)
    if max_tokens is not None:
        controller.settings = dataclasses.replace(controller.settings, max_tokens=max_tokens)
    controller.start()
    window = MainWindow(controller, text=text, backend=engine.backend)
    window.resize(*size)
    window.show()
    return controller, window


def picture_times(
    engine,
    texts: dict[int, tuple[str, str]],
    keystrokes: int,
    max_tokens: int = 512,
    size=(1600, 1000),
    timeout_s: float = 120.0,
    on_window: Callable | None = None,
) -> dict[int, list[tuple[float, float, float]]]:
    """``texts``: case -> (the starting text, the characters to type); ``max_tokens``: the window's analysis
    limit for the run (the app's default is lower than the longest case); ``on_window(window)`` is called once
    the window is shown (a profiler's hook). Per case, per keystroke: (picture ms, main-thread ms, main-thread CPU ms)."""
    with scratch_app() as app:
        return _picture_times(app, engine, texts, keystrokes, max_tokens, size, timeout_s, on_window)


def _picture_times(app, engine, texts, keystrokes, max_tokens, size, timeout_s, on_window):
    from PySide6.QtCore import QEvent, Qt
    from PySide6.QtGui import QKeyEvent
    from PySide6.QtWidgets import QApplication

    controller, window = open_window(engine, "", size, max_tokens)
    window.teach.panels["compare"].warm_up().join()  # not while the keystrokes are timed
    if on_window is not None:
        on_window(window)
    # every widget's drawing is part of a pass of the window's repaint: an UpdateRequest event of the window
    passes = paint_counter(QEvent.UpdateRequest)
    window.installEventFilter(passes)
    shown: list = []
    window.resultShown.connect(shown.append)
    maps: list = []
    controller.projectionReady.connect(maps.append)  # the embedding map's axes: prepared once, when idle

    busy = [0.0, 0.0]  # wall and CPU seconds the window's thread spent in event handling

    def process() -> None:
        t, c = time.perf_counter(), time.thread_time()
        app.processEvents()
        busy[0] += time.perf_counter() - t
        busy[1] += time.thread_time() - c

    # the window's thread sleeps while the model works, as the app's does, and wakes when the model's thread has
    # a result (polling the event loop meanwhile would take CPU from the model and count it as the window's)
    answered = threading.Event()
    controller.notify_in_worker(answered.set)

    def wait(cond: Callable[[], bool]) -> None:
        end = time.perf_counter() + timeout_s
        while True:
            answered.clear()
            process()
            if cond():
                return
            if time.perf_counter() > end:
                raise RuntimeError("the window showed no picture in time")
            answered.wait(0.05)  # (a model being loaded or a map being prepared: looked at every 50 ms)

    def drawn() -> None:
        """Let the event loop draw until a pass draws nothing more."""
        for _ in range(50):
            before = passes.count
            process()
            if passes.count == before:
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
                t0, c0 = time.perf_counter(), time.thread_time()
                for kind in (QEvent.KeyPress, QEvent.KeyRelease):
                    QApplication.sendEvent(window.editor, QKeyEvent(kind, 0, Qt.NoModifier, ch))
                busy[:] = [time.perf_counter() - t0, time.thread_time() - c0]  # the editor's handling of the key
                wait(showing(text))
                drawn()
                times.append(((time.perf_counter() - t0) * 1000.0, busy[0] * 1000.0, busy[1] * 1000.0))
            out[case] = times
    finally:
        window.removeEventFilter(passes)
        controller.shutdown()
        window.close()
        app.processEvents()
    return out


def summary(times: list[tuple[float, float, float]]) -> dict:
    """``picture_ms`` / ``picture_p90_ms`` (median, 90th percentile), ``picture_main_ms`` and
    ``picture_main_cpu_ms`` (medians of the main thread's wall and CPU time per picture) of ``picture_times``."""
    pictures = sorted(t[0] for t in times)
    return {
        "picture_ms": round(statistics.median(pictures), 2),
        "picture_p90_ms": round(pictures[int(0.9 * (len(pictures) - 1))], 2),
        "picture_main_ms": round(statistics.median(t[1] for t in times), 2),
        "picture_main_cpu_ms": round(statistics.median(t[2] for t in times), 2),
    }
