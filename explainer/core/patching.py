"""Activation patching: where in the network the information that decides a prediction travels.

Two texts of the same token length: a clean one ("The capital of France is") and a corrupted one ("The capital
of Italy is"). The target is the clean run's most likely next token at the end (" Paris"). For every layer l and
position p, the corrupted text is run again with the residual stream after block l at position p replaced by the
clean run's, and P(target) at the last position recorded. Where that brings the clean answer back, the
information about the difference is carried at (l, p).

What is unchanged is reused, so a cell costs a fraction of a pass:
- layers before l: the patched pass starts from the corrupted run's residual after block l (nothing before it
  changes), through ``run_layers(..., first=l + 1)``;
- positions before p: their keys and values come from the corrupted run's cache (a causal model's earlier
  positions never see the patch), so only positions p..T-1 are computed;
- positions whose clean and corrupted residuals are identical (the tokens before the first difference): the
  patch changes nothing, so the cell is the corrupted probability without a pass;
- many runs share one pass: their rows are packed side by side, each run with its own causal mask over the
  cached keys before its p and its own rows (``_Runs``); runs of several layers share every block after the
  highest of their starting layers, so a block's weights are read once for up to ``MAX_ROWS`` rows instead of
  once per cell. The top layers' runs (the cheapest) come first.

The work left is the patched rows themselves: for a 10-token pair that differs from the second token on, 45 rows
per layer through 15 blocks on average, about 137 GFLOP.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch

from explainer.core.attribution import check_target
from explainer.core.errors import Cancelled, UserError
from explainer.core.knockout import Head, normalize_heads
from explainer.core.llama import KnockOut, KVCache, run_layers
from explainer.core.types import readonly

MAX_ROWS = 256  # rows of one packed pass (bounds its attention and activations)


@dataclass(frozen=True)
class Patching:
    clean_ids: np.ndarray  # [T] int64
    corrupt_ids: np.ndarray  # [T] int64
    target: int  # the token whose probability is recorded (default: the clean run's top-1 at the end)
    clean_prob: float  # P(target) at the last position of the clean run
    corrupt_prob: float  # ... of the corrupted run
    prob: np.ndarray  # [L, T] float32: P(target) with the residual after block l at position p patched (0-based)
    ablated: tuple[Head, ...] = ()  # heads knocked out in every run, 0-based


class _Runs(KnockOut):
    """Several patched runs packed side by side into one pass: the pass's context (``llama.Pass``'s interface)
    and its hooks at once.

    A run (l, p) starts after block l with the corrupted residual at positions p..T-1, the clean one at p. Its
    rows' keys are the corrupted run's cached keys before p and its own rows' keys up to their position. The pass
    starts with the runs of the lowest layer; the ``residual`` hook after block l appends the rows of the runs that
    start there, so runs of several layers share every block call after they joined.
    """

    cos: torch.Tensor | None  # the rotary tables of the rows' positions, as in ``llama.Pass`` (set by ``join``)
    sin: torch.Tensor | None

    def __init__(self, heads, rotary, cache: KVCache, clean_h, corrupt_h, runs: list[tuple[int, int]], cancelled):
        super().__init__(heads)
        self.rotary, self.cache, self.clean_h, self.corrupt_h = rotary, cache, clean_h, corrupt_h
        self.T, self.dev = corrupt_h[0].shape[0], corrupt_h[0].device
        self.waiting = sorted(runs)  # (layer, position), by layer
        self.first = self.waiting[0][0]  # the pass starts after this block
        self.ends: list[tuple[int, int]] = []  # the run of each last-position row, in row order
        empty = torch.zeros(0, dtype=torch.long, device=self.dev)
        self.pos, self.start, self.run = empty, empty, empty
        self.cancelled = cancelled  # asked after every block

    def join(self, layer: int, x=None):
        """Append the rows of the runs that start after block ``layer`` (``x``: the rows already in the pass)."""
        joining = [r for r in self.waiting if r[0] == layer]
        self.waiting = self.waiting[len(joining) :]
        if not joining:
            return x
        T, dev = self.T, self.dev
        parts = []
        for l, p in joining:
            rows = self.corrupt_h[l][p:].clone()
            rows[0] = self.clean_h[l][p]
            parts.append(rows)
            ids = torch.full((T - p,), len(self.ends), device=dev)
            self.pos = torch.cat((self.pos, torch.arange(p, T, device=dev)))
            self.start = torch.cat((self.start, torch.full((T - p,), p, device=dev)))
            self.run = torch.cat((self.run, ids))
            self.ends.append((l, p))
        # rotary tables for the rows' positions; none for learned positions (already inside the residual)
        self.cos, self.sin = self.rotary.tables(self.pos) if self.rotary is not None else (None, None)
        cached = torch.arange(T, device=dev)[None, :] < self.start[:, None]  # (n, T): corrupted keys before p
        own = (self.run[None, :] == self.run[:, None]) & (self.pos[None, :] <= self.pos[:, None])  # (n, n)
        self.mask = ~torch.cat((cached, own), dim=1)  # True = hidden
        return torch.cat([x, *parts]) if x is not None else torch.cat(parts)

    def keys_values(self, layer: int, k, v):
        return torch.cat((self.cache.keys[layer], k), dim=1), torch.cat((self.cache.values[layer], v), dim=1)

    def residual(self, layer: int, x):
        if self.cancelled is not None and self.cancelled():
            raise Cancelled()
        return self.join(layer, x)


def _passes(differ: list[list[int]], T: int, max_rows: int) -> list[list[tuple[int, int]]]:
    """The runs (layer, position) in passes of at most ``max_rows`` packed rows (a run from p has T - p rows),
    the top layers first: their runs are the cheapest, so the grid starts filling at once."""
    out: list[list[tuple[int, int]]] = []
    rows = max_rows
    for layer in reversed(range(len(differ))):
        for p in differ[layer]:
            if rows + T - p > max_rows:
                out.append([])
                rows = 0
            out[-1].append((layer, p))
            rows += T - p
    return out


def _patched_probs(model, runs: _Runs, target: int) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Run the packed pass; P(target) at the last position of each run, with the runs in that order."""
    x = runs.join(runs.first)
    normed = run_layers(model.layers, model.norm, x, runs, runs, first=runs.first + 1)
    logits = normed[runs.pos == runs.T - 1].float() @ model.unembedding.float().T  # one row per run
    return runs.ends, torch.softmax(logits.double(), dim=-1)[:, target].cpu().numpy()


def _seconds(model, one_id, hooks, full_pass: float, T: int, passes: list[list[tuple[int, int]]]) -> float:
    """About how long ``passes`` take here: a block costs a + b·rows; a and b from a one-token pass and the
    ``T``-token pass that took ``full_pass`` seconds. A pass goes through the blocks after its lowest layer."""
    L = len(model.layers)
    start = time.perf_counter()
    model(torch.as_tensor(one_id, device=model.embed.weight.device), hooks=hooks)
    one = time.perf_counter() - start
    b = max(full_pass - one, 0.0) / (L * (T - 1)) if T > 1 else one / L
    a = max(one / L - b, 0.0)
    rows_blocks = sum((T - p) * (L - 1 - l) for runs in passes for l, p in runs)
    pass_blocks = sum(L - 1 - min(l for l, _ in runs) for runs in passes)
    return a * pass_blocks + b * rows_blocks


def patch(
    engine,
    clean_ids,
    corrupt_ids,
    *,
    target: int | None = None,
    ablated: Iterable[Head] = (),
    progress: Callable[[str, float], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    on_layer: Callable[[int, np.ndarray], None] | None = None,
    on_plan: Callable[[int, float], None] | None = None,
    max_rows: int = MAX_ROWS,
) -> Patching:
    """The layers × positions grid for two token sequences of the same length (analysed ids, start token
    included). Call it on the model's thread.

    ``progress(message, fraction)`` after each layer (it may raise to stop); ``cancelled()`` is asked before
    every pass and a True stops with :class:`~explainer.core.errors.Cancelled`; ``on_layer(layer, row)`` gets each
    finished row ``[T]`` (0-based layer) for a heatmap that fills while it runs. ``on_plan(runs, seconds)`` is
    told, after the clean and corrupted passes, how many patched runs are left and about how long they will take
    here (``_seconds``: it costs one more one-token pass; it may raise to stop). ``ablated``: heads knocked out in
    every run. Different lengths: UserError giving both token counts."""
    clean_ids, corrupt_ids = np.array(clean_ids, np.int64), np.array(corrupt_ids, np.int64)  # own, writable copies
    T = len(clean_ids)
    if T != len(corrupt_ids):
        raise UserError(
            f"The clean text has {T} tokens and the corrupted text has {len(corrupt_ids)}; activation patching "
            "needs two texts of the same token length."
        )
    if T == 0:
        raise UserError("There are no tokens to patch; type some text (or keep the start token).")
    cfg, model = engine.cfg, engine.model
    heads = normalize_heads(ablated, cfg.n_layers, cfg.n_heads)
    if target is not None:
        target = check_target(target, cfg.vocab_size)
    L, dev = cfg.n_layers, model.embed.weight.device
    hooks = KnockOut(heads)
    with torch.inference_mode():
        clean = model(torch.as_tensor(clean_ids, device=dev), hooks=hooks)
        start = time.perf_counter()
        corrupt = model(torch.as_tensor(corrupt_ids, device=dev), hooks=hooks)
        full_pass = time.perf_counter() - start
        ends = torch.stack((clean.final_normed[-1], corrupt.final_normed[-1])).float()
        probs = torch.softmax((ends @ model.unembedding.float().T).double(), dim=-1)
        if target is None:
            target = int(torch.argmax(probs[0]))
        clean_prob, corrupt_prob = float(probs[0, target]), float(probs[1, target])
        # positions where the patch changes something, per layer; the passes, and the work each one takes
        differ = [torch.nonzero((clean.hidden[l] != corrupt.hidden[l]).any(-1))[:, 0].tolist() for l in range(L)]
        passes = _passes(differ, T, max_rows)
        work = [sum((T - p) * (L - l) for l, p in runs) for runs in passes]
        total, done = float(sum(work) or 1), 0
        left = [len(d) for d in differ]  # runs still to do per layer
        grid = np.full((L, T), corrupt_prob, np.float32)
        if on_layer is not None:
            for l in range(L):
                if not left[l]:
                    on_layer(l, readonly(grid[l].copy()))
        n_runs, n_done = sum(left), 0
        if on_plan is not None:
            on_plan(n_runs, _seconds(model, corrupt_ids[:1], hooks, full_pass, T, passes))
        for runs, w in zip(passes, work):
            if cancelled is not None and cancelled():
                raise Cancelled()
            packed = _Runs(heads, model.rotary, corrupt.cache, clean.hidden, corrupt.hidden, runs, cancelled)
            cells, cell_probs = _patched_probs(model, packed, target)
            for (l, p), prob in zip(cells, cell_probs):
                grid[l, p] = prob
                left[l] -= 1
                if not left[l] and on_layer is not None:
                    on_layer(l, readonly(grid[l].copy()))
            done, n_done = done + w, n_done + len(runs)
            if progress is not None:
                progress(f"Patched {n_done} of {n_runs} cells that differ", done / total)
        if progress is not None and not passes:
            progress("Nothing to patch: the two runs are the same", 1.0)
    return Patching(
        readonly(clean_ids),
        readonly(corrupt_ids),
        target,
        clean_prob,
        corrupt_prob,
        readonly(grid),
        heads,
    )
