"""What transformers computes for one token sequence, and element-wise comparisons that name what differs.

The reference keeps the float32 logits with their float64 log-sum-exp (so the probability of any id can be
looked up), the residual stream before every layer and after the last one (transformers' last hidden state is
already through the final norm, so the residual is taken at the norm's input), the final-normed rows and the
attention weights of every layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

LN2 = float(np.log(2.0))


@dataclass(frozen=True)
class Tolerance:
    """Element-wise ``|got - ref| <= atol + rtol·|ref|``."""

    rtol: float
    atol: float

    def __add__(self, other: Tolerance) -> Tolerance:
        return Tolerance(self.rtol + other.rtol, self.atol + other.atol)


@dataclass
class Reference:
    ids: list[int]
    logits: np.ndarray  # [T, V] float32
    lse: np.ndarray  # [T] float64: log Σ exp(logits) per row
    top_ids: np.ndarray  # [T, K] int64, best first
    entropy_bits: np.ndarray  # [T] float64
    residual: np.ndarray  # [L+1, T, D] float32: embeddings, then after each layer (the last before the final norm)
    final_normed: np.ndarray  # [T, D] float32
    attention: list[np.ndarray]  # L × [H, T, T] float32

    def probs(self, rows: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """float64 P(ids[r, j] follows position rows[r]); ``ids`` is ``[len(rows), k]``."""
        z = np.take_along_axis(self.logits[rows], ids, -1).astype(np.float64)
        return np.exp(z - self.lse[rows, None])

    def token_prob(self) -> np.ndarray:
        """``[T-1]`` float64: P(ids[i]) given ids[:i], for i = 1..T-1."""
        T = len(self.ids)
        nxt = np.asarray(self.ids[1:], np.int64)[:, None]
        return self.probs(np.arange(T - 1), nxt)[:, 0]

    def top_probs(self) -> np.ndarray:
        return self.probs(np.arange(len(self.ids)), self.top_ids)


@torch.no_grad()
def compute(hf_model, ids: list[int], k: int = 64, rows_per_chunk: int = 128) -> Reference:
    residual_in_norm = []
    hook = hf_model.model.norm.register_forward_pre_hook(lambda _m, args: residual_in_norm.append(args[0]))
    try:
        out = hf_model(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)
    finally:
        hook.remove()
    logits = out.logits[0].float()
    T = logits.shape[0]
    lse, entropy, top = np.empty(T), np.empty(T), np.empty((T, k), np.int64)
    for a in range(0, T, rows_per_chunk):  # float64 [rows, V] at a time
        logp = torch.log_softmax(logits[a : a + rows_per_chunk].double(), -1)
        lse[a : a + rows_per_chunk] = torch.logsumexp(logits[a : a + rows_per_chunk].double(), -1).numpy()
        entropy[a : a + rows_per_chunk] = (-(logp.exp() * logp).sum(-1) / LN2).numpy()
        top[a : a + rows_per_chunk] = torch.topk(logp, k, -1).indices.numpy()
    hidden = [h[0] for h in out.hidden_states[:-1]] + [residual_in_norm[0][0]]
    return Reference(
        ids=list(ids),
        logits=logits.numpy(),
        lse=lse,
        top_ids=top,
        entropy_bits=entropy,
        residual=torch.stack(hidden).numpy(),
        final_normed=out.hidden_states[-1][0].numpy(),
        attention=[a[0].numpy() for a in out.attentions],
    )


class Mismatches:
    """Collects every comparison that fails, so one test run reports all of them at once."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def close(self, what: str, got, ref, tol: Tolerance, scale=None) -> None:
        """Element-wise ``|got - ref| <= tol.atol + tol.rtol·(|ref| + scale)``; ``scale`` (broadcast against
        ``ref``) widens the relative part where an element's own size is not the right measure."""
        got = np.asarray(got, np.float64 if np.asarray(ref).dtype == np.float64 else np.float32)
        ref = np.asarray(ref)
        if got.shape != ref.shape:
            self.messages.append(f"{what}: shape {got.shape}, transformers {ref.shape}")
            return
        size = np.abs(ref) if scale is None else np.abs(ref) + scale
        allowed = tol.atol + tol.rtol * size
        diff = np.abs(got - ref)
        bad = ~(diff <= allowed)  # NaN counts as a mismatch
        if bad.any():
            worst = np.unravel_index(int(np.argmax(np.where(bad, diff / allowed, 0.0))), ref.shape)
            self.messages.append(
                f"{what}: {int(bad.sum())} of {ref.size} elements out of tolerance (rtol {tol.rtol:.3g}, "
                f"atol {tol.atol:.3g}); worst at {tuple(int(i) for i in worst)}: {float(got[worst]):.7g} vs "
                f"transformers {float(ref[worst]):.7g} (allowed ±{float(allowed[worst]):.3g})"
            )

    def equal(self, what: str, got, ref) -> None:
        got, ref = np.asarray(got), np.asarray(ref)
        if got.shape != ref.shape or not (got == ref).all():
            self.messages.append(f"{what}: {got.tolist()[:40]} vs transformers {ref.tolist()[:40]}")

    def check(self, what: str, ok: bool, detail: str = "") -> None:
        if not ok:
            self.messages.append(f"{what} {detail}".strip())

    def report(self) -> str:
        return "\n".join(self.messages)
