"""Logit lens: what the model would predict if it stopped after layer l.

For one position, each residual-stream vector ``hidden[l]`` (l = 0: the input embedding; l ≥ 1: after layer l)
goes through the model's own final norm (RMSNorm, or GPT-2's LayerNorm) and unembedding, exactly as the last layer's does, and the softmax
gives a next-token distribution per layer. At l = L this *is* the model's output. Early layers were never
trained to be read this way, so their guesses are rough (often the current token itself): watching the right
answer rise through the layers is the point.

Also: nearest neighbours in the input-embedding table (from ``core.projection`` when present).
No Qt here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explainer.core.numerics import entropy_bits, softmax
from explainer.core.projection import nearest_neighbours

__all__ = ["LensResult", "logit_lens", "rms_norm", "nearest_neighbours", "embedding_table_of"]


@dataclass(frozen=True)
class LensResult:
    """Per layer ``l = 0..L`` (row 0: input embedding, row l: after layer l), for one position.

    ``next_id`` is the token that actually follows the position in the text (-1 at the last position);
    ``next_rank`` is its rank (1 = top guess) and ``next_prob`` its probability per layer (-1 / NaN when there is
    no next token)."""

    position: int
    top_ids: np.ndarray  # [L+1, k] int64, best first
    top_probs: np.ndarray  # [L+1, k] float32
    next_id: int
    next_rank: np.ndarray  # [L+1] int64
    next_prob: np.ndarray  # [L+1] float32
    entropy_bits: np.ndarray  # [L+1] float32

    @property
    def n_rows(self) -> int:
        return self.top_ids.shape[0]


def rms_norm(x: np.ndarray, gain: np.ndarray, eps: float) -> np.ndarray:
    """``gain * x / sqrt(mean(x²) + eps)`` over the last axis, in float64 (RMSNorm)."""
    x = np.asarray(x, np.float64)
    return np.asarray(gain, np.float64) * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps))


def layer_norm(x: np.ndarray, gain: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """``gain * (x - mean) / sqrt(var + eps) + bias`` over the last axis, in float64 (LayerNorm)."""
    x = np.asarray(x, np.float64)
    c = x - x.mean(axis=-1, keepdims=True)
    return np.asarray(gain, np.float64) * (c / np.sqrt(np.mean(c * c, axis=-1, keepdims=True) + eps)) + np.asarray(
        bias, np.float64
    )


def normalise(x: np.ndarray, gain: np.ndarray, bias: np.ndarray | None, eps: float) -> np.ndarray:
    """LayerNorm when there is a bias (GPT-2), else RMSNorm."""
    return rms_norm(x, gain, eps) if bias is None else layer_norm(x, gain, bias, eps)


def logit_lens(result, position: int, k: int = 5) -> LensResult:
    """The logit lens at ``position`` of an ``AnalysisResult`` (needs ``result.weights`` for the final norm)."""
    if result.weights is None:
        raise ValueError("the logit lens needs the model's weights (result.weights is None)")
    T = result.n_tokens
    if not 0 <= position < T:
        raise IndexError(f"position {position} is outside 0..{T - 1}")
    w = result.weights
    x = result.hidden[:, position, :]  # [L+1, D]
    normed = normalise(x, w.final_norm, w.final_norm_bias, w.norm_eps).astype(np.float32)
    z = normed @ np.asarray(result.unembedding, np.float32).T  # [L+1, V] logits
    p = softmax(z, dtype=np.float32)
    del z
    k = max(1, min(k, p.shape[1]))
    top = np.argpartition(-p, k - 1, axis=-1)[:, :k]
    order = np.argsort(-np.take_along_axis(p, top, -1), axis=-1, kind="stable")
    top = np.take_along_axis(top, order, -1)
    top_p = np.take_along_axis(p, top, -1)
    ent = entropy_bits(p)
    rows = p.shape[0]
    if position + 1 < T:
        nid = int(result.ids[position + 1])
        np_ = p[:, nid]
        rank = 1 + (p > np_[:, None]).sum(-1)
    else:
        nid, np_, rank = -1, np.full(rows, np.nan), np.full(rows, -1)
    return LensResult(
        position,
        _ro(top.astype(np.int64)),
        _ro(top_p.astype(np.float32)),
        nid,
        _ro(np.asarray(rank, np.int64)),
        _ro(np.asarray(np_, np.float32)),
        _ro(ent.astype(np.float32)),
    )


def embedding_table_of(result) -> np.ndarray | None:
    """The input-embedding table, when the result's unembedding is tied to it (checked on the result's own
    tokens: ``hidden[0]`` holds their input embeddings; with learned positions, as in GPT-2, it also holds the
    position vectors, so the model's own word is taken); else None."""
    U, ids = result.unembedding, np.asarray(result.ids)
    if U is None or ids.size == 0 or result.hidden.shape[-1] != U.shape[1]:
        return None
    if getattr(result.model, "positions", "rotary") == "learned":
        return U if getattr(result.model, "tied", False) else None
    return U if np.allclose(U[ids], result.hidden[0], atol=1e-6) else None


def _ro(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a
