"""``explainer bench --compare-hf``: Hugging Face transformers on the same GGUF, timed the two ways a practitioner
would run it for a keystroke: a naive forward over the whole text, and a KV-cached one-token step."""

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


def hf_ms(hf, ids: list[int], repeats: int = 3) -> float:
    """Median ms of one forward with attentions over all ``ids``."""
    import torch

    t = torch.tensor([ids])
    with torch.inference_mode():
        hf(t, output_attentions=True)  # warm-up
        return _median_ms(lambda: hf(t, output_attentions=True), repeats)


def hf_cached_ms(hf, ids: list[int], repeats: int = 10) -> float:
    """Median ms of the last token's step after the others are in Hugging Face's key/value cache, with
    attentions (what a keystroke needs). The cache is cut back after each step (not timed)."""
    import torch

    prefix, last = torch.tensor([ids[:-1]]), torch.tensor([ids[-1:]])
    with torch.inference_mode():
        cache = hf(prefix, use_cache=True).past_key_values
        times = []
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            hf(last, past_key_values=cache, use_cache=True, output_attentions=True)
            times.append((time.perf_counter() - t0) * 1000.0)
            cache.crop(-1)  # drop the token just added
    return round(statistics.median(times[1:]), 2)
