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
- all positions of one layer run as one pass: each patched run's rows are packed side by side, each with its own
  causal mask over the cached keys before its p and its own rows (``_Runs``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch

from explainer.core.attribution import check_target
from explainer.core.errors import Cancelled, UserError
from explainer.core.knockout import Head, KnockOut, normalize_heads
from explainer.core.llama import KVCache, run_layers
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


class _Runs:
    """The shared context of several patched runs packed into one pass (``llama.Pass``'s interface). Row r
    belongs to the run that patches position ``owner[r]`` and sits at absolute position ``pos[r]``; its keys are
    the corrupted run's cached keys before ``owner[r]`` and its own run's new keys up to ``pos[r]``."""

    def __init__(self, rotary, pos: torch.Tensor, owner: torch.Tensor, cache: KVCache, T: int):
        self.cos, self.sin = rotary.tables(pos)
        self.cache = cache
        cached = torch.arange(T, device=pos.device)[None, :] < owner[:, None]  # (n, T)
        own = (owner[None, :] == owner[:, None]) & (pos[None, :] <= pos[:, None])  # (n, n)
        self.mask = ~torch.cat((cached, own), dim=1)  # True = hidden

    def keys_values(self, layer: int, k, v):
        return torch.cat((self.cache.keys[layer], k), dim=1), torch.cat((self.cache.values[layer], v), dim=1)


def _groups(starts: list[int], T: int, max_rows: int) -> list[list[int]]:
    """``starts`` split into runs of at most ``max_rows`` packed rows (a run from p has T - p rows)."""
    out: list[list[int]] = []
    rows = max_rows
    for p in starts:
        if rows + T - p > max_rows:
            out.append([])
            rows = 0
        out[-1].append(p)
        rows += T - p
    return out


def _patched_probs(model, layer: int, starts: list[int], clean_h, corrupt_h, cache, hooks, target: int) -> np.ndarray:
    """P(target) at the last position of the corrupted runs patched after block ``layer`` at each of ``starts``."""
    T, dev = corrupt_h.shape[0], corrupt_h.device
    pos = torch.cat([torch.arange(p, T, device=dev) for p in starts])
    owner = torch.cat([torch.full((T - p,), p, device=dev) for p in starts])
    x = corrupt_h[pos]
    first_rows = pos == owner
    x[first_rows] = clean_h[pos[first_rows]]
    normed = run_layers(model.layers, model.norm, x, _Runs(model.rotary, pos, owner, cache, T), hooks, first=layer + 1)
    logits = normed[pos == T - 1].float() @ model.unembedding.float().T  # one row per run, in the order of starts
    return torch.softmax(logits.double(), dim=-1)[:, target].cpu().numpy()


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
    max_rows: int = MAX_ROWS,
) -> Patching:
    """The layers × positions grid for two token sequences of the same length (analysed ids, start token
    included). Call it on the model's thread.

    ``progress(message, fraction)`` after each layer (it may raise to stop); ``cancelled()`` is asked before
    every pass and a True stops with :class:`~explainer.core.errors.Cancelled`; ``on_layer(layer, row)`` gets each
    finished row ``[T]`` (0-based layer) for a heatmap that fills while it runs. ``ablated``: heads knocked out
    in every run. Different lengths: UserError giving both token counts."""
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
        corrupt = model(torch.as_tensor(corrupt_ids, device=dev), hooks=hooks)
        ends = torch.stack((clean.final_normed[-1], corrupt.final_normed[-1])).float()
        probs = torch.softmax((ends @ model.unembedding.float().T).double(), dim=-1)
        if target is None:
            target = int(torch.argmax(probs[0]))
        clean_prob, corrupt_prob = float(probs[0, target]), float(probs[1, target])
        # positions where the patch changes something, per layer, and the work each layer's passes take
        differ = [torch.nonzero((clean.hidden[l] != corrupt.hidden[l]).any(-1))[:, 0].tolist() for l in range(L)]
        work = [(L - l) * sum(T - p for p in differ[l]) + 1 for l in range(L)]
        total, done = float(sum(work)), 0
        grid = np.full((L, T), corrupt_prob, np.float32)
        for l in range(L):
            for starts in _groups(differ[l], T, max_rows):
                if cancelled is not None and cancelled():
                    raise Cancelled()
                grid[l, starts] = _patched_probs(
                    model, l, starts, clean.hidden[l], corrupt.hidden[l], corrupt.cache, hooks, target
                )
            done += work[l]
            if on_layer is not None:
                on_layer(l, readonly(grid[l].copy()))
            if progress is not None:
                progress(f"Patching after layer {l + 1} of {L}", done / total)
    return Patching(
        readonly(clean_ids),
        readonly(corrupt_ids),
        target,
        clean_prob,
        corrupt_prob,
        readonly(grid),
        heads,
    )
