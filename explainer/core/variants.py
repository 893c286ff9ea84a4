"""Where Qwen2 and GPT-2 differ from Llama, one small piece per difference (the readable model in ``llama.py``
picks them by its config):

- normalisation: Llama and Qwen2 use RMSNorm (a gain); GPT-2 uses LayerNorm (subtract the mean, divide by the
  standard deviation, then a gain and a bias);
- the MLP: Llama and Qwen2 use SwiGLU, ``down(silu(gate x) * up x)``; GPT-2 a plain one, ``down(gelu(up x))``
  with biases, where GELU is the tanh approximation (``gelu_new``);
- positions: Llama and Qwen2 rotate queries and keys (RoPE; Llama 3 stretches the slow rotations for long
  contexts); GPT-2 adds a learned position vector to each input embedding instead;
- biases: Qwen2 on the query, key and value projections; GPT-2 on every projection.

The same normalisations and rotations in float64 numpy, for the walk-through and the logit lens, which redo
the model's arithmetic from a result, are in ``lens.py`` and ``walkthrough.py`` (no torch there).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from explainer.core.gguf_loader import LlamaConfig


class LayerNorm(nn.Module):
    """GPT-2's LayerNorm: ``(x - mean) / sqrt(var + eps) * weight + bias`` over the model width."""

    def __init__(self, d: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.bias = nn.Parameter(torch.zeros(d))
        self.eps = eps

    def forward(self, x):  # (T, D)
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)


def activation(name: str):
    """The MLP's non-linearity by config name."""
    if name == "silu":
        return F.silu
    if name == "gelu_tanh":
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "gelu":
        return F.gelu
    raise ValueError(f"unknown activation {name!r}")


class PlainMLP(nn.Module):
    """GPT-2's MLP: ``down(act(up x))``, with biases when the config says so."""

    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.w_up = nn.Linear(cfg.d_model, cfg.d_ff, bias=cfg.mlp_bias)
        self.w_down = nn.Linear(cfg.d_ff, cfg.d_model, bias=cfg.mlp_bias)
        self.act = activation(cfg.activation)

    def forward(self, x):
        return self.w_down(self.act(self.w_up(x)))
