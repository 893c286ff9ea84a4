"""Where a keystroke's time goes, stage by stage (a script, not a test).

Types single characters at the end of a T-token text through ``Engine.analyze`` (as the app's worker does),
and times each stage by wrapping the functions that do it:

- tokenize: ``Engine.tokens_for`` (the model's tokenizer on the whole text);
- cache lookup: finding the first changed token and the incremental bookkeeping (``_update`` minus the rest);
- forward: the backend call; ``ort run`` is ONNX Runtime's ``run_with_iobinding`` inside it, the remainder is
  binding and the host arrays;
- unembedding + statistics: ``row_stats`` (logits over the vocabulary, log-sum-exp, entropy, top-k);
- attention rows: merging the attention row blocks (``Attention(...).compacted()``);
- engine bookkeeping: the rest of ``_compute`` (copying the unchanged rows into the new arrays, the one dot
  product for a changed next token);
- result: building the ``AnalysisResult`` (``analyze`` minus everything above);
- signal: a result emitted by the model's worker thread until the controller's slot runs on the UI thread.

    python benchmarks/keystroke_profile.py [--backend stored] [--tokens 128] [--keystrokes 60] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from contextlib import contextmanager


class Stages:
    def __init__(self):
        self.ns: dict[str, int] = defaultdict(int)

    def wrap(self, owner, attr: str, stage: str) -> None:
        fn = getattr(owner, attr)

        def timed(*a, **k):
            t = time.perf_counter_ns()
            try:
                return fn(*a, **k)
            finally:
                self.ns[stage] += time.perf_counter_ns() - t

        setattr(owner, attr, timed)

    @contextmanager
    def stage(self, name: str):
        t = time.perf_counter_ns()
        yield
        self.ns[name] += time.perf_counter_ns() - t


def profile(engine, n_tokens: int, keystrokes: int) -> dict:
    import explainer.core.engine as eng_mod
    from explainer.bench import CORPUS, text_with_tokens

    st = Stages()
    be = engine._backends.active
    st.wrap(engine, "tokens_for", "tokenize")
    st.wrap(engine, "_update", "_update")
    st.wrap(engine, "_compute", "_compute")
    st.wrap(be, "forward", "forward")
    session = getattr(be, "session", None)
    if session is not None:
        st.wrap(session, "run_with_iobinding", "ort run")
    if getattr(be, "row_stats", None) is not None:
        st.wrap(be, "row_stats", "unembedding + statistics")
    else:
        import explainer.core.backends.stats as stats

        owner = eng_mod if hasattr(eng_mod, "row_stats") else stats  # (imported by name, or used from stats)
        st.wrap(owner, "row_stats", "unembedding + statistics")
    real_attention = eng_mod.Attention

    class TimedAttention(real_attention):
        def compacted(self, *a, **k):
            with st.stage("attention rows"):
                return super().compacted(*a, **k)

    eng_mod.Attention = TimedAttention
    text = text_with_tokens(engine, n_tokens)
    tail = CORPUS[len(text) % len(CORPUS) :] * 2
    limit = n_tokens + keystrokes + 16  # typed characters are never cut off
    engine.reset()
    engine.analyze(text, max_tokens=limit)
    for ch in tail[:5]:  # warm-up
        engine.analyze(text + ch, max_tokens=limit)
    engine.reset()
    engine.analyze(text, max_tokens=limit)
    st.ns.clear()
    totals, cpu, typed = [], [], text
    for ch in tail[:keystrokes]:
        typed += ch
        t, c = time.perf_counter_ns(), time.process_time_ns()
        engine.analyze(typed, max_tokens=limit)
        totals.append(time.perf_counter_ns() - t)
        cpu.append(time.process_time_ns() - c)
    eng_mod.Attention = real_attention
    ns = dict(st.ns)
    k = len(totals)
    out = {
        "tokenize": ns.get("tokenize", 0),
        "cache lookup": ns.get("_update", 0) - ns.get("_compute", 0),
        "forward: ort run": ns.get("ort run", 0),
        "forward: binding, arrays": ns.get("forward", 0) - ns.get("ort run", 0),
        "unembedding + statistics": ns.get("unembedding + statistics", 0),
        "attention rows": ns.get("attention rows", 0),
    }
    out["engine bookkeeping"] = ns.get("_compute", 0) - sum(
        ns.get(s, 0) for s in ("forward", "unembedding + statistics", "attention rows")
    )
    out["result"] = sum(totals) - ns.get("tokenize", 0) - ns.get("_update", 0)
    per_key = {name: round(v / k / 1e6, 3) for name, v in out.items()}
    return {
        "backend": engine.backend,
        "tokens": n_tokens,
        "keystrokes": k,
        "keystroke_ms_median": round(statistics.median(totals) / 1e6, 2),
        "keystroke_ms_mean": round(sum(totals) / k / 1e6, 2),
        "keystroke_cpu_ms_median": round(statistics.median(cpu) / 1e6, 2),  # all threads of this process
        "stages_ms_mean": per_key,
        "signal_ms_median": round(signal_latency_ms(), 3),
    }


def signal_latency_ms(repeats: int = 50) -> float:
    """A queued signal from a worker thread to a slot on the UI thread, carrying one object (as resultReady)."""
    from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

    app = QCoreApplication.instance() or QCoreApplication([sys.argv[0]])

    class Sender(QObject):
        ready = Signal(object)

        @Slot()
        def send(self):
            self.ready.emit(time.perf_counter_ns())

    class Receiver(QObject):
        def __init__(self):
            super().__init__()
            self.lat: list[int] = []

        @Slot(object)
        def got(self, t0):
            self.lat.append(time.perf_counter_ns() - t0)

    thread, sender, receiver = QThread(), Sender(), Receiver()
    sender.moveToThread(thread)
    sender.ready.connect(receiver.got)
    thread.start()
    for _ in range(repeats):
        n = len(receiver.lat)
        QTimerSingle = __import__("PySide6.QtCore", fromlist=["QMetaObject"]).QMetaObject
        QTimerSingle.invokeMethod(sender, "send")
        while len(receiver.lat) == n:
            app.processEvents()
    thread.quit()
    thread.wait()
    return statistics.median(receiver.lat) / 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default="stored")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--keystrokes", type=int, default=60)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from explainer.core.engine import Engine

    engine = Engine(device="cpu", backend=args.backend)
    engine.wait_for_backend()
    res = profile(engine, args.tokens, args.keystrokes)
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"{res['backend']}, {res['tokens']} tokens, {res['keystrokes']} keystrokes")
    print(
        f"keystroke: median {res['keystroke_ms_median']} ms, mean {res['keystroke_ms_mean']} ms, "
        f"CPU time (all threads) median {res['keystroke_cpu_ms_median']} ms"
    )
    for name, ms in res["stages_ms_mean"].items():
        print(f"  {name:28s} {ms:8.3f} ms")
    print(f"  {'signal (worker -> UI thread)':28s} {res['signal_ms_median']:8.3f} ms (median)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
