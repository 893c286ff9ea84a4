"""Measure the "why" tools in the window with the real model (a script, not a test): medians in milliseconds.

1. typing at the end of a ~64-token text, clean and with four heads knocked out: the update latency of each
   keystroke (keystroke → picture, the controller's ``last_latency_ms``); with knock-out on, every keystroke
   analyses the clean and the knocked-out model (both incremental);
2. attribution at 64 tokens: "Why?" → coloured chips, for the top token and the second one alternately;
3. the patching grid of a 10-token pair in the two-texts view: start → full grid, with the time to the first row;
and the largest main-thread stall over all of it (a 5 ms QTimer heartbeat), the window never waiting for the model.

    QT_QPA_PLATFORM=offscreen python benchmarks/why_window.py [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

TEXT = (
    "The eagle circled high above the valley, watching the river below. Every morning it followed the same path, "
    "from the old oak tree on the hill to the rocks where the fish jumped. The farmers knew the bird"
)
TYPED = " well, and the"
LONGER = " well; children waved when its shadow crossed the fields and the old men said it was older than"
HEADS = ((1, 4), (4, 0), (14, 8), (22, 3))
PAIR = ("Paul was born in Germany, so Paul speaks", "Anna was born in Spain, so Anna speaks")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    os.environ.setdefault("EXPLAINER_DATA", tempfile.mkdtemp(prefix="explainer-bench-"))  # no autosave mixed in
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from explainer.runtime.controller import Controller, engine_factory
    from explainer.ui.main_window import MainWindow

    c = Controller(engine_factory(), projection=False)
    w = MainWindow(c, text=TEXT)
    w.resize(1366, 768)
    w.show()
    c.start()
    stall = {"last": time.perf_counter(), "max": 0.0, "on": False}

    def tick():
        now = time.perf_counter()
        if stall["on"]:
            stall["max"] = max(stall["max"], now - stall["last"] - 0.005)
        stall["last"] = now

    beat = QTimer(interval=5)
    beat.timeout.connect(tick)
    beat.start()

    def wait(cond, limit=300.0):
        t0 = time.perf_counter()
        while not cond():
            app.processEvents()
            time.sleep(0.001)
            if time.perf_counter() - t0 > limit:
                raise SystemExit("timed out")

    wait(lambda: w.result is not None and w.result.text == TEXT and not c.busy)
    out = {"tokens": w.result.n_tokens}
    stall["on"] = True

    def typing(label: str) -> None:
        lat, model = [], []
        w.set_text(TEXT)
        wait(lambda: w.result.text == TEXT and not c.busy)
        for ch in TYPED:
            w.editor.insertPlainText(ch)
            text = w.editor.toPlainText()
            wait(lambda text=text: w.result.text == text and not c.busy)
            lat.append(c.last_latency_ms)
            model.append(w.result.latency_ms)
        out[f"keystroke_{label}_ms"] = round(statistics.median(lat), 1)
        out[f"keystroke_{label}_model_ms"] = round(statistics.median(model), 1)

    typing("clean")
    w.view.set_knocked_out(HEADS)
    wait(lambda: w.result.ablated and not c.busy)
    typing("knocked_out")
    w.view.set_knocked_out(())
    w.set_text(TEXT)
    wait(lambda: not w.result.ablated and w.result.text == TEXT and not c.busy)
    # attribution, at 64 tokens
    long_text = TEXT + LONGER
    w.set_text(long_text)
    wait(lambda: w.result.text == long_text and not c.busy)
    out["attribution_tokens"] = w.result.n_tokens
    times = []
    w.tokens.set_why(True)
    wait(lambda: w.attribution.attribution is not None)
    for k in range(args.repeat):
        target = int(w.result.top_ids[-1, (k + 1) % 2])
        t0 = time.perf_counter()
        w.attribution.explain(target)
        wait(lambda target=target: w.attribution.attribution.target == target and w.tokens.overlay is not None)
        times.append((time.perf_counter() - t0) * 1000)
    out["attribution_64_ms"] = round(statistics.median(times), 1)
    w.tokens.set_why(False)
    # patching
    p = w.teach.panels["two_texts"]
    p.clean_edit.setText(PAIR[0])
    p.corrupt_edit.setText(PAIR[1])
    times, first = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        p.run()
        wait(lambda: p.heatmap.rows_filled > 0)
        first.append((time.perf_counter() - t0) * 1000)
        wait(lambda: p.patching is not None)
        times.append((time.perf_counter() - t0) * 1000)
    out["patching_tokens"] = len(p.heatmap.labels)
    out["patching_ms"] = round(statistics.median(times), 1)
    out["patching_first_row_ms"] = round(statistics.median(first), 1)
    out["largest_ui_stall_ms"] = round(stall["max"] * 1000, 1)
    w.close()
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:28} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
