"""Soak test: many simulated edits through the runtime Controller while its worker is busy, pumping the Qt event
loop like the window does; then memory, threads and timers are compared with their values after a warm-up.

    python benchmarks/soak.py                 # 20,000 edits, tiny demo engine (about two minutes on 2 cores)
    python benchmarks/soak.py --real          # the real SmolLM2-135M (slower: fewer analyses per edit)
    python benchmarks/soak.py --edits 2000 --json

Edits are what typing looks like: mostly characters appended at the end, backspaces, sometimes a click
somewhere and an insert or a deleted word, a pasted sentence; short pauses between keys and longer ones between
words. Every edit is a request, as in the app, so the worker is nearly always busy and most requests wait as
"pending" and are replaced by a newer one. Exit status 1 when RSS grew by ``--max-rss-growth-mb`` (50) or more,
or the number of threads or active QTimers grew.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

WORDS = (
    "the cat sat on mat attention is all you need transformer token head layer softmax probability model "
    "strawberry lecture students residual stream embedding next predict 漢字 العربية देवनागरी 👍 🇫🇷 "
    "x² café naïve"
).split()
PASTES = [
    "The quick brown fox jumps over the lazy dog. ",
    "def f(x):\n    return x**2\n",
    "<|im_start|>user\nHello<|im_end|>\n",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467 family ",
    "Attention(Q, K, V) = softmax(QKᵀ / √d) V\n",
]


@dataclass
class Snapshot:
    rss_mb: float
    os_threads: int
    py_threads: int
    qtimers: int  # QTimer objects alive (Python wrappers)
    active_qtimers: int
    qobjects: int  # QObject wrappers alive
    results_alive: int  # AnalysisResult objects alive


@dataclass
class SoakReport:
    edits: int
    seconds: float
    results: int
    errors: int
    dropped: int
    before: Snapshot
    after: Snapshot
    peak_rss_mb: float
    after_shutdown_threads: int = -1
    notes: list = field(default_factory=list)

    @property
    def rss_growth_mb(self) -> float:
        return self.after.rss_mb - self.before.rss_mb

    def ok(self, max_rss_growth_mb: float = 50.0) -> bool:
        return (
            self.rss_growth_mb < max_rss_growth_mb
            and self.after.os_threads <= self.before.os_threads
            and self.after.py_threads <= self.before.py_threads
            and self.after.active_qtimers <= self.before.active_qtimers
            and self.after.qtimers <= self.before.qtimers
            and self.errors == 0
        )


def snapshot() -> Snapshot:
    import psutil
    import shiboken6
    from PySide6.QtCore import QObject, QTimer

    from explainer.core.backends.memory import release_free_memory
    from explainer.core.types import AnalysisResult

    gc.collect()
    release_free_memory()  # freed heap pages back to the OS: RSS then counts live memory, not allocator slack
    timers = active = qobjects = results = 0
    with warnings.catch_warnings():  # isinstance() on some lazy torch attributes warns
        warnings.simplefilter("ignore")
        objects = [o for o in gc.get_objects() if isinstance(o, (QObject, AnalysisResult))]
    for o in objects:
        if isinstance(o, QObject):
            if not shiboken6.isValid(o):
                continue
            qobjects += 1
            if isinstance(o, QTimer):
                timers += 1
                active += o.isActive()
        elif isinstance(o, AnalysisResult):
            results += 1
    proc = psutil.Process()
    return Snapshot(
        proc.memory_info().rss / 2**20, proc.num_threads(), threading.active_count(), timers, active, qobjects, results
    )


class Typist:
    """A random but realistic sequence of edits to a text."""

    def __init__(self, seed: int, max_len: int = 1500):
        self.rng = random.Random(seed)
        self.text = "How many r's are in strawberry?"
        self.max_len = max_len
        self.cursor = len(self.text)

    def edit(self) -> float:
        """Apply one edit; return the pause (seconds) the typist takes after it."""
        r, t, rng = self.rng.random(), self.text, self.rng
        if len(t) > self.max_len:  # select a paragraph and delete it
            a = rng.randrange(0, len(t) // 2)
            self.text, self.cursor = t[:a] + t[a + len(t) // 3 :], a
        elif r < 0.62:  # type a character at the cursor (mostly the end)
            word = rng.choice(WORDS)
            ch = " " if rng.random() < 0.18 else word[rng.randrange(len(word))]
            self.text, self.cursor = t[: self.cursor] + ch + t[self.cursor :], self.cursor + len(ch)
        elif r < 0.80 and self.cursor > 0:  # backspace
            self.text, self.cursor = t[: self.cursor - 1] + t[self.cursor :], self.cursor - 1
        elif r < 0.86:  # click somewhere else
            self.cursor = len(t) if rng.random() < 0.5 else rng.randrange(0, len(t) + 1)
        elif r < 0.93 and t:  # delete a word-sized range
            a = rng.randrange(0, len(t))
            self.text, self.cursor = t[:a] + t[a + rng.randint(1, 12) :], a
        elif r < 0.985:  # paste
            p = rng.choice(PASTES)
            self.text, self.cursor = t[: self.cursor] + p + t[self.cursor :], self.cursor + len(p)
        else:  # select all, type over
            self.text, self.cursor = rng.choice(WORDS), 0
            self.cursor = len(self.text)
        self.cursor = max(0, min(self.cursor, len(self.text)))
        if rng.random() < 0.05:
            return rng.uniform(0.035, 0.12)  # between words: the worker catches up
        return rng.uniform(0.0, 0.004)


def pump(app, seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    while True:
        app.processEvents()
        left = deadline - time.perf_counter()
        if left <= 0:
            return
        time.sleep(min(left, 0.002))


def run_soak(
    edits: int = 20_000,
    *,
    real: bool = False,
    seed: int = 0,
    warmup_edits: int | None = None,
    log=print,
) -> SoakReport:
    """Warm up with the first ``warmup_edits`` (default: up to 1000) of the very edits that are then measured,
    so allocator pools, caches and text lengths are already seen: what still grows afterwards is a leak."""
    from PySide6.QtWidgets import QApplication

    from explainer.runtime.controller import Controller

    app = QApplication.instance() or QApplication([sys.argv[0]])
    if real:
        from explainer.core.engine import Engine

        engine = Engine(device="cpu")
    else:
        from explainer.core.engine import demo_engine

        engine = demo_engine()
    counts = {"results": 0, "errors": 0}
    controller = Controller(lambda progress: engine)
    controller.resultReady.connect(lambda r: counts.__setitem__("results", counts["results"] + 1))
    controller.errorOccurred.connect(lambda m: counts.__setitem__("errors", counts["errors"] + 1))
    controller.start()
    deadline = time.monotonic() + 600
    while controller.model is None and time.monotonic() < deadline:
        pump(app, 0.05)
    typist = Typist(seed)
    reference = typist.text
    warmup_edits = min(edits, 1000) if warmup_edits is None else warmup_edits

    def settle() -> None:
        """Show the same reference text before both measurements (memory depends on the text's length)."""
        controller.submit(reference)
        end = time.monotonic() + 120
        while (controller.busy or controller.shown_generation < controller.generation) and time.monotonic() < end:
            pump(app, 0.02)
        pump(app, 0.1)

    for _ in range(warmup_edits):  # allocator pools, torch threads, tokenizer caches, projection: all warm
        controller.set_text(typist.text)
        pump(app, typist.edit())
    settle()
    typist = Typist(seed)  # the measured run replays the warm-up's edits first
    before = snapshot()
    log(
        f"start: RSS {before.rss_mb:.1f} MB, {before.os_threads} OS threads ({before.py_threads} Python), "
        f"{before.active_qtimers}/{before.qtimers} QTimers active, {before.qobjects} QObjects"
    )
    counts.update(results=0, errors=0)
    dropped0 = controller.dropped
    peak = before.rss_mb
    t0 = time.perf_counter()
    import psutil

    proc = psutil.Process()
    for i in range(1, edits + 1):
        controller.set_text(typist.text)
        pump(app, typist.edit())
        if i % 1000 == 0:
            rss = proc.memory_info().rss / 2**20
            peak = max(peak, rss)
            log(
                f"  {i:>6} edits  {time.perf_counter() - t0:6.1f} s  RSS {rss:7.1f} MB  results {counts['results']}"
                f"  text {len(typist.text)} chars"
            )
    settle()
    seconds = time.perf_counter() - t0
    after = snapshot()
    peak = max(peak, after.rss_mb)
    report = SoakReport(
        edits, seconds, counts["results"], counts["errors"], controller.dropped - dropped0, before, after, peak
    )
    controller.shutdown()
    controller.deleteLater()
    pump(app, 0.1)
    report.after_shutdown_threads = snapshot().os_threads
    log(
        f"end:   RSS {after.rss_mb:.1f} MB (growth {report.rss_growth_mb:+.1f} MB, peak {peak:.1f}), "
        f"{after.os_threads} OS threads ({after.py_threads} Python), {after.active_qtimers}/{after.qtimers} QTimers "
        f"active, {after.qobjects} QObjects, {after.results_alive} results alive"
    )
    log(
        f"{edits} edits in {seconds:.1f} s: {report.results} results shown, {report.dropped} stale dropped, "
        f"{report.errors} errors; {report.after_shutdown_threads} OS threads after shutdown"
    )
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--edits", type=int, default=20_000)
    ap.add_argument("--real", action="store_true", help="the real SmolLM2-135M instead of the tiny demo engine")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-rss-growth-mb", type=float, default=50.0)
    ap.add_argument("--json", action="store_true", help="print the report as JSON at the end")
    args = ap.parse_args(argv)
    report = run_soak(args.edits, real=args.real, seed=args.seed)
    ok = report.ok(args.max_rss_growth_mb)
    if args.json:
        print(json.dumps({**asdict(report), "rss_growth_mb": report.rss_growth_mb, "ok": ok}))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
