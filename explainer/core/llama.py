"""A small, readable Llama in plain PyTorch, written to be explained.

One class per idea (RMSNorm, rotary positions, self-attention, SwiGLU MLP, block), shapes in comments, and the
attention softmax written out so every head's weights can be kept. Batch size is always 1, so tensors carry
no batch axis: T = tokens in this call, S = tokens in the cache + T, H = query heads, Hkv = key/value heads,
hd = head dimension, D = model width.

**One layer loop.** ``run_layers`` is the only loop over the blocks. Everything that runs the model goes through
it and observes or changes the pass through ``Hooks`` (TransformerLens' hook points, without copies of the
loop): ``Llama.forward`` records the panels' values, the torch backend writes them straight into the result's
arrays, the ONNX exporter turns them into graph outputs, and the stored-weights graph builder runs the same loop
and the same ``Block.forward`` on symbolic values. Interventions are hooks too:

- head knock-out: ``head_outputs`` zeroes one head's ``hd`` numbers before ``wo`` mixes the heads;
- activation patching: ``residual`` returns another run's residual at (layer, position);
- attribution: the token embeddings passed to ``step`` are a leaf that requires grad (run outside
  ``torch.inference_mode``), and the gradient of a token's log-probability arrives there.

A block is pre-norm: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``; its four parts are passed in, so other
families fit the same loop by choosing parts (GPT-2: LayerNorm, a GELU MLP, biases, learned absolute positions
added at the embedding and no rotary; Qwen2: q/k/v biases).

``Llama.forward`` takes new token ids and a ``KVCache`` holding the keys/values of the tokens before them (a
causal model never needs to recompute those), and returns everything the panels show for the new positions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from explainer.core.gguf_loader import LlamaConfig
from explainer.core.variants import LayerNorm, PlainMLP
from explainer.core.walkthrough import scale_rope_llama3


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):  # (T, D)
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


class Rotary(nn.Module):
    """Rotary position embedding, rotate-half layout: dims i and i + hd/2 form one rotating pair."""

    inv_freq: torch.Tensor  # a buffer (hd/2,): the rotation speed of each pair

    def __init__(self, d_head: int, theta: float, scaling: tuple = ()):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, d_head, 2, dtype=torch.int64).float() / d_head))
        if scaling:  # Llama 3 slows the slow rotations (core.walkthrough.scale_rope_llama3)
            inv_freq = torch.from_numpy(scale_rope_llama3(inv_freq.numpy(), scaling).astype(np.float32))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def tables(self, positions):  # positions: (T,) -> cos, sin: (T, hd)
        freqs = positions.float()[:, None] * self.inv_freq[None, :]  # (T, hd/2)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos(), emb.sin()

    @staticmethod
    def rotate(x, cos, sin):  # x: (heads, T, hd)
        x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
        rotated = torch.cat((-x2, x1), dim=-1)
        return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


@dataclass
class KVCache:
    """Per layer, the rotated keys and the values of every token seen so far: (Hkv, S, hd)."""

    keys: list[torch.Tensor] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)

    @property
    def length(self) -> int:
        return self.keys[0].shape[1] if self.keys else 0

    def truncated(self, n: int) -> KVCache:
        return KVCache([k[:, :n] for k in self.keys], [v[:, :n] for v in self.values])


class HookPoints(Protocol):
    """What ``run_layers`` and the blocks call: ``Hooks`` on tensors, or the stored-weights graph builder's hooks
    on symbolic values (``backends.stored_graph``)."""

    def embedded(self, x): ...
    def attention(self, layer: int, weights) -> None: ...
    def head_outputs(self, layer: int, z): ...
    def residual(self, layer: int, x): ...


class Hooks:
    """The hook points of a forward pass. Each gets the layer (0-based) and a value and returns the value the
    pass continues with (the same object to only observe). The defaults change nothing."""

    def embedded(self, x):  # (T, D): the input embeddings of the new tokens
        return x

    def attention(self, layer: int, weights) -> None:  # (H, T, S): softmax rows of the new queries
        pass

    def head_outputs(self, layer: int, z):  # (H, T, hd): each head's weighted sum of values, before wo
        return z

    def residual(self, layer: int, x):  # (T, D): the residual stream after block `layer`
        return x


class KnockOut(Hooks):
    """Head knock-out (zero ablation, ``core.knockout``): zeroes the knocked-out heads' outputs. Hooks that must
    run on the knocked-out model (recording, patching, gradients) derive from it. Out of place, so gradients flow
    through the other heads."""

    def __init__(self, heads: Iterable[tuple[int, int]] = ()):  # (layer, head), 0-based
        by_layer: dict[int, list[int]] = {}
        for layer, head in heads:
            by_layer.setdefault(layer, []).append(head)
        self._off = {layer: torch.tensor(sorted(hs)) for layer, hs in by_layer.items()}

    def head_outputs(self, layer: int, z):  # (H, T, hd)
        off = self._off.get(layer)
        if off is None:
            return z
        if off.device != z.device:
            off = self._off[layer] = off.to(z.device)
        return z.index_fill(0, off, 0.0)


class Pass:
    """What every layer of one call shares: the new tokens' positions, their rotary tables, the causal mask,
    the cache of the tokens before them (``past``) and the cache being built (``cache``)."""

    def __init__(self, rotary: Rotary | None, start, n: int, past: KVCache | None, device):
        self.positions = torch.arange(start, start + n, device=device)  # (T,) absolute positions
        # no tables for a model with learned positions (they were added to its input embeddings)
        self.cos: torch.Tensor | None = None
        self.sin: torch.Tensor | None = None
        if rotary is not None:
            self.cos, self.sin = rotary.tables(self.positions)
        self.past = past if past is not None and past.keys else None
        self.cache = KVCache()
        key_pos = torch.arange(start + n, device=device)
        self.mask = key_pos[None, :] > self.positions[:, None]  # (T, S): True = a future key, hidden

    def keys_values(self, layer: int, k, v):  # (Hkv, T, hd) new -> (Hkv, S, hd) all, kept in the new cache
        if self.past is not None:
            k = torch.cat((self.past.keys[layer], k), dim=1)
            v = torch.cat((self.past.values[layer], v), dim=1)
        self.cache.keys.append(k)
        self.cache.values.append(v)
        return k, v


class SelfAttention(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.n_heads, self.n_kv, self.hd = cfg.n_heads, cfg.n_kv_heads, cfg.d_head
        self.wq = nn.Linear(cfg.d_model, cfg.n_heads * self.hd, bias=cfg.qkv_bias)  # Qwen2, GPT-2: biases
        self.wk = nn.Linear(cfg.d_model, cfg.n_kv_heads * self.hd, bias=cfg.qkv_bias)
        self.wv = nn.Linear(cfg.d_model, cfg.n_kv_heads * self.hd, bias=cfg.qkv_bias)
        self.wo = nn.Linear(cfg.n_heads * self.hd, cfg.d_model, bias=cfg.o_bias)
        self.rotary = cfg.positions == "rotary"

    def forward(self, x, layer: int, ctx: Pass, hooks: Hooks):
        T = x.shape[0]
        q = self.wq(x).view(T, self.n_heads, self.hd).transpose(0, 1)  # (H, T, hd)
        k = self.wk(x).view(T, self.n_kv, self.hd).transpose(0, 1)  # (Hkv, T, hd)
        v = self.wv(x).view(T, self.n_kv, self.hd).transpose(0, 1)  # (Hkv, T, hd)
        if self.rotary:
            q, k = Rotary.rotate(q, ctx.cos, ctx.sin), Rotary.rotate(k, ctx.cos, ctx.sin)
        k, v = ctx.keys_values(layer, k, v)  # (Hkv, S, hd)
        group = self.n_heads // self.n_kv  # grouped-query attention: each KV head serves `group` query heads
        k_full = k.repeat_interleave(group, dim=0)  # (H, S, hd)
        v_full = v.repeat_interleave(group, dim=0)
        scores = torch.matmul(q, k_full.transpose(1, 2)) * (1.0 / math.sqrt(self.hd))  # (H, T, S)
        scores = scores.masked_fill(ctx.mask, float("-inf"))  # a query never sees later keys
        weights = torch.softmax(scores.float(), dim=-1).to(q.dtype)  # (H, T, S), rows sum to 1
        hooks.attention(layer, weights)
        z = hooks.head_outputs(layer, torch.matmul(weights, v_full))  # (H, T, hd)
        return self.wo(z.transpose(0, 1).reshape(T, self.n_heads * self.hd))


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.w_gate = nn.Linear(cfg.d_model, cfg.d_ff, bias=cfg.mlp_bias)
        self.w_up = nn.Linear(cfg.d_model, cfg.d_ff, bias=cfg.mlp_bias)
        self.w_down = nn.Linear(cfg.d_ff, cfg.d_model, bias=cfg.mlp_bias)

    def forward(self, x):
        return self.w_down(F.silu(self.w_gate(x)) * self.w_up(x))


def make_block(cfg: LlamaConfig) -> Block:
    """A block of the config's family: Llama / Qwen2 (RMSNorm, SwiGLU) or GPT-2 (LayerNorm, GELU MLP)."""
    return Block(make_norm(cfg), SelfAttention(cfg), make_norm(cfg), MLP(cfg) if cfg.mlp == "swiglu" else PlainMLP(cfg))


def make_norm(cfg: LlamaConfig):
    return LayerNorm(cfg.d_model, cfg.norm_eps) if cfg.norm == "layer" else RMSNorm(cfg.d_model, cfg.norm_eps)


class Block(nn.Module):
    """A pre-norm residual block made of its four parts (any callables with these signatures)."""

    def __init__(self, attn_norm, attn, ffn_norm, mlp):
        super().__init__()
        self.attn_norm, self.attn, self.ffn_norm, self.mlp = attn_norm, attn, ffn_norm, mlp

    def forward(self, x, layer: int, ctx, hooks: Hooks):
        x = x + self.attn(self.attn_norm(x), layer, ctx, hooks)
        return x + self.mlp(self.ffn_norm(x))


def run_layers(blocks, final_norm, x, ctx, hooks: HookPoints, first: int = 0):
    """The layer loop: input embeddings ``x (T, D)`` through every block, then the final norm. With ``first > 0``
    the pass resumes there: ``x`` is the residual after block ``first - 1`` (activation patching continues
    another run from a layer without recomputing the layers before it)."""
    if first == 0:
        x = hooks.embedded(x)
    for layer in range(first, len(blocks)):
        x = hooks.residual(layer, blocks[layer](x, layer, ctx, hooks))
    return final_norm(x)


@dataclass
class ForwardOut:
    """Outputs for the T new positions (absolute positions start .. start + T)."""

    embeddings: torch.Tensor  # (T, D) input embeddings
    hidden: list[torch.Tensor]  # L × (T, D): residual stream after each layer
    final_normed: torch.Tensor  # (T, D): last residual after the final RMSNorm
    attention: list[torch.Tensor]  # L × (H, T, S): attention weights of the new queries over all keys
    cache: KVCache  # keys/values of all S tokens


class _Recorder(Hooks):
    """Keeps what ``Llama.forward`` returns, and passes every hook point on to the caller's hooks."""

    def __init__(self, inner: Hooks):
        self.inner = inner
        self.hidden: list[torch.Tensor] = []
        self.weights: list[torch.Tensor] = []

    def embedded(self, x):
        self.embeddings = self.inner.embedded(x)
        return self.embeddings

    def attention(self, layer, weights):
        self.weights.append(weights)
        self.inner.attention(layer, weights)

    def head_outputs(self, layer, z):
        return self.inner.head_outputs(layer, z)

    def residual(self, layer, x):
        x = self.inner.residual(layer, x)
        self.hidden.append(x)
        return x


class Llama(nn.Module):
    def __init__(self, cfg: LlamaConfig, rotary: Rotary | None = None):
        super().__init__()
        self.cfg = cfg
        # an explicit (empty) table skips nn.Embedding's random init: on the meta device (build_model) that init
        # goes through torch's Python reference ops and imports torch._dynamo, 1.3-1.7 s of every model load
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model, _weight=torch.empty(cfg.vocab_size, cfg.d_model))
        self.layers = nn.ModuleList(make_block(cfg) for _ in range(cfg.n_layers))
        self.norm = make_norm(cfg)
        self.pos_embed: nn.Embedding | None = None  # learned absolute positions (GPT-2): (context, D)
        self.rotary: Rotary | None = None  # rotary positions (Llama, Qwen2)
        if cfg.positions == "learned":
            shape = (cfg.context_length, cfg.d_model)
            self.pos_embed = nn.Embedding(*shape, _weight=torch.empty(shape))
        else:
            self.rotary = rotary if rotary is not None else Rotary(cfg.d_head, cfg.rope_theta, cfg.rope_scaling)
        self.lm_head: torch.Tensor | None = None  # None: tied to the input embeddings

    @property
    def unembedding(self) -> torch.Tensor:  # (V, D)
        return self.embed.weight if self.lm_head is None else self.lm_head

    def step(self, x, cache: KVCache | None, hooks: Hooks):
        """Input embeddings ``x (T, D)`` after the ``cache``d tokens -> (final normed (T, D), the new cache)."""
        start = cache.length if cache is not None else 0
        ctx = Pass(self.rotary, start, x.shape[0], cache, x.device)
        if self.pos_embed is not None:  # GPT-2: each position's learned vector joins the token's embedding
            x = x + self.pos_embed(ctx.positions)
        return run_layers(self.layers, self.norm, x, ctx, hooks), ctx.cache

    def forward(self, ids: torch.Tensor, cache: KVCache | None = None, hooks: Hooks | None = None) -> ForwardOut:
        """``ids (T,)``. Runs with gradients unless the caller is in ``torch.inference_mode`` / ``no_grad``."""
        rec = _Recorder(hooks or Hooks())
        normed, new_cache = self.step(self.embed(ids), cache, rec)
        return ForwardOut(rec.embeddings, rec.hidden, normed, rec.weights, new_cache)


LAYER_PARAMS = {  # the loader's names (per layer) -> the module's parameters
    "attn_norm": "attn_norm.weight",
    "ffn_norm": "ffn_norm.weight",
    "wq": "attn.wq.weight",
    "wk": "attn.wk.weight",
    "wv": "attn.wv.weight",
    "wo": "attn.wo.weight",
    "w_gate": "mlp.w_gate.weight",
    "w_up": "mlp.w_up.weight",
    "w_down": "mlp.w_down.weight",
    # where the family has them: LayerNorm biases, projection biases
    "attn_norm_bias": "attn_norm.bias",
    "ffn_norm_bias": "ffn_norm.bias",
    "bq": "attn.wq.bias",
    "bk": "attn.wk.bias",
    "bv": "attn.wv.bias",
    "bo": "attn.wo.bias",
    "b_gate": "mlp.w_gate.bias",
    "b_up": "mlp.w_up.bias",
    "b_down": "mlp.w_down.bias",
}
_TOP = {"embed": "embed.weight", "norm": "norm.weight", "norm_bias": "norm.bias", "pos_embed": "pos_embed.weight"}


def build_model(cfg: LlamaConfig, weights: dict, device: str = "cpu") -> Llama:
    """Create the module around the loader's float32 numpy weights (shared, not copied; no gradients)."""
    # the rotary buffer is computed, not part of the state dict: made outside the meta device (where its
    # arithmetic would run through torch's Python reference ops, which import torch._dynamo: seconds)
    rotary = Rotary(cfg.d_head, cfg.rope_theta, cfg.rope_scaling) if cfg.positions == "rotary" else None
    with torch.device("meta"):  # no allocation and no random init for parameters that are assigned below
        model = Llama(cfg, rotary)
    state = {_TOP[k]: v for k, v in weights.items() if k in _TOP}
    for key, arr in weights.items():
        if key.startswith("layers."):
            _, idx, name = key.split(".", 2)
            state[f"layers.{idx}.{LAYER_PARAMS[name]}"] = arr
    model.load_state_dict(
        {k: torch.from_numpy(np.require(v, requirements="W")) for k, v in state.items()}, strict=True, assign=True
    )
    if "lm_head" in weights:
        model.lm_head = torch.from_numpy(weights["lm_head"])
    model.requires_grad_(False)
    model.eval()
    return model.to(device)


def random_weights(cfg: LlamaConfig, seed: int = 0) -> dict:
    """Random float32 weights in the loader's layout (with the biases, LayerNorm and position table the config's
    family has), for fast tests and demos."""
    rng = np.random.default_rng(seed)

    def w(*shape, scale=None):
        s = scale if scale is not None else 1.0 / math.sqrt(shape[-1])
        return (rng.standard_normal(shape) * s).astype(np.float32)

    def gain(d):
        return (1 + 0.1 * rng.standard_normal(d)).astype(np.float32)

    hd, D, F_ = cfg.d_head, cfg.d_model, cfg.d_ff
    out = {"embed": w(cfg.vocab_size, D, scale=1.0), "norm": np.ones(D, np.float32)}
    if cfg.norm == "layer":
        out["norm_bias"] = w(D, scale=0.1)
    if cfg.positions == "learned":
        out["pos_embed"] = w(cfg.context_length, D, scale=0.5)
    for li in range(cfg.n_layers):
        p = f"layers.{li}."
        out[p + "attn_norm"], out[p + "ffn_norm"] = gain(D), gain(D)
        out[p + "wq"] = w(cfg.n_heads * hd, D, scale=2.0 / math.sqrt(D))
        out[p + "wk"] = w(cfg.n_kv_heads * hd, D, scale=2.0 / math.sqrt(D))
        out[p + "wv"] = w(cfg.n_kv_heads * hd, D)
        out[p + "wo"] = w(D, cfg.n_heads * hd)
        if cfg.mlp == "swiglu":
            out[p + "w_gate"] = w(F_, D)
        out[p + "w_up"] = w(F_, D)
        out[p + "w_down"] = w(D, F_)
        biases = {
            "attn_norm_bias": (cfg.norm == "layer", D),
            "ffn_norm_bias": (cfg.norm == "layer", D),
            "bq": (cfg.qkv_bias, cfg.n_heads * hd),
            "bk": (cfg.qkv_bias, cfg.n_kv_heads * hd),
            "bv": (cfg.qkv_bias, cfg.n_kv_heads * hd),
            "bo": (cfg.o_bias, D),
            "b_gate": (cfg.mlp_bias and cfg.mlp == "swiglu", F_),
            "b_up": (cfg.mlp_bias, F_),
            "b_down": (cfg.mlp_bias, D),
        }
        for name, (present, d) in biases.items():
            if present:
                out[p + name] = w(d, scale=0.1)
    return out
