"""Keep one resident copy of the weights when ONNX Runtime runs the model.

ONNX Runtime holds its own copy of the layer weights (~420 MB for SmolLM2-135M). The torch model's copy is
still needed now and then (the attention walk-through reads a layer's weights through ``WeightsView``), but
not resident: its layer tensors are swapped for copy-on-write memory maps of the verified safetensors weight
cache, so pages are read from disk only when something touches them. The embedding table and the norms stay
in memory (every analysis uses them).
"""

from __future__ import annotations

import json
import logging
import struct

import numpy as np
import torch

log = logging.getLogger(__name__)


def map_layers_from_weight_cache(model, gguf_sha: str) -> bool:
    """Swap ``model``'s per-layer weights for memory maps of the weight cache of ``gguf_sha``; False (and
    nothing changed) when there is no cache file or it does not hold exactly these weights."""
    from explainer.core.gguf_loader import _cache_paths
    from explainer.core.llama import LAYER_PARAMS

    path, _ = _cache_paths(gguf_sha)
    if model.embed.weight.device.type != "cpu" or not path.is_file():
        return False
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        data_start = 8 + n
        swaps = []
        for name, entry in header.items():
            if not name.startswith("layers.") or entry.get("dtype") != "F32":
                continue
            _, idx, key = name.split(".", 2)
            param = model.layers[int(idx)].get_parameter(LAYER_PARAMS[key])
            begin, end = entry["data_offsets"]
            shape = tuple(entry["shape"])
            if shape != tuple(param.shape) or end - begin != param.numel() * 4:
                return False
            mapped = np.memmap(path, np.float32, mode="c", offset=data_start + begin, shape=shape)
            if not np.array_equal(mapped[:1], param.detach()[:1].numpy()):  # cheap: another file, same name?
                return False
            swaps.append((param, mapped))
        expected = sum(1 for _ in model.layers.parameters())  # every layer parameter, each mapped once
        if len(swaps) != expected:
            return False
    except (OSError, ValueError, KeyError, AttributeError) as e:
        log.info("weights not memory-mapped: %s", e)
        return False
    with torch.no_grad():
        for param, mapped in swaps:
            param.data = torch.from_numpy(mapped)
    log.info("torch layer weights memory-mapped from %s (ONNX Runtime holds the resident copy)", path.name)
    return True


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


_TRIM = None
