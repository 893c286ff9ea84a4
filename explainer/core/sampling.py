"""How a next-token distribution is reshaped before a token is drawn: temperature, top-k, top-p (nucleus).

Pure numpy, no Qt. The order follows Hugging Face ``generate``: temperature first (on the logits), then top-k,
then top-p on what top-k left (renormalised), then one final renormalisation. Every function returns float64
probabilities over the whole vocabulary ``[V]`` that sum to 1; filtered tokens get exactly 0.

``draw`` picks one token from such a distribution, reproducibly: draw number ``n`` of seed ``s`` is always the
same uniform number, so a lecture scene that records its seed shows the same sampled choices every time, and
raising the temperature changes the choice only because the distribution changed.
"""

from __future__ import annotations

import numpy as np

from explainer.core import numerics

__all__ = [
    "softmax",
    "apply_top_k",
    "apply_top_p",
    "filter_distribution",
    "sampling_distribution",
    "entropy_bits",
    "rank_of",
    "uniform",
    "draw",
]


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``[V]`` float64 probabilities of ``logits / temperature`` (temperature clamped to ≥ 1e-6)."""
    return numerics.softmax(logits, temperature=temperature)


def _normalised(p: np.ndarray) -> np.ndarray:
    s = p.sum()
    return p / s if s > 0 else p


def apply_top_k(probs: np.ndarray, k: int | None) -> np.ndarray:
    """Keep the ``k`` most likely tokens (ties broken by the lower id), zero the rest, renormalise.

    ``k`` of None, 0 or ≥ V leaves the distribution unchanged (as a float64 copy)."""
    p = np.array(probs, dtype=np.float64)
    if not k or k <= 0 or k >= p.size:
        return p
    # stable descending order: sort by (-p, id)
    order = np.lexsort((np.arange(p.size), -p))
    out = np.zeros_like(p)
    keep = order[:k]
    out[keep] = p[keep]
    return _normalised(out)


def apply_top_p(probs: np.ndarray, top_p: float | None) -> np.ndarray:
    """Nucleus filtering: keep the smallest set of most likely tokens whose total probability reaches
    ``top_p`` (always at least one token), zero the rest, renormalise. ``top_p`` ≥ 1 or None: unchanged."""
    p = np.array(probs, dtype=np.float64)
    if top_p is None or top_p >= 1.0:
        return p
    p = _normalised(p)
    order = np.lexsort((np.arange(p.size), -p))
    cum = np.cumsum(p[order])
    # number of tokens needed so that the kept mass reaches top_p (tolerate float round-off)
    n = int(np.searchsorted(cum, float(top_p) - 1e-12, side="left")) + 1
    n = max(1, min(n, p.size))
    out = np.zeros_like(p)
    keep = order[:n]
    out[keep] = p[keep]
    return _normalised(out)


def filter_distribution(probs: np.ndarray, top_k: int | None = None, top_p: float | None = None) -> np.ndarray:
    """Top-k, then top-p, of an already temperature-scaled distribution ``[V]``."""
    return apply_top_p(apply_top_k(probs, top_k), top_p)


def sampling_distribution(
    logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> np.ndarray:
    """The distribution a sampler actually draws from: softmax(logits / T), top-k, top-p, renormalised."""
    return filter_distribution(softmax(logits, temperature), top_k, top_p)


def entropy_bits(probs: np.ndarray) -> float:
    """Shannon entropy in bits (zeros contribute nothing)."""
    return float(numerics.entropy_bits(np.asarray(probs, dtype=np.float64)))


def rank_of(probs: np.ndarray, token_id: int) -> int:
    """1-based rank of ``token_id`` (1 = most likely); ties count in the token's favour."""
    p = np.asarray(probs)
    return int((p > p[token_id]).sum()) + 1


def uniform(seed: int, index: int = 0) -> float:
    """Draw number ``index`` (0, 1, 2, …) of the seeded sequence: a number in [0, 1), the same on every run."""
    if seed < 0 or index < 0:
        raise ValueError("seed and index must be ≥ 0")
    return float(np.random.default_rng([int(seed), int(index)]).random())


def draw(probs: np.ndarray, seed: int, index: int = 0) -> int:
    """The token id that draw number ``index`` of ``seed`` picks from ``probs [V]`` (inverse of the cumulative
    distribution: token t is picked when the uniform number falls in its slice of [0, 1)). A token with
    probability 0 is never picked."""
    p = np.asarray(probs, dtype=np.float64)
    total = float(p.sum())
    if p.ndim != 1 or p.size == 0 or not np.isfinite(total) or total <= 0 or (p < 0).any():
        raise ValueError("probs must be a non-empty 1-D array of non-negative numbers with a positive sum")
    cum = np.cumsum(p)
    # the first token whose cumulative sum exceeds u·total: its own slice holds u, so its probability is > 0
    i = int(np.searchsorted(cum, uniform(seed, index) * cum[-1], side="right"))
    if i >= p.size:  # u·total rounded up to the total: the last token that can be drawn
        i = int(np.flatnonzero(p)[-1])
    return i
