"""Pure numpy helpers for the attention panel (no Qt): the sink-hiding renormalisation and thumbnail pooling.

Conventions: ``[..., query, key]`` matrices whose rows sum to 1 over keys ``0..query`` (the causal mask makes
later keys 0). NaN marks a cell that is not shown (a hidden first-token column, a row with nothing left).
"""

from __future__ import annotations

import numpy as np


def hide_sink(m: np.ndarray) -> np.ndarray:
    """Hide key 0 (the first token) and renormalise each row over the remaining keys.

    Returns a float32 copy of the same shape: column 0 is NaN; row ``q`` ≥ 1 is ``m[q, 1:] / Σ m[q, 1:]`` and sums
    to 1 over keys ``1..q``; row 0 (whose only key is the hidden one) is all NaN.
    """
    m = np.asarray(m, np.float32)
    out = np.empty_like(m)
    rest = m[..., 1:]
    total = rest.sum(axis=-1, keepdims=True, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[..., 1:] = np.where(total > 1e-12, rest / np.maximum(total, 1e-30), np.nan)
    out[..., 0] = np.nan
    return out


def display_matrix(base: np.ndarray, hide_first: bool) -> np.ndarray:
    """What the heatmap shows for ``base`` ([T, T] of one head or the head average)."""
    return hide_sink(base) if hide_first else np.array(base, np.float32)


def bin_edges(t: int, n: int) -> np.ndarray:
    """Start index of each thumbnail bin over ``t`` tokens: single tokens when ``t`` ≤ ``n``, else bins of a
    power-of-two size (so the bins stay put while a long text grows, and pooled blocks can be reused)."""
    if t <= n:
        return np.arange(t, dtype=np.int64)
    step = 1 << int(np.ceil(np.log2(t / n)))
    return np.arange(0, t, step, dtype=np.int64)


def _mask_future(out: np.ndarray, e: np.ndarray, t: int) -> np.ndarray:
    row_end = np.append(e[1:], t) - 1  # last query of each row bin
    out[..., row_end[:, None] < e[None, :]] = np.nan  # every key of the bin is later than every query
    return out


def pool_max(m: np.ndarray, n: int) -> np.ndarray:
    """Max-pool the last two axes ``[..., T, T]`` over ``bin_edges(T, n)``, ignoring NaN.

    Bins lying entirely above the diagonal (future keys only: masked) become NaN, so thumbnails show the causal
    triangle as empty just as the big heatmap does.
    """
    t = m.shape[-1]
    e = bin_edges(t, n)
    out = np.fmax.reduceat(np.fmax.reduceat(m, e, axis=-1), e, axis=-2).astype(np.float32)
    return _mask_future(out, e, t)


def _pool_block_keys(b: np.ndarray, e: np.ndarray, hide_first: bool) -> np.ndarray:
    """``[L, H, r, k]`` block → ``[L, H, r, len(e)]``: each row's max in every key bin (NaN past its keys),
    divided by the row's mass without key 0 when the first token is hidden."""
    k = b.shape[-1]
    idx = e[e < k]
    pooled = np.full(b.shape[:3] + (e.size,), np.nan, np.float32)
    pooled[..., : idx.size] = np.fmax.reduceat(b, idx, axis=-1)
    if hide_first:
        end0 = min(int(e[1]) if e.size > 1 else k, k)  # bin 0 without key 0
        pooled[..., 0] = b[..., 1:end0].max(-1) if end0 > 1 else np.nan
        rest = b[..., 1:].sum(-1, dtype=np.float64)  # [L, H, r]
        with np.errstate(invalid="ignore", divide="ignore"):
            pooled /= np.where(rest > 1e-12, rest, np.nan)[..., None].astype(np.float32)
    return pooled


class ThumbnailPooler:
    """``[L, H, n', n']`` max-pooled maps of every head, as the heatmap would show them.

    Works on the attention's row blocks without building ``[L, H, T, T]``: each block is pooled over key bins
    (and, with the first token hidden, divided by its rows' remaining mass — a per-row factor commutes with a
    max over keys), then the rows are pooled. Results of successive keystrokes share their unchanged blocks, and
    the bins stay put while the text grows, so only new blocks are pooled. Equals ``pool_max(hide_sink(head))``.
    """

    def __init__(self, n: int = 32):
        self.n = n
        # (memory address, shape, strides, step, hide) → (block, pooled). Keyed by the memory a block views, not
        # by the Python object: ``Attention.truncated`` hands out fresh views of the same read-only blocks. The
        # cache holds the block, so its memory cannot be freed and reused while cached.
        self._cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, attention, hide_first: bool) -> np.ndarray:
        t = attention.n_tokens
        if t == 0:
            return np.zeros((attention.n_layers, attention.n_heads, 0, 0), np.float32)
        e = bin_edges(t, self.n)
        step = int(e[1] - e[0]) if e.size > 1 else 1
        rows, keep = [], {}
        for b in attention.blocks:
            key = (b.__array_interface__["data"][0], b.shape, b.strides, step, hide_first)
            hit = self._cache.get(key)
            if hit is None:
                hit = (b, _pool_block_keys(b, e, hide_first))
            keep[key] = hit
            pooled = hit[1]
            if pooled.shape[-1] < e.size:  # bins added since (the text grew): later keys are all in the future
                pad = np.full(pooled.shape[:3] + (e.size - pooled.shape[-1],), np.nan, np.float32)
                pooled = np.concatenate([pooled, pad], axis=-1)
            rows.append(pooled[..., : e.size])
        self._cache = {k: v for k, v in self._cache.items() if k[4] != hide_first} | keep
        out = np.fmax.reduceat(np.concatenate(rows, axis=2), e, axis=2)
        return _mask_future(out, e, t)


def thumbnails(attention, hide_first: bool, n: int) -> np.ndarray:
    """One-off ``ThumbnailPooler(n)(attention, hide_first)``."""
    return ThumbnailPooler(n)(attention, hide_first)


def mosaic(thumbs: np.ndarray, gap: int = 1) -> np.ndarray:
    """``[L, H, n, n]`` → one ``[L*(n+gap), H*(n+gap)]`` image, thumbnails separated by NaN gaps."""
    L, H, n, _ = thumbs.shape
    c = n + gap
    img = np.full((L, c, H, c), np.nan, np.float32)
    img[:, :n, :, :n] = thumbs.transpose(0, 2, 1, 3)
    return img.reshape(L * c, H * c)
