"""How fast tokenizing is, and what a 1 MB paste costs (a script, not a test: timings depend on the machine).

For each tokenizer: 10,000 characters of mixed text (best of 3); a 1 MB paste cut at 512 tokens; a 1 MB text
that is one pre-tokenized piece (a run of one symbol) cut at 300 tokens. Then the tiny demo engine analysing a
1 MB paste (cut at 1024 tokens: tokenization, forward and result, as ``explainer analyze`` does).

    python benchmarks/tokenizer_speed.py

Targets (2 CPU cores): 10,000 characters <= 200 ms; a cut megabyte <= 1 s (it costs about its first pieces);
the demo engine on a megabyte <= 15 s end to end.
"""

from __future__ import annotations

import time

MIXED = ("Hello, wörld! 你好 👍🏽 1234 def f(x): return x**2\n" * 250)[:10_000]
PARAGRAPH = "The quick brown fox jumps over the lazy dog; 你好, 👍🏽 1234 (x**2)\n"
MEGABYTE = PARAGRAPH * (1_000_000 // len(PARAGRAPH))
RUNS = ("a", "👍", "\x04", "\n \n")


def best_ms(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return 1000 * best


def main() -> None:
    from explainer.core.tokenizers import TOKENIZER_NAMES, get_tokenizer

    print(f"{'tokenizer':<12} {'10k chars':>10} {'1 MB → 512':>11} " + " ".join(f"{repr(u):>9}" for u in RUNS))
    for name in TOKENIZER_NAMES:
        tok = get_tokenizer(name)
        tok.tokenize("warm up", max_tokens=4)
        mixed = best_ms(lambda tok=tok: tok.tokenize(MIXED))
        cut = best_ms(lambda tok=tok: tok.tokenize(MEGABYTE, max_tokens=512))
        runs = []
        for unit in RUNS:
            text = unit * (1_000_000 // len(unit)) + "tail"
            runs.append(best_ms(lambda tok=tok, text=text: tok.tokenize(text, max_tokens=300), repeat=1))
        print(f"{name:<12} {mixed:>8.1f}ms {cut:>9.1f}ms " + " ".join(f"{ms:>7.1f}ms" for ms in runs))

    from explainer.core.engine import demo_engine

    engine = demo_engine()
    engine.analyze("warm up")
    t0 = time.perf_counter()
    r = engine.analyze(MEGABYTE, incremental=False)
    print(f"demo engine, 1 MB paste → {r.n_tokens} tokens: {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
