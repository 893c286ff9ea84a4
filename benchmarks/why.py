"""Measure the "why" tools (a script, not a test): medians in milliseconds.

1. knock-out: one analysis of a ~64-token text with and without heads knocked out (full pass), and one typed
   character at its end for both models, as the window does with knock-out on (incremental);
2. attribution (input × gradient) at 64 tokens;
3. the activation-patching grid for a 10-token pair (start token included) whose second token differs, so every
   position after the first differs in every layer: 9 patched runs per layer, the most work a 10-token pair takes.

    python benchmarks/why.py [--threads 2] [--repeat 5] [--backend torch|stored|onnx|auto] [--random] [--json]

``--backend``: the backend of the analyses (knock-out runs on it where it can zero a head, else on torch). ``--random``: a model of the real
one's shape with random weights, for machines without the model file (the knock-out lines then time the torch
backend's forward pass instead of ``Engine.analyze``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import types

import numpy as np

TEXT = (
    "The eagle circled high above the valley, watching the river below. Every morning it followed the same path, "
    "from the old oak tree on the hill to the rocks where the fish jumped. The farmers knew the bird"
)
HEADS = ((1, 4), (4, 0), (14, 8), (22, 3))
PAIR = ("Paul was born in Germany, so Paul speaks", "Anna was born in Spain, so Anna speaks")


def median_ms(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def random_engine(device: str):
    from explainer.core.gguf_loader import LlamaConfig
    from explainer.core.llama import build_model, random_weights

    cfg = LlamaConfig(30, 576, 1536, 9, 3, 49152, 8192, 100000.0, 1e-5, "random SmolLM2-135M shape")
    return types.SimpleNamespace(cfg=cfg, model=build_model(cfg, random_weights(cfg), device), device_kind=device)


def knock_out_times(engine, repeat: int, random: bool) -> dict:
    if random:
        from explainer.core.backends.torch_backend import TorchBackend

        ids = np.random.default_rng(0).integers(1000, 10000, 64)
        clean, knocked = (
            TorchBackend(engine.model, engine.device_kind),
            TorchBackend(engine.model, engine.device_kind, HEADS),
        )
        return {
            "forward_64_tokens_ms": median_ms(lambda: clean.forward(ids, None), repeat),
            "forward_64_tokens_knocked_out_ms": median_ms(lambda: knocked.forward(ids, None), repeat),
        }
    out = {
        "analyze_ms": median_ms(lambda: engine.analyze(TEXT, incremental=False), repeat),
        "analyze_knocked_out_ms": median_ms(lambda: engine.analyze(TEXT, incremental=False, ablated=HEADS), repeat),
    }
    typed = iter(range(1 << 30))

    def keystroke(models):
        """One more character at the end, analysed by each of ``models`` (knocked-out heads; () is clean)."""
        text = TEXT + " " + "x" * next(typed)
        for heads in models:  # every state holds the text before the keystroke
            engine.analyze(text[:-1], ablated=heads)
        t0 = time.perf_counter()
        for heads in models:
            engine.analyze(text, ablated=heads)
        return (time.perf_counter() - t0) * 1000

    out["keystroke_clean_ms"] = statistics.median(keystroke([()]) for _ in range(repeat))
    out["keystroke_clean_and_knocked_out_ms"] = statistics.median(keystroke([(), HEADS]) for _ in range(repeat))
    return out


def ids_of(engine, text: str, random: bool, seed: int = 0) -> np.ndarray:
    if random:
        ids = np.random.default_rng(seed).integers(1000, 10000, 10)
        ids[0] = 0
        return ids
    return engine.analyze(text).ids


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2: the target machines)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--random", action="store_true", help="a random-weight model of the real shape")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--backend", default="auto", help="the analyses' backend (default auto, as the app)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    import torch

    from explainer.core.attribution import attribute
    from explainer.core.patching import patch

    torch.set_num_threads(args.threads)
    if args.random:
        engine = random_engine(args.device)
    else:
        from explainer.core.engine import Engine

        engine = Engine(device=args.device, backend=args.backend)
        engine.wait_for_backend()
    res = {"model": engine.cfg.name, "threads": args.threads, "device": args.device}
    res["backend"] = "torch" if args.random else engine.backend
    res.update(knock_out_times(engine, args.repeat, args.random))
    ids64 = np.random.default_rng(1).integers(1000, 10000, 64)
    ids64[0] = 0
    res["attribution_64_tokens_ms"] = median_ms(lambda: attribute(engine, ids64), args.repeat)
    clean, corrupt = ids_of(engine, PAIR[0], args.random, 1), ids_of(engine, PAIR[1], args.random, 2)
    if args.random:
        corrupt[[2, 3, 4, 6, 7, 9]] = clean[[2, 3, 4, 6, 7, 9]]  # tokens 1, 5 and 8 differ, as in PAIR
    assert len(clean) == len(corrupt) == 10
    res["patch_10_token_pair_ms"] = median_ms(lambda: patch(engine, clean, corrupt), max(1, args.repeat // 2))
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:>40}: {v:.1f}" if isinstance(v, float) else f"{k:>40}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
