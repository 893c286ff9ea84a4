"""Attribution: which input tokens a prediction depends on, by input × gradient.

For a target token t predicted after position i, the score of input token j is

    score[j] = Σ_d  e[j, d] · ∂ log P(t | tokens 0..i) / ∂ e[j, d]

where ``e[j]`` is token j's input embedding (the row of the embedding table the model starts from). It is the
first-order estimate of how much the log-probability would change if token j's embedding were removed (set to
zero): positive scores pushed the prediction up, negative ones down. One signed number per token, the start
token included; tokens after i cannot influence the prediction (the model is causal) and score exactly 0.

It needs a backward pass through the model, so it runs on torch with gradients, on demand, from the model's
thread (the worker), with the knocked-out heads of the analysis it explains.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from explainer.core.errors import UserError
from explainer.core.knockout import Head, normalize_heads
from explainer.core.llama import KnockOut
from explainer.core.types import readonly


@dataclass(frozen=True)
class Attribution:
    ids: np.ndarray  # [T] int64: the analysed tokens
    position: int  # the prediction explained is the token that follows this position
    target: int  # the predicted token's id
    target_prob: float  # P(target | tokens 0..position) of the (knocked-out, if any) model
    scores: np.ndarray  # [T] float32: input × gradient of log P(target); 0 after ``position``
    ablated: tuple[Head, ...] = ()  # heads knocked out, 0-based


class _Leaf(KnockOut):
    """Makes the input embeddings a leaf that collects the gradient (with any knocked-out heads)."""

    def embedded(self, x):
        self.x = x.detach().requires_grad_()
        return self.x


def check_target(target: int, vocab_size: int) -> int:
    if not 0 <= int(target) < vocab_size:
        raise UserError(f"The target token id {target} is outside the vocabulary (0 to {vocab_size - 1}).")
    return int(target)


def logprob_gradient(unembedding: torch.Tensor, probs: torch.Tensor, target: int, chunk: int = 1024):
    """``d log P(target) / d h`` for logits ``unembedding @ h``: ``(1 - p_t) E[t] - Σ_{v≠t} p_v E[v]`` (float64).

    Written out rather than left to autograd, whose float32 product over the 49k-token vocabulary computes
    ``E[t] - Σ_v p_v E[v]``: for a confident prediction (p_t near 1) the two terms nearly cancel and the rounding
    of the sum (~1e-6) became ~1e-4 of every score. Here the target's term is left out of the sum, which is
    accumulated in float64 over chunks of the vocabulary."""
    others = probs.clone()
    others[target] = 0
    acc = torch.zeros(unembedding.shape[1], dtype=torch.float64, device=unembedding.device)
    for a in range(0, unembedding.shape[0], chunk):
        acc += (others[a : a + chunk].to(unembedding.dtype) @ unembedding[a : a + chunk]).double()
    return (1.0 - probs[target]) * unembedding[target].double() - acc


def attribute(
    engine,
    ids,
    *,
    target: int | None = None,
    position: int | None = None,
    ablated: Iterable[Head] = (),
) -> Attribution:
    """Input × gradient for the token that follows ``position`` (default: the last) of ``ids`` (the analysed ids,
    e.g. ``result.ids``). ``target``: the token id to explain (default: the model's most likely next token).
    ``ablated``: heads ``(layer, head)``, 0-based, knocked out. Call it on the model's thread."""
    ids = np.array(ids, np.int64)  # an own, writable copy (torch shares its memory)
    T = len(ids)
    if T == 0:
        raise UserError("There are no tokens to attribute; type some text (or keep the start token).")
    position = T - 1 if position is None else int(position)
    if not 0 <= position < T:
        raise IndexError(f"position {position} is outside the {T} tokens")
    cfg, model = engine.cfg, engine.model
    heads = normalize_heads(ablated, cfg.n_layers, cfg.n_heads)
    if target is not None:
        target = check_target(target, cfg.vocab_size)
    device, unembedding = model.embed.weight.device, model.unembedding.float()
    hooks = _Leaf(heads)
    with torch.inference_mode(False), torch.enable_grad():
        x = model.embed(torch.as_tensor(ids[: position + 1], device=device))
        normed, _ = model.step(x, None, hooks)
        last = normed[-1]
        with torch.no_grad():
            probs = torch.softmax((unembedding @ last.detach().float()).double(), dim=-1)  # [V]
            if target is None:
                target = int(torch.argmax(probs))
            top_grad = logprob_gradient(unembedding, probs, target)
        (grad,) = torch.autograd.grad(last, hooks.x, grad_outputs=top_grad.to(last.dtype))
    scores = np.zeros(T, np.float32)
    scores[: position + 1] = (hooks.x.detach() * grad).sum(-1).float().cpu().numpy()
    return Attribution(readonly(ids), position, target, float(probs[target]), readonly(scores), heads)
