"""The residual stream of a result, ``[L+1, T, D]`` float32, stored as immutable blocks of positions.

Results of successive keystrokes share their unchanged blocks: an update adds a block with the new positions and
copies nothing else. (One array per result meant copying the whole stream on every keystroke: 9 MB at 128 tokens,
36 MB at 512, and on a machine that hands freed memory back, faulting those pages in again cost more than the
model's own step.) It reads like the array: ``r[l]`` is layer ``l`` ``[T, D]``, ``r[:, t]`` one position through
the layers ``[L+1, D]``, ``r[: l + 1, t]``, ``r[:, a:b, :]``; ``np.asarray(r)`` assembles the whole array (as
other ndarray attributes do: ``r.astype(...)``, ``r.mean()``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def readonly(a: np.ndarray) -> np.ndarray:
    """Return ``a`` (no copy) with its write flag cleared."""
    a = np.asarray(a)
    a.flags.writeable = False
    return a


def seal_blocks(
    blocks: Sequence[np.ndarray], axis: int, misfit: Callable[[np.ndarray, int], bool], fits: str
) -> tuple[tuple[np.ndarray, ...], tuple[int, ...], int]:
    """Blocks that follow each other along ``axis``, made read-only (results share them): the blocks, where each
    starts and the total length. ``misfit(block, start)`` is True for a block that does not continue the others;
    the ValueError then says the block's shape and ``fits``."""
    starts, n = [], 0
    for b in blocks:
        if misfit(b, n):
            raise ValueError(f"block of shape {b.shape} ({b.dtype}) {fits}")
        readonly(b)
        starts.append(n)
        n += b.shape[axis]
    return tuple(blocks), tuple(starts), n


def compaction_groups(
    sizes: Sequence[int], per_block: int, joins: Callable[[int, int], bool] = lambda _first, _i: True
) -> list[list[int]]:
    """Which blocks to merge when many one-token updates have left many small ones: the indices of blocks with
    ``sizes`` (positions along the blocks' axis) in groups, a block of ``per_block`` or more alone, runs of
    smaller ones together until they hold ``per_block``. ``joins(first, i)``: block ``i`` may join the run that
    starts at block ``first``."""
    groups: list[list[int]] = []
    run: list[int] = []
    for i, size in enumerate(sizes):
        if size >= per_block:
            if run:
                groups.append(run)
            groups.append([i])
            run = []
            continue
        if run and not joins(run[0], i):
            groups.append(run)
            run = []
        run.append(i)
        if sum(sizes[j] for j in run) >= per_block:
            groups.append(run)
            run = []
    if run:
        groups.append(run)
    return groups


class Residuals:
    """``[L+1, T, D]`` float32 as blocks ``[L+1, n_i, D]`` of consecutive positions (module docstring)."""

    __slots__ = ("_blocks", "_starts", "shape")
    dtype = np.dtype(np.float32)
    ndim = 3

    def __init__(self, blocks: Sequence[np.ndarray]):
        if not blocks:
            raise ValueError("residuals need at least one block (it may have no positions)")
        first = blocks[0]

        def misfit(b: np.ndarray, _start: int) -> bool:
            return b.ndim != 3 or b.dtype != np.float32 or (b.shape[0], b.shape[2]) != (first.shape[0], first.shape[2])

        self._blocks, self._starts, t = seal_blocks(blocks, 1, misfit, f"does not fit {first.shape}")
        self.shape = (first.shape[0], t, first.shape[2])

    @property
    def blocks(self) -> tuple[np.ndarray, ...]:
        return self._blocks

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self._blocks)

    def __len__(self) -> int:
        return self.shape[0]

    def truncated(self, n: int) -> Residuals:
        """The first ``n`` positions (shares memory)."""
        out = [b[:, : max(0, n - s)] for s, b in zip(self._starts, self._blocks) if s < n]
        return Residuals(out or [self._blocks[0][:, :0]])

    def compacted(self, max_blocks: int = 32, positions_per_block: int = 64) -> Residuals:
        """Runs of small blocks (left by many one-token updates) merged into blocks of about
        ``positions_per_block`` positions, so reads stay fast. Returns ``self`` when there are few blocks."""
        if len(self._blocks) <= max_blocks:
            return self
        bs = self._blocks
        groups = compaction_groups([b.shape[1] for b in bs], positions_per_block)
        return Residuals([bs[g[0]] if len(g) == 1 else np.concatenate([bs[i] for i in g], axis=1) for g in groups])

    def _positions(self, start: int, stop: int, layers) -> np.ndarray:
        """``self[layers, start:stop]`` for positions ``0 <= start <= stop <= T`` (a view when one block holds
        them all)."""
        parts = []
        for s, b in zip(self._starts, self._blocks):
            a, e = max(start - s, 0), min(stop - s, b.shape[1])
            if a < e:
                parts.append(b[layers, a:e])
        if not parts:
            return self._blocks[0][layers, :0]
        axis = 0 if parts[0].ndim == 2 else 1  # an integer layer drops the layer axis
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=axis)

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        if len(key) > 3 or any(k is Ellipsis or k is None for k in key):
            return np.asarray(self)[key]
        layers, where, dims = (*key, slice(None), slice(None))[:3]
        T = self.shape[1]
        if isinstance(where, (int, np.integer)):
            t = int(where) + (T if where < 0 else 0)
            if not 0 <= t < T:
                raise IndexError(f"position {where} is outside 0..{T - 1}")
            i = int(np.searchsorted(self._starts, t, side="right")) - 1  # the last block starting at or before t
            return readonly(np.asarray(self._blocks[i][layers, t - self._starts[i]])[..., dims])
        if isinstance(where, slice) and where.step in (None, 1):
            start, stop, _ = where.indices(T)
            return readonly(np.asarray(self._positions(start, max(start, stop), layers))[..., dims])
        return np.asarray(self)[key]

    def __array__(self, dtype=None, copy=None):
        if len(self._blocks) == 1:
            out = self._blocks[0].copy() if copy else self._blocks[0]
        else:
            out = np.concatenate(self._blocks, axis=1)
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getattr__(self, name: str):
        """Any other ndarray attribute (``astype``, ``mean``, ``T``…) of the assembled array."""
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(np.asarray(self), name)

    def copy(self) -> np.ndarray:
        """The whole stream as one new (writable) array."""
        return np.array(np.asarray(self))

    def __repr__(self) -> str:
        return f"Residuals(shape={self.shape}, blocks={len(self._blocks)})"
