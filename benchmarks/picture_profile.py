"""Where the window's thread spends a picture, panel by panel (a script, not a test).

Types single characters at the end of a T-token text as real key events in the app's window
(``explainer.bench_window``) and splits the window thread's CPU time per picture (not inflated by a busy
machine) into:

- ``set_result``: each panel's handling of the new result (the live panels, from the window; the teaching
  panels, from the teaching area), measured by wrapping ``set_result``;
- ``paint``: the Paint events each panel's widgets received (an application whose ``notify`` times them);
- the rest: the editor, layouts, the status bar, Python's share of the queued signal.

    QT_QPA_PLATFORM=offscreen python benchmarks/picture_profile.py [--backend stored] [--tokens 128]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default="stored")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--keystrokes", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--cprofile", type=int, metavar="N", help="also print the N costliest functions in those spans")
    ap.add_argument("--sort", default="cumulative", help="their order: cumulative or tottime (time in the function)")
    args = ap.parse_args()
    import cProfile
    import pstats

    prof = cProfile.Profile() if args.cprofile else None
    depth = [0]

    def span(fn, *a):
        """Run ``fn(*a)`` under the profiler (outermost span only)."""
        depth[0] += 1
        if prof is not None and depth[0] == 1 and measuring[0]:
            prof.enable()
        try:
            return fn(*a)
        finally:
            depth[0] -= 1
            if prof is not None and depth[0] == 0 and measuring[0]:
                prof.disable()

    measuring, armed = [False], [False]

    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    from explainer import bench_window
    from explainer.bench import _tail, text_with_tokens
    from explainer.core.engine import Engine
    from explainer.ui.panels.base import Panel

    ns: dict[str, int] = defaultdict(int)
    counts: dict[str, int] = defaultdict(int)  # paint events per widget

    def owner(obj) -> str:
        while obj is not None:
            if isinstance(obj, Panel):
                return type(obj).__name__
            obj = obj.parent()
        return "window"

    class TimedApp(QApplication):
        def notify(self, receiver, event):
            if event.type() == QEvent.KeyPress and armed[0]:
                measuring[0] = True  # from the first typed character on (not the case's own first picture)
            if event.type() != QEvent.Paint or not measuring[0]:
                return super().notify(receiver, event)
            t = time.thread_time_ns()
            try:
                return span(super().notify, receiver, event)
            finally:
                ns[f"paint {owner(receiver)}"] += time.thread_time_ns() - t
                counts[f"{owner(receiver)}: {type(receiver).__name__} {receiver.objectName()}"] += 1

    app = TimedApp([sys.argv[0]])

    def wrap(panel: Panel) -> None:
        fn = panel.set_result
        name = f"set_result {type(panel).__name__}"

        def timed(result):
            if not measuring[0]:
                return fn(result)
            t = time.thread_time_ns()
            try:
                return fn(result)
            finally:
                ns[name] += time.thread_time_ns() - t

        panel.set_result = timed

    def hook(window) -> None:
        for p in window.findChildren(Panel):
            wrap(p)
        real = window._on_controller_result

        def timed(result):
            if not measuring[0]:
                return real(result)
            t = time.thread_time_ns()
            try:
                return span(real, result)
            finally:
                ns["window result slot (all live panels)"] += time.thread_time_ns() - t

        window.controller.resultReady.disconnect(real)
        window.controller.resultReady.connect(timed)

    engine = Engine(device="cpu", backend=args.backend)
    engine.wait_for_backend()
    text = text_with_tokens(engine, args.tokens)
    warm = {0: (text, _tail(text))}
    bench_window.picture_times(engine, warm, 3, max_tokens=args.tokens + args.keystrokes + 8, on_window=hook)
    ns.clear()
    armed[0] = True
    times = bench_window.picture_times(
        engine, {args.tokens: (text, _tail(text))}, args.keystrokes, args.tokens + args.keystrokes + 8, on_window=hook
    )[args.tokens]
    del app
    k = len(times)
    res = {
        "backend": engine.backend,
        "tokens": args.tokens,
        "keystrokes": k,
        **bench_window.summary(times),
        "per_picture_ms_mean": {n: round(v / k / 1e6, 3) for n, v in sorted(ns.items(), key=lambda kv: -kv[1])},
        "main_ms_mean": round(statistics.mean(t[1] for t in times), 2),
        "paints_per_picture": {n: round(v / k, 2) for n, v in sorted(counts.items(), key=lambda kv: -kv[1])},
    }
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"{res['backend']}, {res['tokens']} tokens, {k} keystrokes")
    print(
        f"picture median {res['picture_ms']} ms (p90 {res['picture_p90_ms']}); main thread median "
        f"{res['picture_main_ms']} ms wall, {res['picture_main_cpu_ms']} ms CPU; mean {res['main_ms_mean']} ms"
    )
    for name, ms in res["per_picture_ms_mean"].items():
        print(f"  {name:45s} {ms:8.3f} ms")
    print("paint events per picture")
    for name, n in res["paints_per_picture"].items():
        print(f"  {name:60s} {n:6.2f}")
    if prof is not None:
        pstats.Stats(prof).sort_stats(args.sort).print_stats(args.cprofile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
