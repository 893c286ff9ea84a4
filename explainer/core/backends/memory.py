"""Keep as little of the weights resident as the backend needs.

The float32 weight cache (safetensors) is opened as copy-on-write memory maps, not read: pages come from disk
(or the page cache) only when something touches them. The torch backend touches every layer at its first
analysis; the stored-weights and ONNX backends hold their own copy of the layers inside ONNX Runtime, so the
torch model's float32 layers stay on disk until a view needs a layer (the attention walk-through, through
``WeightsView``) or torch is the fallback.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)
_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}


ALIGN = 4096


def write_safetensors(path: str | Path, weights: dict[str, np.ndarray]) -> None:
    """Write float32 ``weights`` as a safetensors file whose data starts at a page boundary (the header is
    padded with spaces, as the format allows) and whose tensors follow each other without gaps, those with
    sizes in multiples of 64 bytes first. Mapped, every such tensor then starts on a 64-byte boundary: the BLAS
    takes the same code path as for allocated arrays (with 8-byte alignment torch's matrix products rounded
    differently, ~4e-6)."""
    names = sorted(weights, key=lambda k: (weights[k].nbytes % 64 != 0, k))
    header, offset = {}, 0
    for name in names:
        a = weights[name]
        if a.dtype != np.float32:
            raise ValueError(f"{name}: only float32 tensors are written")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-(8 + len(raw)) % ALIGN)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for name in names:
            f.write(np.ascontiguousarray(weights[name]).data.cast("B"))


def map_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file as a copy-on-write ``np.memmap`` (nothing is read yet). Raises
    ValueError when the header is not what safetensors writes."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if not 2 <= n <= min(size - 8, 1 << 26):
            raise ValueError("not a safetensors header")
        header = json.loads(f.read(n))
    start = 8 + n
    out: dict[str, np.ndarray] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = np.dtype(_DTYPES[entry["dtype"]])
        begin, end = entry["data_offsets"]
        shape = tuple(int(s) for s in entry["shape"])
        if end - begin != int(np.prod(shape)) * dtype.itemsize or start + end > size:
            raise ValueError(f"tensor {name} does not fit the file")
        out[name] = np.memmap(path, dtype, mode="c", offset=start + begin, shape=shape)
    return out


def release_free_memory() -> None:
    """Give freed heap memory back to the operating system (glibc keeps it otherwise: measured ~100-180 MB
    after a 1024-token analysis). A no-op where there is no glibc."""
    global _TRIM
    if _TRIM is None:
        import ctypes
        import ctypes.util

        try:
            _TRIM = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
        except (OSError, AttributeError, TypeError):
            _TRIM = False
    if _TRIM:
        _TRIM(0)


# glibc's malloc_trim once found, False where there is none, None before the first look
_TRIM: Callable[[int], object] | Literal[False] | None = None
