"""Forward-pass backends for the Engine: ``torch`` (llama.py, CPU or CUDA), ``onnx`` (ONNX Runtime on the
float32 weights) and ``stored`` (ONNX Runtime on the model file's own 4-/8-bit blocks).

Choosing (``Engine(backend=...)``, ``--backend``):

- ``torch``: always works; the readable model itself.
- ``onnx``: the same weights exported once to ONNX (into the cache folder; the first export of the real model
  takes minutes and runs in a child process so its ~2.5 GB peak never lands in the app) and run by ONNX
  Runtime (CUDA provider on a GPU when usable, else CPU). If the export or the session fails, the engine
  stays on torch and says why in ``engine.notice``.
- ``stored``: graphs built in seconds from the file's blocks (``stored_graph``), CPU only; the weights are
  read as stored (~5x fewer bytes per token than float32) and multiplied in float32. Matrices stored in a
  format without a kernel (K-quants…) make it unavailable: torch, with a notice.
- ``auto`` (a documented rule, from measurements on a 2-core CPU): on a CUDA GPU, torch (the GPU step takes
  milliseconds and needs no export); on CPU, ``stored`` for a model file it can run (a 128-token keystroke took
  ~45% of ``onnx``'s wall time and CPU time, a full pass the same; ``onnx`` ran 1.5-4x faster than torch eager
  and needs minutes of export first); otherwise ONNX if a
  verified export of this model is in the cache, else torch now while the export runs in a child process,
  switching to ONNX at the first analysis after it finished and verified. In-memory models (the tiny demo)
  are never exported in the background.

A backend is accepted only after it reproduced torch's next-token probabilities on a probe sequence (a full
pass and an incremental step): within 1e-3 for ``onnx``, 1e-4 for ``stored``; torch's side is computed once,
when the graph is made, and kept in its record.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from explainer.core.backends.base import Backend, Step
from explainer.core.numerics import softmax

log = logging.getLogger(__name__)
BACKENDS = ("torch", "onnx", "stored", "auto")
PROBE_IDS = np.array([0, 504, 2644, 2408, 335, 260, 1171, 30, 1462, 17, 28, 216], np.int64)
PROBE_TOLERANCE = 1e-3
__all__ = ["Backend", "Step", "BACKENDS", "check_agreement", "probe_reference", "ExportJob"]


def _probs(backend: Backend, unembedding: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Next-token probabilities for the probe: a pass over all but two ids, then an incremental step (with
    the backend's own unembedding when it has one)."""
    first = backend.forward(ids[:-2], None)
    second = backend.forward(ids[-2:], first.cache)
    normed = np.concatenate([first.final_normed, second.final_normed])
    # float32 logits (the table is not converted to float64: 0.3 s and 226 MB at every start), float64 softmax
    if backend.probabilities is not None:
        return backend.probabilities(normed)
    return softmax(normed @ unembedding.T)


def probe_reference(backend: Backend, unembedding: np.ndarray, k: int = 32) -> dict:
    """What the (torch) ``backend`` predicts on the probe: per row the top-``k`` ids and probabilities. Stored
    with an export, so a later process can check ONNX Runtime without running torch (or paging its weights in)."""
    ids = PROBE_IDS % unembedding.shape[0]
    p = _probs(backend, unembedding, ids)
    top = np.argsort(-p, axis=-1)[:, :k]
    return {"ids": ids.tolist(), "top_ids": top.tolist(), "top_probs": np.take_along_axis(p, top, -1).tolist()}


def check_agreement(
    candidate: Backend, reference: dict, unembedding: np.ndarray, tolerance: float | None = None
) -> float:
    """Largest difference between ``candidate``'s probabilities and a ``probe_reference`` (torch's); raises
    RuntimeError when it is over ``tolerance`` (default ``PROBE_TOLERANCE``)."""
    p = _probs(candidate, unembedding, np.asarray(reference["ids"], np.int64))
    got = np.take_along_axis(p, np.asarray(reference["top_ids"]), -1)
    diff = float(np.abs(got - np.asarray(reference["top_probs"])).max())
    if not diff <= (PROBE_TOLERANCE if tolerance is None else tolerance):
        raise RuntimeError(f"the {candidate.label} backend differs from torch by {diff:.2g} in probability")
    return diff


class ExportJob:
    """The ONNX export of a GGUF model in a child process (it needs ~2.5 GB and minutes for the real model;
    the app keeps analysing with torch meanwhile). Poll with ``done()``; ``wait()`` blocks with progress."""

    EXPECTED_S = 120.0  # for the progress fraction only

    def __init__(self, gguf_path: str | Path, identity: str):
        from explainer.core.paths import cache_dir

        self.identity = identity
        self.log_path = cache_dir("onnx") / f"export-{identity[:26]}.log"
        self._log = open(self.log_path, "wb")
        cmd = [sys.executable, "-m", "explainer.core.backends.onnx_export", str(gguf_path), identity]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=dict(os.environ)
        )
        log.info("exporting the model to ONNX in process %d (log: %s)", self.proc.pid, self.log_path)

    def done(self) -> bool:
        return self.proc.poll() is not None

    def cancel(self, timeout_s: float = 10.0) -> None:
        """Stop the child if it still runs (it removes its partial file) and wait for it."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            log.info("ONNX export in process %d cancelled", self.proc.pid)
        self._log.close()

    def wait(self, progress: Callable[[str, float], None] | None = None) -> None:
        while True:
            try:
                self.proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if progress is not None:
                    el = time.monotonic() - self.started
                    progress(f"Exporting the model to ONNX, once ({el:.0f} s)", min(0.95, el / self.EXPECTED_S))

    def result(self) -> Path:
        """The exported file; raises RuntimeError with the child's last log line if it failed."""
        from explainer.core.backends.onnx_export import cached_export

        self._log.close()
        found = cached_export(self.identity) if self.proc.returncode == 0 else None
        if found is None:
            tail = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:] or [""]
            raise RuntimeError(f"the ONNX export failed (exit {self.proc.returncode}: {tail[0][:200]})")
        return found
