"""Next-token statistics over the full vocabulary, for the rows an analysis (re)computed.

For each row: the log-sum-exp of its logits (kept, so that when only the *next* token changes the new
token's log-probability costs one dot product instead of a pass over the vocabulary), the entropy in bits,
the top-k ids and probabilities, and log P(the actual next token). Computed in float32 on the model's device,
in chunks of rows so the ``[rows, V]`` logits stay small.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

LN2 = math.log(2.0)


@dataclass
class RowStats:
    lse: np.ndarray  # [n] float32: log Σ exp(logits)
    entropy_bits: np.ndarray  # [n] float32
    top_ids: np.ndarray  # [n, k] int64, best first
    top_probs: np.ndarray  # [n, k] float32
    next_logp: np.ndarray  # [n] float64: log P(next_ids[i]) (natural log); NaN where next_ids[i] < 0


@torch.inference_mode()
def row_stats(normed: np.ndarray, unembedding, next_ids: np.ndarray, k: int, chunk: int = 64) -> RowStats:
    """``normed [n, D]`` final-normed residuals; ``unembedding``: the ``[V, D]`` table on the device to compute
    on, or a function ``rows [r, D] -> logits [r, V]`` (numpy, float32: a backend's own unembedding);
    ``next_ids [n]`` the token that follows each row (-1: none)."""
    n = normed.shape[0]
    out = RowStats(
        np.empty(n, np.float32),
        np.empty(n, np.float32),
        np.empty((n, k), np.int64),
        np.empty((n, k), np.float32),
        np.full(n, np.nan, np.float64),
    )
    table = isinstance(unembedding, torch.Tensor)
    dev = unembedding.device if table else torch.device("cpu")
    normed = np.ascontiguousarray(normed, np.float32)
    x_all = torch.from_numpy(normed).to(dev)
    rows_max = min(n, chunk)
    if table:  # two [rows, V] buffers reused by every chunk (fewer, steadier allocations: RSS stays flat)
        V = unembedding.shape[0]
        zt = torch.empty((V, rows_max), dtype=torch.float32, device=dev)
        z_buf = torch.empty((rows_max, V), dtype=torch.float32, device=dev)
    p_buf = None
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        r = b - a
        if table:  # logits as (W x^T)^T: with W as the left operand the BLAS packs no copy of the [V, D] table
            torch.mm(unembedding.float(), x_all[a:b].T, out=zt[:, :r])
            z = z_buf[:r].copy_(zt[:, :r].T)  # [rows, V]
        else:
            z = torch.from_numpy(unembedding(normed[a:b]))
        if p_buf is None:
            p_buf = torch.empty((rows_max, z.shape[1]), dtype=torch.float32, device=dev)
        tz, ti = torch.topk(z, k, dim=-1)
        m = z.amax(dim=-1, keepdim=True)
        d = z.sub_(m)  # in place: d = z - max <= 0
        e = torch.exp(d, out=p_buf[:r])
        s = e.sum(dim=-1, dtype=torch.float64)  # [rows], >= 1; sums over 49k terms accumulate in float64
        log_s = torch.log(s)
        lse = m[:, 0].double() + log_s
        # entropy = log s - Σ e d / s: two non-negative terms (lse - Σ p z would cancel two numbers near 30);
        # the 49k-term dot products accumulate in float64 (float32 lost ~5e-4 bits)
        nxt = next_ids[a:b]
        rows = np.flatnonzero(nxt >= 0)
        if len(rows):  # before d is overwritten below
            rr = torch.from_numpy(rows).to(dev)
            vals = d[rr, torch.from_numpy(nxt[rows]).to(dev)].double() - log_s[rr]
            out.next_logp[a + rows] = vals.cpu().numpy()
        ent = (log_s - d.mul_(e).sum(dim=-1, dtype=torch.float64) / s) / LN2
        out.lse[a:b] = lse.cpu().numpy()
        out.entropy_bits[a:b] = ent.cpu().numpy()
        out.top_ids[a:b] = ti.cpu().numpy()
        out.top_probs[a:b] = torch.exp(tz.double() - lse[:, None]).float().cpu().numpy()
    return out


@torch.inference_mode()
def token_logp(normed_row: np.ndarray, unembedding: torch.Tensor, token: int, lse: float) -> float:
    """log P(token) after a row whose log-sum-exp is known: one dot product."""
    x = torch.from_numpy(np.ascontiguousarray(normed_row, np.float32)).to(unembedding.device)
    return float(torch.dot(x, unembedding[token].float())) - float(lse)
