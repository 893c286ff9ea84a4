"""``explainer bench``: how fast the engine is, the way the app uses it.

For T in (8, 32, 128, 512, 1024) tokens (the start token included):

- ``full_ms``: ``engine.reset()`` then ``engine.analyze(text)`` — everything recomputed (median of a few): a
  pasted text;
- ``keystroke_ms`` (and ``keystroke_p90_ms``): the median over >= 10 single-character appends to the T-token
  text, each an incremental ``engine.analyze(new_text)`` exactly as the app calls it (tokenization, forward,
  next-token statistics and the whole result object included). The characters are the text's own
  continuation, so some keystrokes extend the last token and some start a new one;
- ``picture_ms`` / ``picture_p90_ms``: the same keystrokes as real key events in the app's window (offscreen),
  until every visible panel has drawn the new text (``bench_window``); ``picture_main_ms`` /
  ``picture_main_cpu_ms``: the window thread's wall and CPU time per picture (median; the model's thread not
  counted); ``--no-picture`` leaves them out;
- with ``--compare-hf``: ``hf_ms``, one plain Hugging Face transformers forward (eager attention,
  ``output_attentions=True``) on the typed text's ids — what a keystroke costs without an incremental engine —
  and ``hf_cached_ms``, HF's own KV-cached one-token step for the typed character (with attentions).

``cpus`` and ``cpu``: the cores the process may use and the processor's name with its widest vector instructions
(the same kernels differ several times in speed between CPUs). ``peak_rss_mb`` is the process's peak resident
memory before the HF model (if any) is loaded; ``--memory`` adds ``rss_1024_mb`` and ``peak_rss_1024_mb``: the RSS
(psutil) of a fresh process after it analysed a 1024-token text and typed into it, and that process's peak (model
load included). MB are MiB.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

from explainer.core.devices import cpu_label

CASES = (8, 32, 128, 512, 1024)
TARGETS = (
    "targets (2 CPU cores): keystroke p50 <= 13 ms at 128 (>= 15x a naive HF forward, >= 3x HF's cached step); "
    "picture <= 40 ms at 128, <= 60 ms at 512; main thread per picture <= 8 ms at 128; a pasted 128-token text (full) <= 150 ms; "
    "peak RSS at 1024 tokens <= 800 MB"
)
_PARAGRAPH = (
    "The river bank was quiet in the early morning, and the old ferryman counted the boats that came down "
    "from the hills. Some carried grain, some carried wool, and one carried a piano that nobody could play. "
    "He wrote each name in a small blue notebook: the Heron, the Lantern, the Stubborn Goat. In the evening "
    "he read the list aloud to his cat, who listened with the patience of a judge and then fell asleep. "
)
CORPUS = "".join(_PARAGRAPH.replace("the", w, i % 3) for i, w in enumerate(["the", "a", "that"] * 12))


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (current RSS where the platform keeps no peak)."""
    try:  # Linux: VmHWM belongs to this program image (ru_maxrss also counts the parent's RSS at fork time)
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024
    except ImportError:  # Windows
        import psutil

        info = psutil.Process().memory_info()
        return getattr(info, "peak_wset", info.rss) / (1 << 20)


def text_with_tokens(engine, n_tokens: int, corpus: str = CORPUS) -> str:
    """A prefix of ``corpus`` that the engine analyses as exactly ``n_tokens`` tokens (start token included)
    where the tokenizer allows it, else the nearest shorter one."""
    while len(engine.tokenizer.tokenize(corpus).tokens) < n_tokens:
        corpus += corpus
    toks = engine.tokenizer.tokenize(corpus).tokens
    k = max(1, n_tokens - 1)
    while k > 1:
        text = corpus[: toks[k - 1].end]
        if len(engine.tokenizer.tokenize(text).tokens) + 1 <= n_tokens:
            return text
        k -= 1
    return corpus[: toks[0].end]


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def kernel_floor(engine, repeats: int = 15) -> dict | None:
    """Medians of one token's four-bit kernels alone (``Engine.kernel_steps``), per graph and in all, in ms; None
    for a backend without them."""
    steps = engine.kernel_steps()
    if steps is None:
        return None
    out: dict = {}
    for name, (step, kernels) in steps.items():
        _median_ms(step, 3)  # warm-up
        out[name], out[f"{name}_kernels"] = round(_median_ms(step, repeats), 2), kernels
    out["total"] = round(sum(out[name] for name in steps), 2)
    return out


def bench_case(engine, n_tokens: int, keystrokes: int = 12, full_repeats: int = 3) -> dict:
    text = text_with_tokens(engine, n_tokens)
    tail = _tail(text)
    limit = n_tokens + keystrokes + 8  # the typed characters are never cut off

    def full():
        engine.reset()
        return engine.analyze(text, max_tokens=limit)

    actual = full().n_tokens
    full_ms = _median_ms(full, full_repeats)
    engine.reset()
    engine.analyze(text, max_tokens=limit)  # the state a user has before typing
    times, typed = [], text
    for ch in tail[:keystrokes]:
        typed += ch
        t0 = time.perf_counter()
        engine.analyze(typed, max_tokens=limit)
        times.append((time.perf_counter() - t0) * 1000.0)
    case = {
        "tokens": actual,
        "full_ms": round(full_ms, 2),
        "keystroke_ms": round(statistics.median(times), 2),
        "keystroke_p90_ms": round(sorted(times)[int(0.9 * (len(times) - 1))], 2),
    }
    return case


def run_bench(
    engine,
    cases: Sequence[int] = CASES,
    keystrokes: int = 12,
    full_repeats: int = 3,
    compare_hf: bool = False,
    progress: Callable[[str], None] | None = None,
    picture: bool = False,
) -> dict:
    """Time ``engine`` on every case; returns the JSON object of ``explainer bench --json``. ``picture``:
    also time keystroke -> picture in the app's window (``bench_window``; needs PySide6)."""
    say = progress or (lambda msg: None)
    engine.wait_for_backend()
    engine.analyze("warm up")
    out = {
        "device": engine.device,
        "backend": engine.backend,
        "backend_label": engine.backend_label,
        "notice": engine.notice,
        "model": engine.info.name,
        "load_s": round(engine.load_seconds, 4),
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": cpu_label(),
        "peak_rss_mb": 0.0,
        "cases": [],
    }
    for n in cases:
        say(f"{n} tokens")
        out["cases"].append(bench_case(engine, n, keystrokes, full_repeats))
    if picture:
        say("keystroke to picture in the window")
        try:
            from explainer import bench_window

            texts = {n: (text_with_tokens(engine, n), _tail(text_with_tokens(engine, n))) for n in cases}
            times = bench_window.picture_times(engine, texts, keystrokes, max_tokens=max(cases) + keystrokes + 8)
            for n, case in zip(cases, out["cases"]):
                case.update(bench_window.summary(times[n]))
        except ImportError as e:
            out["picture"] = f"not measured ({e})"
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    say("the four-bit kernels alone")
    floor = kernel_floor(engine)  # (after the peak: it loads a copy of the weights for a moment)
    if floor is not None:
        out["kernel_floor_ms"] = floor
    if compare_hf:
        from explainer.bench_hf import hf_cached_ms, hf_ms, load_hf

        say("loading the Hugging Face model")
        t0 = time.perf_counter()
        hf = load_hf(engine)
        out["hf_load_s"] = round(time.perf_counter() - t0, 2)
        for n, case in zip(cases, out["cases"]):
            say(f"{n} tokens with Hugging Face")
            ids = engine.analyze(_typed(engine, n), incremental=False, max_tokens=n + 8).ids.tolist()
            case["hf_ms"] = hf_ms(hf, ids, full_repeats)
            case["hf_cached_ms"] = hf_cached_ms(hf, ids)
            ks = max(case["keystroke_ms"], 1e-9)
            case["keystroke_speedup_vs_hf"] = round(case["hf_ms"] / ks, 1)
            case["keystroke_speedup_vs_hf_cached"] = round(case["hf_cached_ms"] / ks, 1)
    return out


def _tail(text: str) -> str:
    """The characters typed after ``text``: the corpus's own continuation."""
    return (CORPUS[len(text) % len(CORPUS) :] * 2)[:256]


def _typed(engine, n_tokens: int) -> str:
    """The case's text with one character typed: what HF's forward and cached step are timed on."""
    text = text_with_tokens(engine, n_tokens)
    return text + _tail(text)[0]


def memory_probe(
    n_tokens: int = 1024, backend: str = "auto", device: str = "cpu", model: str | None = None, keystrokes: int = 5
) -> dict:
    """A fresh process analyses an ``n_tokens`` text and types ``keystrokes`` characters into it: its RSS
    afterwards (psutil) and its peak RSS (load included), in MB."""
    code = (
        "import json, psutil\n"
        "from explainer.bench import peak_rss_mb, text_with_tokens, CORPUS\n"
        "from explainer.core.engine import Engine\n"
        f"e = Engine({model!r}, device={device!r}, backend={backend!r})\n"
        "e.wait_for_backend()\n"
        "load_peak = peak_rss_mb()\n"
        f"t = text_with_tokens(e, {n_tokens})\n"
        f"r = e.analyze(t, max_tokens={n_tokens + keystrokes + 8})\n"
        f"for ch in CORPUS[:{keystrokes}]:\n"
        "    t += ch\n"
        f"    r = e.analyze(t, max_tokens={n_tokens + keystrokes + 8})\n"
        "print(json.dumps({'rss_mb': psutil.Process().memory_info().rss / 2**20, 'peak_rss_mb': peak_rss_mb(),\n"
        "                  'load_peak_rss_mb': load_peak, 'tokens': r.n_tokens, 'backend': e.backend}))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    return {k: round(v, 1) if isinstance(v, float) else v for k, v in out.items()}


def format_table(res: dict) -> str:
    lines = [
        f"{res['model']} on {res['device']}, backend {res['backend_label']} ({res['cpus']} CPUs of {res['cpu']})",
        f"load {res['load_s']:.2f} s, peak RSS {res['peak_rss_mb']:.0f} MB"
        + (
            f"; 1024 tokens: RSS {res['rss_1024_mb']:.0f} MB, peak {res['peak_rss_1024_mb']:.0f} MB"
            if "rss_1024_mb" in res
            else ""
        ),
    ]
    if res.get("notice"):
        lines.append(f"notice: {res['notice']}")
    hf = any("hf_ms" in c for c in res["cases"])
    pic = any("picture_ms" in c for c in res["cases"])
    lines.append(
        f"{'tokens':>6}  {'full ms':>9}  {'keystroke ms':>12}  {'p90':>8}"
        + (f"  {'picture ms':>10}  {'p90':>8}  {'main ms':>7}" if pic else "")
        + (f"  {'HF ms':>9}  {'HF cached':>9}  {'speed-up':>8}  {'vs cached':>9}" if hf else "")
    )
    nan = float("nan")
    for c in res["cases"]:
        row = f"{c['tokens']:>6}  {c['full_ms']:>9.1f}  {c['keystroke_ms']:>12.1f}  {c['keystroke_p90_ms']:>8.1f}"
        if pic:
            row += f"  {c.get('picture_ms', nan):>10.1f}  {c.get('picture_p90_ms', nan):>8.1f}"
            row += f"  {c.get('picture_main_ms', nan):>7.1f}"
        if hf:
            row += f"  {c.get('hf_ms', nan):>9.1f}  {c.get('hf_cached_ms', nan):>9.1f}"
            row += (
                f"  {c.get('keystroke_speedup_vs_hf', 0):>7.1f}x  {c.get('keystroke_speedup_vs_hf_cached', 0):>8.1f}x"
            )
        lines.append(row)
    floor = res.get("kernel_floor_ms")
    if floor:
        lines.append(
            f"one token's four-bit kernels alone: {floor['layers']:.1f} ms in the layers + {floor['unembedding']:.1f} ms "
            f"in the output table = {floor['total']:.1f} ms (a keystroke's floor with these kernels)"
        )
    lines.append(TARGETS)
    return "\n".join(lines)


def parse_cases(spec: str | None) -> tuple[int, ...]:
    """``--tokens``: whole numbers separated by commas (None: the default cases); UserError otherwise."""
    from explainer.core.errors import UserError

    if spec is None:
        return CASES
    parts = [x.strip() for x in spec.split(",") if x.strip()]
    if not parts or not all(x.isascii() and x.isdigit() for x in parts) or min(int(x) for x in parts) < 2:
        raise UserError(
            "--tokens takes whole numbers of 2 or more (the start token and a text) separated by commas, "
            "such as 8,32,128."
        )
    return tuple(int(x) for x in parts)


def _handler(args) -> int:
    from explainer.core.engine import Engine
    from explainer.core.errors import UserError

    cases = parse_cases(args.tokens)
    if args.keystrokes < 1:
        raise UserError("--keystrokes must be at least 1.")

    def say(msg: str, frac: float | None = None) -> None:
        if not args.json and sys.stderr.isatty():
            sys.stderr.write(f"\r{msg}\033[K")
            sys.stderr.flush()

    engine = Engine(args.model, device=args.device, backend=args.backend, progress=say)
    context = engine.info.context_length
    longest = context - args.keystrokes - 8  # room for the typed characters
    if longest < 2:
        raise UserError(
            f"--keystrokes can be at most {max(context - 10, 0)} for this model: its context is {context} tokens, "
            f"and the text typed into needs room too."
        )
    if max(cases) > longest:
        raise UserError(
            f"--tokens can be at most {max(longest, 0)} for this model: its context is "
            f"{engine.info.context_length} tokens, and the typed characters need room too."
        )
    engine.wait_for_backend(say)
    res = run_bench(
        engine, cases, args.keystrokes, compare_hf=args.compare_hf, progress=say, picture=not args.no_picture
    )
    if args.memory:
        say("memory at 1024 tokens (a fresh process)")
        mem = memory_probe(1024, engine.backend, engine.device_kind, args.model)
        res["rss_1024_mb"], res["peak_rss_1024_mb"] = mem["rss_mb"], mem["peak_rss_mb"]
    if not args.json and sys.stderr.isatty():
        sys.stderr.write("\r\033[K")
    print(json.dumps(res) if args.json else format_table(res))
    return 0


def add_arguments(parser) -> None:
    """time model load, full analyses, keystrokes and keystroke-to-picture at 8-1024 tokens (optionally against
    transformers)"""
    parser.add_argument(
        "--backend",
        default="auto",
        choices=("torch", "onnx", "stored", "auto"),
        help="torch, onnx, stored or auto (default auto: see explainer/core/backends)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--compare-hf",
        action="store_true",
        help="also time a plain Hugging Face transformers forward (needs transformers)",
    )
    parser.add_argument("--tokens", metavar="N,N,...", help="token counts to time (default 8,32,128,512,1024)")
    parser.add_argument(
        "--no-picture", action="store_true", help="leave out keystroke-to-picture in the window (needs PySide6)"
    )
    parser.add_argument(
        "--keystrokes",
        type=int,
        default=12,
        metavar="K",
        help="single-character appends per case; the median is reported (default 12)",
    )
    parser.add_argument(
        "--memory", action="store_true", help="also measure the peak RSS of a fresh process analysing 1024 tokens"
    )
    parser.set_defaults(handler=_handler)
