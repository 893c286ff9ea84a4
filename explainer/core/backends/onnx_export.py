"""Export the engine's torch model to ONNX once, into the cache folder, and find that export again.

The graph is the model's own blocks (``llama.py``) after the embedding lookup (the host does that from the
table it keeps anyway, so ONNX Runtime holds no second copy of it), with the cache as one tensor per layer:

- inputs: ``x [n, D]`` the input embeddings of the ``n`` new tokens, ``past_key_{l}`` and ``past_value_{l}``
  ``[P, Hkv, hd]`` for every layer ``l`` (rotated keys, values of the ``P`` cached tokens; ``P`` may be 0);
- outputs: ``attention_{l} [H, n, P+n]``, ``hidden_{l} [n, D]`` (the residual after layer ``l``, 1-based),
  ``final_normed [n, D]``, ``new_key_{l}`` / ``new_value_{l}`` ``[n, Hkv, hd]`` (the new tokens only).

One tensor per layer lets the backend bind every output straight into the engine's arrays and the cache
buffer (no concatenation inside the graph and no copies outside it). ``n`` and ``P`` are dynamic.

The file is keyed by the model's identity (the GGUF's sha256, or a hash of the weights for in-memory models)
and ``EXPORT_FORMAT``; it is written atomically next to a JSON record of its size and sha256, and an export
that does not verify is rebuilt. Opset 18, torch's dynamo exporter (needs onnxscript).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from explainer.core.gguf_loader import atomic_write_bytes
from explainer.core.paths import cache_dir, read_regular_text, remove_older_formats, sha256_file

log = logging.getLogger(__name__)
EXPORT_FORMAT = 3  # bump when the graph's inputs/outputs change
OPSET = 18


def input_names(n_layers: int) -> list[str]:
    return ["x"] + [f"past_key_{i}" for i in range(n_layers)] + [f"past_value_{i}" for i in range(n_layers)]


def output_names(n_layers: int) -> list[str]:
    L = range(n_layers)
    return (
        [f"attention_{i}" for i in L]
        + [f"hidden_{i + 1}" for i in L]
        + ["final_normed"]
        + [f"new_key_{i}" for i in L]
        + [f"new_value_{i}" for i in L]
    )


def model_fingerprint(cfg, weights: dict) -> str:
    """A content hash of an in-memory model (config + every tensor of the loader's weights), for models
    without a GGUF sha."""
    h = hashlib.sha256(json.dumps(asdict(cfg), sort_keys=True).encode())
    for name in sorted(weights):
        a = np.ascontiguousarray(weights[name], np.float32)
        h.update(f"{name}:{a.dtype}:{a.shape}".encode())
        h.update(a.data.cast("B"))
    return "w-" + h.hexdigest()


def export_paths(identity: str) -> tuple[Path, Path]:
    d = cache_dir("onnx")
    stem = f"{identity[:26]}-f{EXPORT_FORMAT}-op{OPSET}"
    return d / f"{stem}.onnx", d / f"{stem}.json"


def export_record(onnx_path: Path) -> dict:
    """The JSON record written next to an export (size, sha256, the torch probe reference…)."""
    return json.loads(read_regular_text(onnx_path.with_suffix(".json")))


def cached_export(identity: str) -> Path | None:
    """The verified export for ``identity``, or None (missing or damaged: the caller rebuilds it)."""
    onnx_path, meta_path = export_paths(identity)
    if not (onnx_path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(read_regular_text(meta_path))
        ok = (
            meta.get("identity") == identity
            and meta.get("size") == onnx_path.stat().st_size
            and meta.get("sha256") == sha256_file(onnx_path)
        )
    except (OSError, ValueError) as e:
        log.warning("ONNX export record %s unreadable (%s); rebuilding", meta_path, e)
        return None
    if not ok:
        log.warning("ONNX export %s failed verification; rebuilding", onnx_path)
        return None
    remove_older_formats(onnx_path.parent, identity[:26], "f", EXPORT_FORMAT)
    return onnx_path


def _step_module(model):
    """The model after its embedding, as an exportable module (see the module docstring): the model's own
    layer loop, with hooks that collect every layer's attention and residual as graph outputs."""
    import torch

    from explainer.core.llama import Hooks, KVCache

    class Outputs(Hooks):
        def __init__(self):
            self.weights, self.hidden = [], []

        def attention(self, layer, weights):  # (H, n, S)
            self.weights.append(weights)

        def residual(self, layer, x):  # (n, D)
            self.hidden.append(x)
            return x

    class Step(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x, past_keys: list, past_values: list):  # x: (n, D); past_*: L x (P, Hkv, hd)
            P = past_keys[0].shape[0]
            past = KVCache([k.transpose(0, 1) for k in past_keys], [v.transpose(0, 1) for v in past_values])
            out = Outputs()
            normed, cache = self.model.step(x, past, out)
            new_k = [k[:, P:].transpose(0, 1) for k in cache.keys]  # (n, Hkv, hd)
            new_v = [v[:, P:].transpose(0, 1) for v in cache.values]
            return out.weights, out.hidden, normed, new_k, new_v

    return Step().eval()


def export_model(model, identity: str, progress: Callable[[str, float], None] | None = None) -> Path:
    """Export ``model`` (a CPU float32 ``Llama``) for ``identity`` unless a verified export exists; return
    the path. Raises on failure (the caller falls back to torch)."""
    found = cached_export(identity)
    if found is not None:
        return found
    import torch

    progress = progress or (lambda msg, frac: None)
    cfg = model.cfg
    onnx_path, meta_path = export_paths(identity)
    progress("Exporting the model to ONNX (once)", 0.05)
    t0 = time.perf_counter()
    step = _step_module(model)
    L = cfg.n_layers
    x = torch.randn(3, cfg.d_model)
    past = [torch.zeros(4, cfg.n_kv_heads, cfg.d_head) for _ in range(2 * L)]
    n_dim, p_dim = torch.export.Dim("n", min=1, max=1 << 16), torch.export.Dim("past", min=0, max=1 << 16)
    shapes = {"x": {0: n_dim}, "past_keys": [{0: p_dim}] * L, "past_values": [{0: p_dim}] * L}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            step,
            (x, past[:L], past[L:]),
            None,
            dynamo=True,
            opset_version=OPSET,
            input_names=input_names(L),
            output_names=output_names(L),
            dynamic_shapes=shapes,
            verbose=False,
        )
    if program is None:  # the dynamo exporter always returns its program
        raise RuntimeError("torch.onnx.export returned no program")
    progress("Writing the ONNX file", 0.8)
    atomic_write_bytes(onnx_path, functools.partial(program.save, external_data=False))
    program = None  # the exported graph is large: free it before the probe runs
    from explainer.core.backends import probe_reference
    from explainer.core.backends.torch_backend import TorchBackend

    probe = probe_reference(TorchBackend(model, "cpu"), model.unembedding.detach().numpy())
    meta = {
        "identity": identity,
        "format": EXPORT_FORMAT,
        "opset": OPSET,
        "config": asdict(cfg),
        "size": onnx_path.stat().st_size,
        "sha256": sha256_file(onnx_path),
        "torch": torch.__version__,
        "probe": probe,
    }
    atomic_write_bytes(meta_path, lambda p: p.write_text(json.dumps(meta, indent=1), encoding="utf-8"))
    remove_older_formats(onnx_path.parent, identity[:26], "f", EXPORT_FORMAT)
    log.info("exported %s in %.1f s", onnx_path.name, time.perf_counter() - t0)
    progress("ONNX export ready", 1.0)
    return onnx_path


def _main(argv: list[str]) -> int:
    """``python -m explainer.core.backends.onnx_export GGUF IDENTITY``: the export as a child process."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if len(argv) != 2:
        print("usage: python -m explainer.core.backends.onnx_export GGUF_PATH IDENTITY", file=sys.stderr)
        return 2
    if hasattr(os, "nice"):
        os.nice(10)  # the app keeps analysing with torch meanwhile: let it have the CPU first
    import signal

    from explainer.core.paths import remove_partial_files

    def cancelled(*_args) -> None:
        """The app closed: the partial file goes and the process ends here. Raising SystemExit instead would
        unwind through torch's exporter (native frames running Python callbacks), which can abort the process."""
        remove_partial_files()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(143)

    signal.signal(signal.SIGTERM, cancelled)
    from explainer.core.gguf_loader import load_weights
    from explainer.core.llama import build_model

    cfg, weights, _ = load_weights(argv[0])
    model = build_model(cfg, weights, "cpu")
    del weights
    export_model(model, argv[1], lambda msg, frac: log.info("%s (%.0f%%)", msg, 100 * frac))
    return 0


if __name__ == "__main__":
    try:
        code = _main(sys.argv[1:])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    sys.stdout.flush()
    sys.stderr.flush()
    # no interpreter teardown: torch's and the exporter's native threads can still be at work when a cancel
    # arrives, and tearing the interpreter down under them can abort the process (SIGABRT) instead of ending it
    os._exit(code)
