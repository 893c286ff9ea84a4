"""Typing in the first seconds after the window opens: the slowest keystroke → picture (a script, not a test).

Work the window starts in the background soon after it opens (the side-by-side view's tokenizers, which hold
Python's lock while they are built) must not hold up a keystroke. This opens the app's window (offscreen,
1366×768) on the bundled model, waits for the first picture, then types one character every ``--every-ms`` for
``--seconds``, timing each key press until the window shows that text and has drawn it. It prints the median and
the slowest picture, when the background work started (if it did while typing), and whether it ran once typing
paused.

    QT_QPA_PLATFORM=offscreen python benchmarks/first_seconds.py [--seconds 6] [--every-ms 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default="stored")
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--every-ms", type=float, default=200.0)
    args = ap.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # offscreen even on a desktop
    from explainer.bench_window import scratch_app

    with scratch_app("explainer-first-seconds-") as app:
        return _run(args, app)


def _run(args, app) -> int:
    from PySide6.QtCore import QEvent, Qt
    from PySide6.QtGui import QKeyEvent
    from PySide6.QtWidgets import QApplication

    from explainer.bench_window import open_window
    from explainer.core.engine import Engine
    from explainer.ui.panels import tokenizers_compare

    engine = Engine(device="cpu", backend=args.backend)
    engine.wait_for_backend()
    controller, window = open_window(engine)
    shown: list = []
    window.resultShown.connect(shown.append)

    def wait_for(text: str) -> None:
        end = time.perf_counter() + 60
        while not (shown and shown[-1].text == text and not controller.busy):
            if time.perf_counter() > end:
                raise RuntimeError("the window showed no picture in time")
            app.processEvents()
            time.sleep(0.0005)
        for _ in range(3):  # what the result asked to be drawn
            app.processEvents()

    try:
        while controller.model is None:
            app.processEvents()
            time.sleep(0.01)
        text = "The capital of France is Paris. "
        window.set_text(text)
        wait_for(text)
        start = time.perf_counter()
        source = "The quick brown fox jumps over the lazy dog and keeps running far away. " * 20
        pictures, started_at = [], None
        for ch in source:
            if time.perf_counter() - start >= args.seconds:
                break
            text += ch
            t0 = time.perf_counter()
            for kind in (QEvent.KeyPress, QEvent.KeyRelease):
                QApplication.sendEvent(window.editor, QKeyEvent(kind, 0, Qt.NoModifier, ch))
            wait_for(text)
            pictures.append((time.perf_counter() - t0) * 1000)
            if started_at is None and tokenizers_compare._warming is not None:
                started_at = time.perf_counter() - start
            while time.perf_counter() - t0 < args.every_ms / 1000:
                app.processEvents()
                time.sleep(0.002)
        end = time.perf_counter() + 5
        while tokenizers_compare._warming is None and time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.01)
        print(
            f"{len(pictures)} keystrokes in {args.seconds:g} s: picture median {statistics.median(pictures):.0f} ms, "
            f"slowest {max(pictures):.0f} ms"
        )
        print(
            "side-by-side tokenizers: "
            + (f"started {started_at:.1f} s into the typing" if started_at is not None else "not started while typing")
            + ("; built after the pause" if tokenizers_compare._warming is not None else "; not built after the pause")
        )
    finally:
        controller.shutdown()
        window.close()
        app.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main())
