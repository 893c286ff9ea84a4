"""The forward-pass interface the Engine delegates to.

A backend runs the model on *new* token ids given a cache of the keys/values of the tokens before them, and
returns, for the new positions only, what the analysis needs as float32 numpy arrays. The engine owns
everything else: tokenization, the incremental bookkeeping, next-token statistics and the result object.

Shapes: ``n`` new tokens, ``P`` cached tokens, ``S = P + n``; ``L`` layers, ``H`` query heads, ``D`` width.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class RowStats:
    lse: np.ndarray  # [n] float64: log Σ exp(logits) (a later edit's token is scored against it)
    entropy_bits: np.ndarray  # [n] float32
    top_ids: np.ndarray  # [n, k] int64, best first
    top_probs: np.ndarray  # [n, k] float32
    next_logp: np.ndarray  # [n] float64: log P(next_ids[i]) (natural log); NaN where next_ids[i] < 0

    @classmethod
    def empty(cls, n: int, k: int) -> RowStats:
        return cls(
            np.empty(n, np.float64),
            np.empty(n, np.float32),
            np.empty((n, k), np.int64),
            np.empty((n, k), np.float32),
            np.full(n, np.nan, np.float64),
        )


@dataclass
class Step:
    """What one forward call returns for its ``n`` new positions."""

    hidden: np.ndarray  # [L+1, n, D] float32: input embeddings, then the residual after every layer
    final_normed: np.ndarray  # [n, D] float32: the last residual after the final RMSNorm
    attention: np.ndarray  # [L, H, n, S] (float32 unless asked otherwise): new queries over all S keys
    cache: Any  # the backend's key/value cache for all S tokens; pass it to the next call


class Backend(ABC):
    """One way of running the forward pass. Not thread-safe: one engine, one thread."""

    name: str = "?"  # "torch" or "onnx": what results and the UI show

    @property
    def label(self) -> str:
        """A short description for a status bar, such as ``onnx (CPUExecutionProvider)``."""
        return self.name

    #: A sentence for the status bar when something fell back (a provider failed); None when all is well.
    notice: str | None = None

    #: Heads ``(layer, head)``, 0-based, whose outputs this backend's passes zero (head knock-out). A backend object
    #: serves one set of heads, so the engine never continues a clean cache with a knocked-out pass or the reverse.
    knocked_out: tuple[tuple[int, int], ...] = ()

    def knocking_out(self, heads: tuple[tuple[int, int], ...]) -> Backend | None:
        """A backend running the same model with ``heads``' outputs zeroed (the model's other numbers unchanged),
        or None when this backend has no place to zero them (the engine then knocks heads out with torch)."""
        return None

    @abstractmethod
    def forward(self, ids: np.ndarray, cache: Any | None, attention_dtype=np.float32) -> Step:
        """Run ``ids`` ([n] int64) after the ``cache``d tokens (None: no tokens before them); the attention
        comes back as ``attention_dtype`` (float16 for long texts: see ``engine.FP32_ROWS``)."""

    #: When the backend computes the unembedding itself (with the output matrix as stored):
    #: ``row_stats(normed [n, D], next_ids, k) -> RowStats`` (the engine's next-token statistics) and
    #: ``probabilities(normed) -> [n, V]``. None: the engine multiplies by its float32 table.
    row_stats: Callable[[np.ndarray, np.ndarray, int], RowStats] | None = None
    probabilities: Callable[[np.ndarray], np.ndarray] | None = None

    @abstractmethod
    def cache_length(self, cache: Any | None) -> int:
        """How many tokens ``cache`` holds."""

    @abstractmethod
    def truncate(self, cache: Any, n: int) -> Any:
        """The cache of the first ``n`` tokens. The engine keeps a single live cache at a time, so a backend
        may reuse the memory of the longer cache (later calls overwrite positions ``n`` onward)."""
