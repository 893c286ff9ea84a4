"""Measure how the window feels with the real model (a script, not a test).

1. launch → first picture: from the start of this script to the first analysis drawn in every panel;
2. the largest main-thread stall while typing 10 characters per second at the end of a ~128-token text: a
   5 ms QTimer heartbeat records the largest gap between its ticks (a stall is the gap minus 5 ms).

    QT_QPA_PLATFORM=offscreen python benchmarks/ui_stall.py [--demo] [--chars 40] [--rate 10]
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402

TEXT = (
    "The eagle circled high above the valley, watching the river below. Every morning it followed the "
    "same path, from the old oak tree on the hill to the rocks where the fish jumped. The farmers in the "
    "village knew the bird well; children waved when its shadow crossed the fields, and the old men "
    "said it had lived there longer than any of them could remember. In winter it hunted hares in the snow; in "
    "summer it rested on the warm stones by the water. One day a dark storm came from the west, the wind "
    "bent the trees and the rain fell so hard that nobody could see the hills, and the eagle"
)
TYPED = " flew low over the water, searching for shelter among the trees near the bank."


class Heartbeat:
    def __init__(self, interval_ms: int = 5):
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.gaps: list[float] = []
        self._last = None

    def start(self):
        self.gaps.clear()
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self):
        self.timer.stop()

    def _tick(self):
        now = time.perf_counter()
        self.gaps.append((now - self._last) * 1000)
        self._last = now


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo", action="store_true", help="the tiny random model (checks the script, not the speed)")
    ap.add_argument("--chars", type=int, default=len(TYPED))
    ap.add_argument("--rate", type=float, default=10.0, help="characters per second")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--backend", default="auto", choices=("torch", "onnx", "stored", "auto"))
    args = ap.parse_args()
    from explainer.bench_window import scratch_app

    # settings and autosave in a temporary folder (removed afterwards), never the user's
    with scratch_app("explainer-ui-stall-") as app:
        return _run(args, app)


def _run(args, app) -> int:
    from PySide6.QtCore import QEvent, Qt
    from PySide6.QtGui import QKeyEvent
    from PySide6.QtWidgets import QApplication

    from explainer.runtime.controller import Controller, engine_factory
    from explainer.ui.main_window import MainWindow

    beat = Heartbeat()
    controller = Controller(engine_factory(device=args.device, backend=args.backend, demo=args.demo))
    controller.start()  # as the app does: the model loads while the window is built
    window = MainWindow(controller, text=TEXT)
    panel_ms: dict[str, list[float]] = {name: [] for name in window.panels}

    def timed(name, method):
        def wrapper(result):
            t = time.perf_counter()
            method(result)
            panel_ms[name].append((time.perf_counter() - t) * 1000)

        return wrapper

    for name, panel in window.panels.items():
        panel.set_result = timed(name, panel.set_result)  # the window looks the method up at each call
    window.resize(1600, 1000)
    window.show()
    t_shown = time.perf_counter()
    beat.start()
    marks: dict[str, float] = {}
    controller.modelLoaded.connect(lambda _info: marks.setdefault("model loaded", time.perf_counter()))
    controller.projectionReady.connect(lambda _p: marks.setdefault("embedding map ready", time.perf_counter()))
    shown: list[tuple[float, object]] = []
    window.resultShown.connect(lambda r: shown.append((time.perf_counter(), r)))

    def wait_until(cond, timeout_s: float) -> bool:
        end = time.perf_counter() + timeout_s
        while not cond() and time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.001)
        return cond()

    if not wait_until(lambda: bool(shown), 600):
        print("no picture within 600 s", file=sys.stderr)
        controller.shutdown()
        return 1
    t_first = shown[0][0]
    load_gaps = list(beat.gaps)
    first = shown[0][1]
    print(f"model: {first.model.name} on {first.device} ({first.backend}); text: {first.n_tokens} tokens")
    print(f"launch → window shown: {1000 * (t_shown - T0):.0f} ms")
    if "model loaded" in marks:
        print(f"launch → model loaded (worker thread): {1000 * (marks['model loaded'] - T0):.0f} ms")
    print(
        f"launch → first picture: {1000 * (t_first - T0):.0f} ms "
        f"(largest main-thread gap while loading: {max(load_gaps, default=0):.0f} ms)"
    )

    # typing: one character every 1/rate s, each a real key event; the heartbeat keeps running
    typed = (TYPED * (1 + args.chars // len(TYPED)))[: args.chars]
    n_before = len(shown)
    beat.start()
    t_start = time.perf_counter()
    for i, ch in enumerate(typed):
        target = t_start + i / args.rate
        wait_until(lambda target=target: time.perf_counter() >= target, 10)
        for kind in (QEvent.KeyPress, QEvent.KeyRelease):
            QApplication.sendEvent(window.editor, QKeyEvent(kind, 0, Qt.NoModifier, ch))
    final = window.editor.toPlainText()
    if "embedding map ready" in marks:
        print(f"launch → embedding map ready: {1000 * (marks['embedding map ready'] - T0):.0f} ms")
    wait_until(lambda: window.result is not None and window.result.text == final and not controller.busy, 120)
    t_done = time.perf_counter()
    beat.stop()
    gaps = beat.gaps
    results = [r for _, r in shown[n_before:]]
    model_ms = [r.latency_ms for r in results]
    print(
        f"typing {len(typed)} chars at {args.rate:g}/s into a {first.n_tokens}-token text "
        f"(→ {window.result.n_tokens} tokens):"
    )
    print(
        f"  largest main-thread gap: {max(gaps):.1f} ms (heartbeat 5 ms; p99 {statistics.quantiles(gaps, n=100)[98]:.1f} ms, "
        f"median {statistics.median(gaps):.1f} ms, {sum(g > 50 for g in gaps)} gaps > 50 ms)"
    )
    print(
        f"  pictures shown: {len(results)} for {controller.generation - first.generation} requests "
        f"({controller.dropped} stale results dropped)"
    )
    if model_ms:
        print(f"  model time per update: median {statistics.median(model_ms):.0f} ms, max {max(model_ms):.0f} ms")
    per_panel = ", ".join(f"{n} {statistics.median(v[1:] or v):.0f}/{max(v):.0f}" for n, v in panel_ms.items() if v)
    print(f"  main-thread time per picture, median/max ms: {per_panel}")
    print(f"  last keystroke → final picture: {1000 * (t_done - (t_start + (len(typed) - 1) / args.rate)):.0f} ms")
    controller.shutdown()
    window.close()
    app.processEvents()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
