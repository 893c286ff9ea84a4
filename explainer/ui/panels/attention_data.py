"""Pure numpy helpers for the attention panel (no Qt): the sink-hiding renormalisation, pooling a head's map for
its preview, and the one number per head that the head grid shows (``MEASURES``).

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
    """Start index of each pooling bin over ``t`` tokens: single tokens when ``t`` ≤ ``n``, else bins of a
    power-of-two size (so the bins stay put while a long text grows)."""
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

    Bins lying entirely above the diagonal (future keys only: masked) become NaN, so a pooled preview shows the
    causal triangle as empty just as the big heatmap does.
    """
    t = m.shape[-1]
    e = bin_edges(t, n)
    out = np.fmax.reduceat(np.fmax.reduceat(m, e, axis=-1), e, axis=-2).astype(np.float32)
    return _mask_future(out, e, t)


# --- one number per head ----------------------------------------------------------------------------------------
# key, label in the menu, what the number is (for the tooltip)
MEASURES = (
    ("query_key", "weight query → key", "the weight from the query token to the key token"),
    ("first", "weight on the first token", "the query's weight on the first token (the attention sink)"),
    ("previous", "weight on the previous token", "the query's weight on the token just before it"),
    ("induction", "induction score (this text)", "how much the head copies a pattern: A B … A → B"),
    ("previous_token", "previous-token score (this text)", "mean weight on the previous token, over all queries"),
    ("duplicate_token", "duplicate-token score (this text)", "mean weight on earlier copies of the same token"),
)
ROLE_MEASURES = ("induction", "previous_token", "duplicate_token")


def query_rows(attention, query: int) -> np.ndarray:
    """``[L, H, query + 1]``: every head's weights of one query over keys ``0..query``, read from the row blocks."""
    return np.asarray(attention.query_rows(query), np.float32)


def head_values(attention, measure: str, query: int, key: int, hide_first: bool) -> np.ndarray:
    """``[L, H]`` in [0, 1] for one of the per-query ``MEASURES`` ("query_key", "first", "previous"), as the
    heatmap shows the weights (renormalised without the first token when it is hidden); NaN where the measure has
    no value (a key after the query, the hidden first token, no previous token)."""
    L, H = attention.n_layers, attention.n_heads
    nan = np.full((L, H), np.nan, np.float32)
    if not 0 <= query < attention.n_tokens:
        return nan
    k = {"query_key": key, "first": 0, "previous": query - 1}.get(measure, -1)
    if not 0 <= k <= query or (hide_first and k == 0):
        return nan
    # a view into the row block: only the key's column is read (and the row's sum when the first is hidden)
    row = attention.query_rows(query)
    value = row[..., k].astype(np.float64)
    if hide_first:
        rest = row[..., 1:].sum(-1, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(rest > 1e-12, value / rest, np.nan)
    return value.astype(np.float32)


def preview(matrix: np.ndarray, n: int = 48) -> np.ndarray:
    """A head's displayed ``[T, T]`` map max-pooled to at most ``n`` cells a side, for a small preview."""
    if matrix.shape[0] == 0:
        return np.zeros((0, 0), np.float32)
    m = np.array(matrix, np.float32)
    m[np.triu_indices(m.shape[0], 1)] = np.nan
    return pool_max(m, n)
