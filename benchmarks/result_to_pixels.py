"""The window thread's own share of a picture, without the model or the keyboard (a script, not a test).

Analyses a T-token text and the next 40 one-character extensions once, then hands those results to the app's
window (offscreen, 1600×1000 like ``explainer bench``) one after the other, as the model's thread would, and
times on the window's thread (thread CPU, which a busy machine inflates less than wall time):

- ``result``: the window's result slot (every live panel taking the new result, the status bar, the layout);
- ``paint``: the event loop drawing what that changed;
- per panel, its share of ``result``.

Nothing else runs meanwhile (the model's thread is idle), so identical runs agree more closely than ``bench``'s
window thread does: use it to compare two versions of the panels, alternating runs.

    QT_QPA_PLATFORM=offscreen python benchmarks/result_to_pixels.py [--tokens 128] [--rounds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default="stored")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3, help="times through the 40 results")
    ap.add_argument("--size", default="1600x1000")
    args = ap.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # offscreen even on a desktop
    from explainer.bench_window import scratch_app

    with scratch_app("explainer-result-to-pixels-") as app:
        return _run(args, app)


def _run(args, app) -> int:
    from explainer.bench import _tail, text_with_tokens
    from explainer.core.engine import Engine
    from explainer.runtime.controller import Controller
    from explainer.ui.main_window import MainWindow

    engine = Engine(device="cpu", backend=args.backend)
    engine.wait_for_backend()
    text = text_with_tokens(engine, args.tokens)
    tail = _tail(text)
    results = [engine.analyze(text + tail[:k]) for k in range(41)]
    controller = Controller(lambda progress: engine)
    controller.settings = dataclasses.replace(controller.settings, max_tokens=args.tokens + 60)
    controller.start()
    window = MainWindow(controller, text="", backend=engine.backend)
    window.resize(*(int(v) for v in args.size.split("x")))
    window.show()
    end = time.perf_counter() + 120
    while controller.model is None and time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)
    window.teach.panels["compare"].warm_up().join()  # not while the results are timed
    for _ in range(50):
        app.processEvents()
        time.sleep(0.01)
    controller.shutdown()  # the results come from here now

    ms: dict[str, list[float]] = {}

    def timed(name: str, fn, *a) -> None:
        t = time.thread_time()
        fn(*a)
        ms.setdefault(name, []).append((time.thread_time() - t) * 1000.0)

    for name, panel in window.panels.items():
        panel.set_result = (lambda f, n: lambda r: timed(f"  {n}", f, r))(panel.set_result, name)
    for _ in range(args.rounds):
        for r in results[1:]:
            timed("result", window._on_controller_result, r)
            timed("paint", lambda: [app.processEvents() for _ in range(5)])
    window.close()
    app.processEvents()
    pictures = len(ms["result"])
    both = [a + b for a, b in zip(ms["result"], ms["paint"])]
    print(f"{args.backend}, {args.tokens} tokens, {pictures} pictures, window thread CPU per picture (median):")
    print(f"result + paint {statistics.median(both):7.2f} ms")
    for name in ["result", *sorted(k for k in ms if k.startswith("  ")), "paint"]:
        print(f"{name:14s} {statistics.median(ms[name]):7.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
