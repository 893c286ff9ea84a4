"""The plain-PyTorch backend: the readable ``llama.py`` model, on CPU or a CUDA GPU.

It runs the model's own blocks, like ``Llama.forward``, but writes every layer's attention straight into
one preallocated host array instead of keeping a list and stacking it (which would briefly double the
largest allocation of a long analysis).
"""

from __future__ import annotations

import numpy as np
import torch

from explainer.core.backends.base import Backend, Step
from explainer.core.llama import KVCache, Llama


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, model: Llama, device: str):
        self.model = model
        self.device = device

    @property
    def label(self) -> str:
        return f"torch ({self.device})"

    @torch.inference_mode()
    def forward(self, ids: np.ndarray, cache: KVCache | None, attention_dtype=np.float32) -> Step:
        m, cfg = self.model, self.model.cfg
        ids_t = torch.as_tensor(np.asarray(ids, np.int64), device=self.device)
        n, P = ids_t.shape[0], self.cache_length(cache)
        positions = torch.arange(P, P + n, device=self.device)
        on_cpu = self.device == "cpu"
        if on_cpu:  # every layer is written straight into the arrays the result keeps
            hidden = np.empty((cfg.n_layers + 1, n, cfg.d_model), np.float32)
            attention = np.empty((cfg.n_layers, cfg.n_heads, n, P + n), attention_dtype)
            hidden_t, attention_t = torch.from_numpy(hidden), torch.from_numpy(attention)
        states, weights = [], []  # on a GPU: kept there, copied to the host once
        x = m.embed(ids_t)  # (n, D)
        new_cache = KVCache()
        for li, block in enumerate(m.layers):
            pk = cache.keys[li] if cache is not None and cache.keys else None
            pv = cache.values[li] if cache is not None and cache.values else None
            if on_cpu:
                hidden_t[li].copy_(x)
            else:
                states.append(x)
            x, w, k, v = block(x, m.rotary, positions, pk, pv)  # w: (H, n, S)
            if on_cpu:
                attention_t[li].copy_(w)  # converts to float16 when asked
            else:
                weights.append(w)
            new_cache.keys.append(k)
            new_cache.values.append(v)
        normed = m.norm(x)
        if on_cpu:
            hidden_t[-1].copy_(x)
            return Step(hidden, normed.numpy(), attention, new_cache)
        dtype = torch.float16 if attention_dtype == np.float16 else torch.float32
        return Step(
            torch.stack(states + [x]).float().cpu().numpy(),
            normed.float().cpu().numpy(),
            torch.stack(weights).to(dtype).cpu().numpy(),
            new_cache,
        )

    def cache_length(self, cache: KVCache | None) -> int:
        return 0 if cache is None else cache.length

    def truncate(self, cache: KVCache, n: int) -> KVCache:
        return cache.truncated(n)
