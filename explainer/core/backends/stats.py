"""Next-token statistics over the full vocabulary, for the rows an analysis (re)computed, with the float32
unembedding table in torch (the torch and ONNX backends; the stored-weights backend computes the same
statistics inside ONNX Runtime with the table as stored, see ``stored_graph.build_unembedding``).

For each row: the log-sum-exp of its logits (kept, so that when only the *next* token changes the new
token's log-probability costs one dot product instead of a pass over the vocabulary), the entropy in bits,
the top-k ids and probabilities, and log P(the actual next token). Computed in float32 on the model's device,
in chunks of rows so the ``[rows, V]`` logits stay small; sums over the vocabulary accumulate in float64.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import torch

from explainer.core.backends.base import RowStats

LN2 = math.log(2.0)
SMALL_ROWS = 4  # up to this many rows (a keystroke) the CPU statistics run on one thread


@contextmanager
def _cpu_threads(n: int):
    """Run torch's CPU ops on ``n`` threads inside the block. The statistics of a row or two are tens of
    microsecond-long ops: a second thread only adds a synchronisation per op, and on a busy machine (other
    programs on the other core) each one waits for that core: measured 30 ms instead of 0.4 ms per row."""
    before = torch.get_num_threads()
    if n >= before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.inference_mode()
def row_stats(normed: np.ndarray, unembedding: torch.Tensor, next_ids: np.ndarray, k: int, chunk: int = 64) -> RowStats:
    """``normed [n, D]`` final-normed residuals; ``unembedding [V, D]`` on the device to compute on;
    ``next_ids [n]`` the token that follows each row (-1: none)."""
    on_cpu = unembedding.device.type == "cpu"
    with _cpu_threads(1 if on_cpu and normed.shape[0] <= SMALL_ROWS else torch.get_num_threads()):
        return _row_stats(normed, unembedding, next_ids, k, chunk)


def _row_stats(normed: np.ndarray, unembedding: torch.Tensor, next_ids: np.ndarray, k: int, chunk: int) -> RowStats:
    n = normed.shape[0]
    out = RowStats.empty(n, k)
    dev, V = unembedding.device, unembedding.shape[0]
    x_all = torch.from_numpy(np.ascontiguousarray(normed, np.float32)).to(dev)
    rows_max = min(n, chunk)
    # three [rows, V] buffers reused by every chunk (fewer, steadier allocations: RSS stays flat)
    zt = torch.empty((V, rows_max), dtype=torch.float32, device=dev)
    z_buf = torch.empty((rows_max, V), dtype=torch.float32, device=dev)
    p_buf = torch.empty((rows_max, V), dtype=torch.float32, device=dev)
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        r = b - a
        # logits as (W x^T)^T: with W as the left operand the BLAS packs no copy of the [V, D] table
        torch.mm(unembedding.float(), x_all[a:b].T, out=zt[:, :r])
        z = z_buf[:r].copy_(zt[:, :r].T)  # [rows, V]
        tz, ti = torch.topk(z, k, dim=-1)
        m = z.amax(dim=-1, keepdim=True)
        d = z.sub_(m)  # in place: d = z - max <= 0
        e = torch.exp(d, out=p_buf[:r])
        s = _sum64(e)  # [rows], >= 1
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
        ent = (log_s - _sum64(d.mul_(e)) / s) / LN2
        out.lse[a:b] = lse.cpu().numpy()
        out.entropy_bits[a:b] = ent.cpu().numpy()
        out.top_ids[a:b] = ti.cpu().numpy()
        out.top_probs[a:b] = torch.exp(tz.double() - lse[:, None]).float().cpu().numpy()
    return out


def _sum64(x: torch.Tensor) -> torch.Tensor:
    """Row sums accumulated in float64. On the CPU through numpy, which converts in small buffers (torch makes
    a float64 copy of the whole block first: +25 MB per 64 rows of the vocabulary)."""
    if x.device.type == "cpu":
        return torch.from_numpy(np.add.reduce(x.numpy(), axis=-1, dtype=np.float64))
    return x.sum(dim=-1, dtype=torch.float64)
