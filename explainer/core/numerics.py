"""The numerics the core shares: one softmax and one entropy (numpy, float64 accumulation)."""

from __future__ import annotations

import numpy as np

__all__ = ["softmax", "entropy_bits"]


def softmax(logits: np.ndarray, axis: int = -1, *, temperature: float = 1.0, dtype=np.float64) -> np.ndarray:
    """``exp(z / T) / Σ exp(z / T)`` along ``axis`` as ``dtype`` (temperature clamped to ≥ 1e-6). The maximum is
    subtracted first, so nothing overflows and ``-inf`` entries (masked positions) become exactly 0; the sum
    accumulates in float64."""
    z = np.asarray(logits, dtype)
    if temperature != 1.0:
        z = z / max(float(temperature), 1e-6)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True, dtype=np.float64)).astype(dtype, copy=False)


def entropy_bits(probs: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy in bits along ``axis`` (zeros contribute nothing), accumulated in float64."""
    p = np.asarray(probs)
    logp = np.log2(np.where(p > 0, p, 1.0), dtype=np.float64)
    return -np.sum(p * logp, axis=axis, dtype=np.float64)
