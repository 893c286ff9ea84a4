"""``explainer bench --compare-hf``: Hugging Face transformers on the same GGUF, timed the two ways a practitioner
would run it for a keystroke: a naive forward over the whole text, and a KV-cached one-token step.

Each is the better of torch's default thread count and one thread: on a machine whose other core is busy,
torch's threads wait for each other at every operation (measured 5-9x slower than one thread), and the
comparison should not flatter explainer with that."""

from __future__ import annotations

import statistics
import time


def load_hf(engine):
    """Hugging Face transformers' Llama on the same GGUF (eager attention, so it returns attentions)."""
    from pathlib import Path

    import torch

    try:
        import transformers
    except ImportError:
        from explainer.core.errors import UserError

        raise UserError("--compare-hf needs transformers: pip install transformers accelerate") from None
    path = Path(engine.info.path)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, attn_implementation="eager", dtype=torch.float32
    )
    return model.eval()


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return round(statistics.median(times), 2)


def _best_of_threads(fn) -> float:
    import torch

    default = torch.get_num_threads()
    results = [fn()]
    if default > 1:
        torch.set_num_threads(1)
        try:
            results.append(fn())
        finally:
            torch.set_num_threads(default)
    return min(results)


def hf_ms(hf, ids: list[int], repeats: int = 3) -> float:
    """Median ms of one forward with attentions over all ``ids``."""
    import torch

    t = torch.tensor([ids])

    def timed() -> float:
        with torch.inference_mode():
            hf(t, output_attentions=True)  # warm-up
            return _median_ms(lambda: hf(t, output_attentions=True), repeats)

    return _best_of_threads(timed)


def hf_cached_ms(hf, ids: list[int], repeats: int = 10) -> float:
    return _best_of_threads(lambda: _cached_step_ms(hf, ids, repeats))


def _cached_step_ms(hf, ids: list[int], repeats: int) -> float:
    """Median ms of the last token's step after the others are in Hugging Face's key/value cache, with
    attentions (what a keystroke needs). The cache is cut back after each step (not timed)."""
    import inspect

    import torch

    # newer transformers name the cache argument ``cache`` (``past_key_values`` is deprecated there)
    name = "cache" if "cache" in inspect.signature(hf.forward).parameters else "past_key_values"
    prefix, last = torch.tensor([ids[:-1]]), torch.tensor([ids[-1:]])
    with torch.inference_mode():
        out = hf(prefix, use_cache=True)
        cache = getattr(out, "cache", None) or out.past_key_values
        times = []
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            hf(last, use_cache=True, output_attentions=True, **{name: cache})
            times.append((time.perf_counter() - t0) * 1000.0)
            cache.crop(-1)  # drop the token just added
    return round(statistics.median(times[1:]), 2)
