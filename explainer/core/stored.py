"""A model's matrices as its file stores them: GGUF quantization blocks, or float32.

A ``StoredMatrix`` is one ``[N, K]`` weight (N outputs, K inputs) in one of the storage kinds below, read from
the file's memory map without decoding. Blocks run along K, 32 weights each:

- ``q4_0``: fp16 scale d, 4-bit q in 0..15: ``w = d·(q − 8)``;
- ``q4_1``: fp16 scale d and minimum m, 4-bit q: ``w = d·q + m``;
- ``q8_0``: fp16 scale d, int8 q: ``w = d·q``;
- ``f32`` (also F16 tensors, widened): the numbers themselves.

``dequantize()`` gives exactly the float32 matrix gguf-py decodes (the numbers the torch model computes with);
``parts()`` gives the block fields for kernels that compute with the blocks directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explainer.core.errors import ModelFileError
from explainer.core.gguf_loader import check_finite

BLOCK = 32
KINDS = ("f32", "q4_0", "q4_1", "q8_0")
_GGML = {"F32": "f32", "F16": "f32", "Q4_0": "q4_0", "Q4_1": "q4_1", "Q8_0": "q8_0"}
_BLOCK_BYTES = {"q4_0": 18, "q4_1": 20, "q8_0": 34}


class UnsupportedStorage(ValueError):
    """A tensor is stored in a format the stored-weights backend does not compute with."""


@dataclass(frozen=True)
class StoredMatrix:
    kind: str
    data: np.ndarray  # f32: [N, K] float32; quantized: [N, K/32 * block bytes] uint8 (the file's bytes)
    rows: np.ndarray | None = None  # a row order to apply (llama.cpp's q/k permutation undone), or None

    @property
    def shape(self) -> tuple[int, int]:
        n = self.data.shape[0]
        if self.kind == "f32":
            return n, self.data.shape[1]
        return n, self.data.shape[1] // _BLOCK_BYTES[self.kind] * BLOCK

    def permuted(self, order: np.ndarray) -> StoredMatrix:
        """The matrix with its rows in ``order`` (rows never cross blocks, so the blocks stay as stored)."""
        order = np.asarray(order)
        return StoredMatrix(self.kind, self.data, order if self.rows is None else self.rows[order])

    def _raw(self) -> np.ndarray:
        return self.data if self.rows is None else self.data[self.rows]

    def parts(self) -> dict[str, np.ndarray]:
        """f32: ``{"w": [N, K]}``; quantized: ``d`` (and ``m`` for q4_1) ``[N, K/32]`` float32 and ``q``
        ``[N, K/32, 32]``: uint8 0..15 for 4-bit kinds, int8 for q8_0."""
        raw = self._raw()
        if self.kind == "f32":
            return {"w": np.asarray(raw, np.float32)}
        n, nbytes = raw.shape
        size = _BLOCK_BYTES[self.kind]
        b = np.ascontiguousarray(raw).reshape(n, nbytes // size, size)
        half = lambda i: b[:, :, i : i + 2].copy().view(np.float16)[..., 0].astype(np.float32)  # noqa: E731
        if self.kind == "q8_0":
            return {"d": half(0), "q": b[:, :, 2:].copy().view(np.int8)}
        start = 2 if self.kind == "q4_0" else 4
        packed = b[:, :, start:]  # byte j: weight j in the low nibble, weight j + 16 in the high nibble
        out = {"d": half(0), "q": np.concatenate([packed & 15, packed >> 4], axis=-1)}
        if self.kind == "q4_1":
            out["m"] = half(2)
        return out

    def check_finite(self, tensor: str, source: str) -> None:
        """ModelFileError when a number it stores as a float (a float32 weight; a block's scale, and minimum for
        ``q4_1``) is infinite or NaN."""
        if self.kind == "f32":
            check_finite(self.data, tensor, source)
            return
        blocks = self.data.reshape(self.data.shape[0], -1, _BLOCK_BYTES[self.kind])
        halves = np.ascontiguousarray(blocks[:, :, : 4 if self.kind == "q4_1" else 2]).view(np.float16)
        check_finite(halves, tensor, source)

    def dequantize(self) -> np.ndarray:
        """``[N, K]`` float32, the same numbers gguf-py decodes."""
        p = self.parts()
        if self.kind == "f32":
            return p["w"]
        n, nb, _ = p["q"].shape
        if self.kind == "q4_1":
            w = p["d"][..., None] * p["q"] + p["m"][..., None]
        elif self.kind == "q4_0":
            w = p["d"][..., None] * (p["q"].astype(np.int8) - np.int8(8))
        else:
            w = p["d"][..., None] * p["q"]
        return np.asarray(w, np.float32).reshape(n, nb * BLOCK)


def from_array(w: np.ndarray) -> StoredMatrix:
    return StoredMatrix("f32", np.asarray(w, np.float32))


def _ggml_matrix(t, source: str) -> StoredMatrix:
    kind = _GGML.get(t.tensor_type.name)
    if kind is None:
        raise UnsupportedStorage(f"tensor {t.name} is stored as {t.tensor_type.name}")
    data = np.asarray(t.data)
    if kind == "f32":
        data = data.reshape(-1, int(t.shape[0])).astype(np.float32, copy=False)
    m = StoredMatrix(kind, data)
    m.check_finite(t.name, source)
    return m


def _ggml_vector(t, source: str) -> np.ndarray:
    v = np.asarray(t.data, np.float32)
    check_finite(v, t.name, source)
    return v


def read_gguf(path: str | Path, cfg) -> dict[str, object]:
    """The model's tensors from a GGUF, under the loader's names (``embed``, ``norm``, ``lm_head``,
    ``layers.{i}.wq`` …): matrices as ``StoredMatrix`` (q/k rows in the Hugging Face rotary layout), norms as
    float32 vectors. Raises ``UnsupportedStorage`` for a matrix kind outside ``KINDS``."""
    import gguf

    from explainer.core.gguf_loader import _NAMES, _unpermute

    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as e:  # noqa: BLE001 - gguf-py raises many kinds on damaged files
        raise ModelFileError(f"{Path(path).name} cannot be read as GGUF ({type(e).__name__}).") from None
    out: dict[str, object] = {}
    source = Path(path).name
    for t in reader.tensors:
        if t.name == "token_embd.weight":
            out["embed"] = _ggml_matrix(t, source)
        elif t.name == "output.weight":
            out["lm_head"] = _ggml_matrix(t, source)
        elif t.name == "output_norm.weight":
            out["norm"] = _ggml_vector(t, source)
        elif t.name.startswith("blk."):
            _, idx, rest = t.name.split(".", 2)
            name = _NAMES.get(rest)
            if name is None:
                continue
            key = f"layers.{int(idx)}.{name}"
            if name.endswith("norm"):
                out[key] = _ggml_vector(t, source)
                continue
            m = _ggml_matrix(t, source)
            if name in ("wq", "wk"):
                heads = cfg.n_heads if name == "wq" else cfg.n_kv_heads
                m = m.permuted(_unpermute(np.arange(m.shape[0])[:, None], heads)[:, 0])
            out[key] = m
    return out


def from_float_weights(weights: dict[str, np.ndarray]) -> dict[str, object]:
    """The loader's float32 weights (an in-memory model) in the same form as ``read_gguf``."""
    return {k: (v if v.ndim == 1 else from_array(v)) for k, v in weights.items()}
