"""Keep as little of the weights resident as the backend needs.

The float32 weight cache (safetensors) is opened as copy-on-write memory maps, not read: pages come from disk
(or the page cache) only when something touches them. The torch backend touches every layer at its first
analysis; the stored-weights and ONNX backends hold their own copy of the layers inside ONNX Runtime, so the
torch model's float32 layers stay on disk until a view needs a layer (the attention walk-through, through
``WeightsView``) or torch is the fallback.

Touched page by page, a map reads its file in many small pieces: from a cold file cache the torch model's first
pass over the bundled model's 538 MB took 9 s here, where one sequential read of the file takes 1 s. So the files
are read from start to end into the file cache (``read_into_cache``) just before the torch model is built, and in
the background once the app is idle (``prefetch``); nothing of that read stays in the process.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
import time
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


CHUNK = 8 << 20  # bytes per read of read_into_cache


def mapped_files(weights: dict) -> list[str]:
    """The files that memory maps among ``weights``' arrays read from, each once, in the order first met."""
    files: dict[str, None] = {}
    for a in weights.values():
        name = getattr(a, "filename", None) if isinstance(a, np.memmap) else None
        if name:
            files.setdefault(str(name))
    return list(files)


def torch_libraries() -> list[str]:
    """torch's shared libraries (most of what its import reads: ~450 MB for the CPU build), largest first; none when
    torch is imported already or not installed. Found without importing it."""
    import importlib.util
    import sys

    if "torch" in sys.modules:
        return []
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return []
    libs = [
        p
        for d in spec.submodule_search_locations
        for pattern in ("*.so*", "*.dylib", "*.dll")  # Linux, macOS, Windows
        for p in Path(d, "lib").glob(pattern)
    ]
    return [str(p) for p in sorted(libs, key=lambda p: -p.stat().st_size)]


def read_into_cache(paths: list[str], pause_s: float = 0.0) -> int:
    """Read each file of ``paths`` from start to end into the operating system's file cache, ``CHUNK`` bytes at a
    time; the bytes asked for. Where the system can be asked to read a range ahead (``posix_fadvise``), it is asked,
    chunk by chunk: it reads them in large sequential pieces while this returns (nothing is copied into the
    process), and a page touched before its piece has arrived waits for it. Elsewhere one buffer is read into and
    reused. ``pause_s`` between chunks leaves the disk and the CPU to others (a read in the background). A file that
    cannot be read is skipped (logged): its maps read it as before."""
    advise = getattr(os, "posix_fadvise", None)
    total = 0
    buf = None
    for path in paths:
        try:
            with open(path, "rb", buffering=0) as f:
                if advise is not None:
                    size = os.fstat(f.fileno()).st_size
                    for start in range(0, size, CHUNK):
                        n = min(CHUNK, size - start)
                        advise(f.fileno(), start, n, os.POSIX_FADV_WILLNEED)
                        total += n
                        if pause_s:
                            time.sleep(pause_s)
                    continue
                buf = buf or bytearray(CHUNK)
                while n := f.readinto(buf):
                    total += n
                    if pause_s:
                        time.sleep(pause_s)
        except OSError as e:
            log.warning("could not read %s ahead of its use: %s", path, e)
    return total


def prefetch(paths: list[str]) -> threading.Thread | None:
    """``read_into_cache(paths)`` in a background thread, pausing between chunks; the thread (None: no files)."""
    if not paths:
        return None
    t = threading.Thread(target=read_into_cache, args=(paths, 0.01), name="explainer-prefetch", daemon=True)
    t.start()
    return t


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
