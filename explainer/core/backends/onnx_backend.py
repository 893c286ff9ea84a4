"""The ONNX Runtime backend: the exported graph (see ``onnx_export``) run by onnxruntime.

Provider: CUDAExecutionProvider when the engine runs on a GPU and onnxruntime can use it (after
``onnxruntime.preload_dlls()`` where that exists), else CPUExecutionProvider. A provider that cannot be
created, or that fails while running, is replaced by the CPU provider; ``notice`` then says so in one sentence
(the UI shows it in the status bar) and the reason goes to the log.

Every call binds its inputs and outputs (IOBinding) to host memory the engine keeps: each layer's attention
and residual land directly in the result's arrays, and the keys/values in one cache buffer
``[L, 2, capacity, Hkv, hd]`` that grows geometrically, whose first ``P`` positions are the next call's
``past`` (contiguous views, no copies).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from explainer.core.backends.base import Backend, Step
from explainer.core.gguf_loader import LlamaConfig

log = logging.getLogger(__name__)
CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"


@dataclass(frozen=True)
class OnnxCache:
    buf: np.ndarray  # [L, 2, capacity, Hkv, hd] float32; positions >= length are scratch
    length: int


def threads_from_env() -> int | None:
    """``$EXPLAINER_ORT_THREADS``: ONNX Runtime's threads (None: its default); a value that is not a whole number
    from 1 to four per CPU is ignored with a warning (thousands of threads would exhaust the memory)."""
    raw = os.environ.get("EXPLAINER_ORT_THREADS", "").strip()
    if not raw:
        return None
    most = 4 * (os.cpu_count() or 1)
    if raw.isdecimal() and 1 <= int(raw) <= most:
        return int(raw)
    log.warning("EXPLAINER_ORT_THREADS=%r is not a number of threads from 1 to %d; ONNX Runtime chooses.", raw, most)
    return None


def _session_options(ort, threads: int | None, prepack: bool = False):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3  # errors only: a missing CUDA library is reported through `notice`
    # Memory (measured on the real model): prepacked MatMul weights are a second copy (+110 MB RSS, session
    # start 4.5 s instead of 1.9 s, no faster here), and the arena keeps the peak of the largest call.
    # (MatMulNBits needs its prepacked layout: without it every call unpacks the whole matrix.)
    so.add_session_config_entry("session.disable_prepacking", "0" if prepack else "1")
    so.enable_cpu_mem_arena = False
    # The pool's workers spin between the graph's nodes while a call runs (hundreds of small nodes: waking a
    # sleeping worker for each cost ~3-4 ms of a 128-token keystroke here) and stop spinning when it returns
    # (left alone they spin ~45 ms more, a core each taken from the window just as it draws the result).
    # EXPLAINER_ORT_SPIN=0 never spins.
    spin = "0" if os.environ.get("EXPLAINER_ORT_SPIN", "1").strip() == "0" else "1"
    so.add_session_config_entry("session.intra_op.allow_spinning", spin)
    so.add_session_config_entry("session.force_spinning_stop", "1")
    if threads:
        so.intra_op_num_threads = threads
    return so


def cuda_provider_available() -> bool:
    """True when onnxruntime lists the CUDA provider (after preloading torch's / pip's CUDA libraries)."""
    import onnxruntime as ort

    if hasattr(ort, "preload_dlls"):
        try:
            ort.preload_dlls()
        except Exception as e:  # noqa: BLE001 - missing or mismatched CUDA libraries
            log.info("onnxruntime.preload_dlls() failed: %s", e)
    return CUDA in ort.get_available_providers()


_SCRATCH = np.zeros(1, np.float32)  # the address bound for empty tensors (P = 0)
_CAST = None


def as_dtype(a: np.ndarray, dtype) -> np.ndarray:
    """``a`` (float32) as ``dtype``. float16 goes through ONNX Runtime's Cast (the CPU's F16C instructions):
    numpy takes a slow path for the many attention weights that are float16 subnormals (~1 s instead of ~30 ms
    for 256 rows of a 512-token text)."""
    global _CAST
    if dtype == np.float32 or a.dtype == dtype:
        return a
    if dtype != np.float16:
        return a.astype(dtype)
    if _CAST is None:
        import onnxruntime as ort
        from onnx import TensorProto, helper

        node = helper.make_node("Cast", ["a"], ["b"], to=TensorProto.FLOAT16)
        g = helper.make_graph(
            [node],
            "cast",
            [helper.make_tensor_value_info("a", TensorProto.FLOAT, None)],
            [helper.make_tensor_value_info("b", TensorProto.FLOAT16, None)],
        )
        model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
        _CAST = ort.InferenceSession(model.SerializeToString(), _session_options(ort, 1), providers=[CPU])
    out = np.empty(a.shape, np.float16)
    binding = _CAST.io_binding()
    src = np.ascontiguousarray(a, np.float32)
    binding.bind_input("a", "cpu", 0, np.float32, list(src.shape), _address(src))
    binding.bind_output("b", "cpu", 0, np.float16, list(out.shape), out.ctypes.data if out.size else _address(src))
    _CAST.run_with_iobinding(binding)
    return out


def _address(arr: np.ndarray) -> int:
    if not arr.flags.c_contiguous:
        raise ValueError("bound arrays must be contiguous")
    return arr.ctypes.data if arr.size else _SCRATCH.ctypes.data


class OnnxBackend(Backend):
    name = "onnx"

    def __init__(
        self, path: str | Path, cfg: LlamaConfig, embedding: np.ndarray, device: str = "cpu", threads: int | None = None
    ):
        import onnxruntime as ort

        self._ort, self.path, self.cfg = ort, Path(path), cfg
        self.embedding = embedding  # [V, D] float32: the graph starts after the embedding lookup
        self.threads = threads or threads_from_env()
        self.notice: str | None = None
        want_cuda = device.startswith("cuda")
        if want_cuda and not cuda_provider_available():
            self._fall_back("ONNX Runtime cannot use the GPU here (no CUDA provider)")
            want_cuda = False
        self.session: Any = None  # an onnxruntime.InferenceSession (the library has no type information)
        if want_cuda:
            try:
                self._open([CUDA, CPU])
                if self.provider != CUDA:
                    self._fall_back("ONNX Runtime could not start its CUDA provider")
            except Exception as e:  # noqa: BLE001
                self._fall_back(f"ONNX Runtime's CUDA provider failed ({type(e).__name__})", e)
        if self.session is None:
            self._open([CPU])

    def _open(self, providers: list[str]) -> None:
        ort = self._ort
        self.session = ort.InferenceSession(str(self.path), _session_options(ort, self.threads), providers=providers)
        self.provider = self.session.get_providers()[0]

    def _fall_back(self, why: str, exc: BaseException | None = None) -> None:
        self.notice = f"{why}; running the model on the CPU instead."
        log.warning("%s%s", self.notice, f" ({exc})" if exc else "")
        self.session = None

    @property
    def label(self) -> str:
        return f"onnx ({self.provider})"

    def forward(self, ids: np.ndarray, cache: OnnxCache | None, attention_dtype=np.float32) -> Step:
        c, L = self.cfg, self.cfg.n_layers
        ids = np.asarray(ids, np.int64)
        P, n = self.cache_length(cache), int(ids.shape[0])
        S = P + n
        buf = cache.buf if cache is not None else None
        if buf is None or buf.shape[2] < S:
            cap = max(256, -(-int(S * 1.25) // 128) * 128)
            grown = np.empty((L, 2, cap, c.n_kv_heads, c.d_head), np.float32)
            if buf is not None and P:
                grown[:, :, :P] = buf[:, :, :P]
            buf = grown
        hidden = np.empty((L + 1, n, c.d_model), np.float32)
        np.take(self.embedding, ids, axis=0, out=hidden[0])
        attention = np.empty((L, c.n_heads, n, S), np.float32)
        final = np.empty((n, c.d_model), np.float32)
        outputs = {"final_normed": final}
        inputs = {"x": hidden[0]}
        for li in range(L):
            inputs[f"past_key_{li}"], inputs[f"past_value_{li}"] = buf[li, 0, :P], buf[li, 1, :P]
            outputs[f"attention_{li}"], outputs[f"hidden_{li + 1}"] = attention[li], hidden[li + 1]
            outputs[f"new_key_{li}"], outputs[f"new_value_{li}"] = buf[li, 0, P:S], buf[li, 1, P:S]
        try:
            self._run(inputs, outputs)
        except Exception as e:
            if self.provider == CPU:
                raise
            self._fall_back(f"ONNX Runtime's {self.provider} failed while running ({type(e).__name__})", e)
            self._open([CPU])
            self._run(inputs, outputs)
        return Step(hidden, final, as_dtype(attention, attention_dtype), OnnxCache(buf, S))

    def _run(self, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> None:
        """Run with every input and output bound to the given (contiguous) host arrays."""
        binding = self.session.io_binding()
        for name, arr in inputs.items():
            binding.bind_input(name, "cpu", 0, np.float32, list(arr.shape), _address(arr))
        for name, arr in outputs.items():
            binding.bind_output(name, "cpu", 0, np.float32, list(arr.shape), _address(arr))
        self.session.run_with_iobinding(binding)

    def cache_length(self, cache: OnnxCache | None) -> int:
        return 0 if cache is None else cache.length

    def truncate(self, cache: OnnxCache, n: int) -> OnnxCache:
        return OnnxCache(cache.buf, min(n, cache.length))
