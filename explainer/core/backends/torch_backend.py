"""The plain-PyTorch backend: the readable ``llama.py`` model, on CPU or a CUDA GPU.

It runs the model's own layer loop with hooks that write every layer's residual and attention straight into
the arrays the result keeps (on a GPU: kept there and copied to the host once), instead of keeping lists and
stacking them (which would briefly double the largest allocation of a long analysis).
"""

from __future__ import annotations

import numpy as np
import torch

from explainer.core.backends.base import Backend, Step
from explainer.core.knockout import Head
from explainer.core.llama import KnockOut, KVCache, Llama


class _IntoArrays(KnockOut):
    """Residuals and attention of one call into ``hidden [L+1, n, D]`` and ``attention [L, H, n, S]`` (host
    tensors over the result's numpy arrays), or into lists when the model runs on a GPU; the ``knocked_out``
    heads' outputs are zeroed."""

    def __init__(self, hidden: torch.Tensor | None, attention: torch.Tensor | None, knocked_out=()):
        super().__init__(knocked_out)
        self.hidden, self.attention_out = hidden, attention
        self.states: list[torch.Tensor] = []
        self.weights: list[torch.Tensor] = []

    def embedded(self, x):
        self._keep(self.hidden, self.states, 0, x)
        return x

    def attention(self, layer, weights):
        self._keep(self.attention_out, self.weights, layer, weights)  # converts to float16 when asked

    def residual(self, layer, x):
        self._keep(self.hidden, self.states, layer + 1, x)
        return x

    @staticmethod
    def _keep(out, kept, index, value):
        if out is not None:
            out[index].copy_(value)
        else:
            kept.append(value)


class TorchBackend(Backend):
    """``knocked_out``: heads ``(layer, head)`` whose outputs every pass zeroes (an instance per set of heads,
    so the engine never continues a clean cache with a knocked-out pass or the reverse)."""

    name = "torch"

    def __init__(self, model: Llama, device: str, knocked_out: tuple[Head, ...] = ()):
        self.model = model
        self.device = device
        self.knocked_out = tuple(knocked_out)

    @property
    def label(self) -> str:
        return f"torch ({self.device})"

    def knocking_out(self, heads: tuple[Head, ...]) -> TorchBackend:
        return TorchBackend(self.model, self.device, heads)

    @torch.inference_mode()
    def forward(self, ids: np.ndarray, cache: KVCache | None, attention_dtype=np.float32) -> Step:
        m, cfg = self.model, self.model.cfg
        ids_t = torch.as_tensor(np.asarray(ids, np.int64), device=self.device)
        n, P = ids_t.shape[0], self.cache_length(cache)
        if self.device == "cpu":  # every layer is written straight into the arrays the result keeps
            hidden = np.empty((cfg.n_layers + 1, n, cfg.d_model), np.float32)
            attention = np.empty((cfg.n_layers, cfg.n_heads, n, P + n), attention_dtype)
            hooks = _IntoArrays(torch.from_numpy(hidden), torch.from_numpy(attention), self.knocked_out)
            normed, new_cache = m.step(m.embed(ids_t), cache, hooks)
            return Step(hidden, normed.numpy(), attention, new_cache)
        hooks = _IntoArrays(None, None, self.knocked_out)
        normed, new_cache = m.step(m.embed(ids_t), cache, hooks)
        dtype = torch.float16 if attention_dtype == np.float16 else torch.float32
        return Step(
            torch.stack(hooks.states).float().cpu().numpy(),
            normed.float().cpu().numpy(),
            torch.stack(hooks.weights).to(dtype).cpu().numpy(),
            new_cache,
        )

    def cache_length(self, cache: KVCache | None) -> int:
        return 0 if cache is None else cache.length

    def truncate(self, cache: KVCache, n: int) -> KVCache:
        return cache.truncated(n)
