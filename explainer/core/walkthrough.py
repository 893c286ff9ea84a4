"""Attention walk-through: one head's computation for one query, redone step by step from the model's numbers.

From ``result.hidden[layer]`` (the residual stream entering the layer) and that layer's weights:

1. ``x = RMSNorm(residual) * attn_norm`` for every token (GPT-2: LayerNorm, with its bias);
2. ``q = Wq x`` (this query head's rows, plus its bias where the model has one: Qwen2, GPT-2), ``k = Wk x`` and
   ``v = Wv x`` (the key/value head it shares: with grouped-query attention, query head ``h`` uses key/value
   head ``h // (H / Hkv)``);
3. rotary positions (RoPE, rotate-half layout): dims ``i`` and ``i + hd/2`` form a pair that is rotated by the
   angle ``position × θ^(−2i/hd)``; queries and keys both, so ``q·k`` depends only on their distance. A model
   with learned positions (GPT-2) skips this step: its position vectors were added to the input embeddings;
4. ``scores = q·k`` for every key, ``scaled = scores / √d_k``; the causal mask sets keys after the query to −∞;
5. ``weights = softmax(scaled)``; ``output = Σ weights × v`` (the head's output, before ``wo`` mixes the heads).

Computed in float64, so it matches the model's own float32 attention to ~1e-6. No Qt here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from explainer.core.lens import normalise
from explainer.core.numerics import softmax


@dataclass(frozen=True)
class Walkthrough:
    """All intermediate values for (layer, head, query). ``T`` = tokens, ``hd`` = head dimension. Keys after the
    query are included in ``scores``/``scaled`` (as if unmasked), −inf in ``masked`` and 0 in ``weights``."""

    layer: int
    head: int
    kv_head: int
    query: int
    d_head: int
    x: np.ndarray  # [T, D] normalised residual (attn_norm applied)
    q_pre: np.ndarray  # [hd] query before rotary
    q: np.ndarray  # [hd] query after rotary
    k_pre: np.ndarray  # [T, hd] keys before rotary
    k: np.ndarray  # [T, hd] keys after rotary
    v: np.ndarray  # [T, hd] values
    scores: np.ndarray  # [T] q·k
    scaled: np.ndarray  # [T] q·k / √d_k
    masked: np.ndarray  # [T] scaled, −inf after the query
    weights: np.ndarray  # [T] softmax(masked): rows sum to 1, 0 after the query
    output: np.ndarray  # [hd] weights @ v
    inv_freq: np.ndarray  # [hd/2] rotation speed of each pair (radians per position); [0] with learned positions

    @property
    def n_tokens(self) -> int:
        return self.scores.shape[0]

    @property
    def scale(self) -> float:
        return math.sqrt(self.d_head)

    def angle(self, position: int) -> np.ndarray:
        """``[hd/2]`` rotation angles (radians) applied at ``position``."""
        return position * self.inv_freq


def scale_rope_llama3(inv_freq: np.ndarray, scaling: tuple) -> np.ndarray:
    """Llama 3's rotary scaling: rotations slower than ``original_context / low_freq_factor`` positions per turn
    are slowed by ``factor``, those faster than ``original_context / high_freq_factor`` are kept, and the ones in
    between are blended linearly in ``original_context / wavelength``."""
    _, factor, low, high, original = scaling
    inv_freq = np.asarray(inv_freq, np.float64)
    wavelength = 2 * math.pi / inv_freq
    slow = wavelength > original / low
    fast = wavelength < original / high
    blend = (original / wavelength - low) / (high - low)  # 0 at the slow edge, 1 at the fast edge
    medium = (1 - blend) * inv_freq / factor + blend * inv_freq
    return np.where(slow, inv_freq / factor, np.where(fast, inv_freq, medium))


def rope_inv_freq(d_head: int, theta: float, scaling: tuple = ()) -> np.ndarray:
    """``[hd/2]`` float64: how many radians pair i turns per position, ``θ^(−2i/hd)``, with the config's scaling."""
    inv = 1.0 / (theta ** (np.arange(0, d_head, 2, dtype=np.float64) / d_head))
    return scale_rope_llama3(inv, scaling) if scaling else inv


def apply_rope(x: np.ndarray, positions: np.ndarray, theta: float, scaling: tuple = ()) -> np.ndarray:
    """Rotate ``x [..., T, hd]`` (rotate-half layout) by ``positions [T]``."""
    hd = x.shape[-1]
    freqs = np.asarray(positions, np.float64)[:, None] * rope_inv_freq(hd, theta, scaling)[None, :]  # [T, hd/2]
    emb = np.concatenate([freqs, freqs], axis=-1)  # [T, hd]
    x1, x2 = x[..., : hd // 2], x[..., hd // 2 :]
    rotated = np.concatenate([-x2, x1], axis=-1)
    return x * np.cos(emb) + rotated * np.sin(emb)


def walkthrough(result, layer: int, head: int, query: int) -> Walkthrough:
    """Recompute head ``head`` of layer ``layer`` (0-based) for the token at ``query``."""
    if result.weights is None:
        raise ValueError("the walk-through needs the model's weights (result.weights is None)")
    info = result.model
    T = result.n_tokens
    if not 0 <= layer < info.n_layers or not 0 <= head < info.n_heads or not 0 <= query < T:
        raise IndexError(f"(layer {layer}, head {head}, query {query}) is outside the model or the text")
    wv_ = result.weights
    w = wv_.layer(layer)
    hd, group = info.d_head, info.n_heads // info.n_kv_heads
    kv = head // group
    x = normalise(result.hidden[layer], w["attn_norm"], w.get("attn_norm_bias"), wv_.norm_eps)  # [T, D] float64
    qs, ks = slice(head * hd, (head + 1) * hd), slice(kv * hd, (kv + 1) * hd)

    def project(name: str, rows: slice, inputs: np.ndarray) -> np.ndarray:
        out = inputs @ np.asarray(w[name][rows], np.float64).T  # [.., hd]
        bias = w.get("b" + name[1:])  # bq / bk / bv where the model has them
        return out if bias is None else out + np.asarray(bias[rows], np.float64)

    q_pre = project("wq", qs, x[query])  # [hd]
    k_pre = project("wk", ks, x)  # [T, hd]
    v = project("wv", ks, x)
    positions = np.arange(T)
    if wv_.positions == "rotary":
        theta, scaling = wv_.rope_theta, wv_.rope_scaling
        q = apply_rope(q_pre[None, :], positions[query : query + 1], theta, scaling)[0]
        k = apply_rope(k_pre, positions, theta, scaling)
        inv_freq = rope_inv_freq(hd, theta, scaling)
    else:  # learned positions are already in x
        q, k, inv_freq = q_pre.copy(), k_pre.copy(), np.zeros(0)
    scores = k @ q  # [T]
    scaled = scores / math.sqrt(hd)
    masked = np.where(positions > query, -np.inf, scaled)
    weights = softmax(masked)
    output = weights @ v
    arrays = [x, q_pre, q, k_pre, k, v, scores, scaled, masked, weights, output, inv_freq]
    for a in arrays:
        a.flags.writeable = False
    return Walkthrough(layer, head, kv, query, hd, *arrays)
