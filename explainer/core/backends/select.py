"""Which backend the engine runs, and switching to ONNX once its export is ready (rules: package docstring)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from explainer.core.backends import BACKENDS, ExportJob, check_agreement, probe_reference
from explainer.core.backends.base import Backend
from explainer.core.errors import UserError
from explainer.core.stored import UnsupportedStorage

log = logging.getLogger(__name__)
Progress = Callable[[str, float], None]
ONNX_ARCHS = ("llama",)  # the families exported to ONNX and checked there; the others always run on torch


class BackendSelector:
    """Owns the torch backend (the fallback; the torch model is built only when it runs: ``model`` is a
    function returning it) and, when chosen and working, an ONNX Runtime one.

    ``identity`` is called at most once, when an export has to be looked up (hashing an in-memory model's
    weights costs time). ``gguf_path``: the model file, for exporting in a child process; None for in-memory
    models, which are exported in this process (only when ``onnx`` is asked for explicitly). ``stored_tensors``:
    the model's matrices as stored (``core.stored``), read only when the stored-weights graphs are built.
    """

    def __init__(
        self,
        choice: str,
        model,
        device: str,
        embedding: np.ndarray,
        unembedding: np.ndarray,
        identity: Callable[[], str],
        gguf_path: Path | None = None,
        progress: Progress | None = None,
        stored_tensors: Callable[[], dict] | None = None,
        cfg=None,
    ):
        if choice not in BACKENDS:
            raise UserError(f"Unknown backend '{choice}'; use {', '.join(BACKENDS)}.")
        self.choice, self._model_fn, self.device = choice, model, device
        self.cfg = cfg if cfg is not None else model().cfg
        self._embedding, self._unembedding = embedding, unembedding
        self._identity_fn = identity
        self._identity: str | None = None
        self.gguf_path, self._stored_tensors = gguf_path, stored_tensors
        self._torch: Backend | None = None
        self._active: Backend | None = None  # None: torch
        self._notice: str | None = None
        self.job: ExportJob | None = None
        if choice == "torch" or (choice == "auto" and device.startswith("cuda")):
            return
        if self.cfg.arch not in ONNX_ARCHS:  # Qwen2, GPT-2: the readable torch model only
            family = {"qwen2": "Qwen2", "gpt2": "GPT-2"}.get(self.cfg.arch, self.cfg.arch)
            self._notice = f"The ONNX backend runs Llama-architecture models only; this {family} model runs with torch."
            return
        if choice == "stored" or (choice == "auto" and gguf_path is not None):
            if self._activate_stored(progress) or choice == "stored":
                return
            self._notice = None  # auto: the stored graphs cannot run this file; the ONNX rule decides
        try:
            from explainer.core.backends.onnx_export import cached_export

            path = cached_export(self.identity)
            if path is None and choice == "auto":
                if gguf_path is not None:
                    self.job = ExportJob(gguf_path, self.identity)  # torch until it is done
                return
            if path is None:
                path = self._export_now(progress)
        except Exception as e:  # noqa: BLE001 - no onnxruntime/onnxscript, exporter failure, disk full…
            self._give_up(e)
            return
        self._activate(path)

    @property
    def torch(self) -> Backend:
        if self._torch is None:
            from explainer.core.backends.torch_backend import TorchBackend

            self._torch = TorchBackend(self._model_fn(), self.device)
        return self._torch

    @property
    def active(self) -> Backend:
        return self._active if self._active is not None else self.torch

    @property
    def identity(self) -> str:
        if self._identity is None:
            self._identity = self._identity_fn()
        return self._identity

    @property
    def notice(self) -> str | None:
        return self.active.notice or self._notice

    def _export_now(self, progress: Progress | None) -> Path:
        if self.gguf_path is None:
            import copy

            from explainer.core.backends.onnx_export import export_model

            model = self._model_fn()
            cpu_model = model if self.device == "cpu" else copy.deepcopy(model).to("cpu")
            return export_model(cpu_model, self.identity, progress)
        job = ExportJob(self.gguf_path, self.identity)
        job.wait(progress)
        return job.result()

    def _give_up(self, exc: BaseException, what: str = "ONNX") -> None:
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        self._notice = f"The {what} backend is not available ({detail}); running with torch."
        quiet = (RuntimeError, ImportError, UnsupportedStorage, OSError)  # (an OSError names its file)
        log.warning("%s", self._notice, exc_info=not isinstance(exc, quiet))

    def _activate_stored(self, progress: Progress | None) -> bool:
        """Run the stored-weights graphs (built now if the cache has none); False with a notice if they cannot
        be built or disagree with torch."""
        from explainer.core.backends import stored_backend as sb

        try:
            if self.device.startswith("cuda"):
                raise UnsupportedStorage("it runs on the CPU only")
            record = sb.cached_graphs(self.identity)
            if record is None:
                if progress is not None:
                    progress("Preparing the model's stored-weights kernels (once)", 0.9)
                if self._stored_tensors is None:
                    raise UnsupportedStorage("the model's stored matrices are not available")
                tensors = self._stored_tensors()
                probe = probe_reference(self.torch, self._unembedding)
                record = sb.build_graphs(self.identity, self.cfg, tensors, probe)
                del tensors
            be = sb.StoredBackend(record, self.cfg, self._embedding)
            if not sb.verified_here(record):
                diff = check_agreement(be, record["probe"], self._unembedding, sb.TOLERANCE)
                log.info("stored-weights backend agrees with torch (max probability difference %.2g)", diff)
                sb.remember_verified(self.identity, record)
        except Exception as e:  # noqa: BLE001 - unsupported storage, onnxruntime missing or failing, disk full…
            self._give_up(e, "stored-weights")
            return False
        self._active, self._notice = be, None
        return True

    def _activate(self, path: Path) -> bool:
        try:
            from explainer.core.backends.onnx_backend import OnnxBackend
            from explainer.core.backends.onnx_export import export_record

            be = OnnxBackend(path, self.cfg, self._embedding, self.device)
            diff = check_agreement(be, export_record(path)["probe"], self._unembedding)
        except Exception as e:  # noqa: BLE001
            self._give_up(e)
            return False
        log.info("ONNX backend %s agrees with torch (max probability difference %.2g)", be.label, diff)
        self._active, self._notice = be, None
        return True

    def poll(self) -> bool:
        """Switch to ONNX if a background export has finished; True when the active backend changed."""
        if self.job is None or not self.job.done():
            return False
        job, self.job = self.job, None
        try:
            path = job.result()
        except Exception as e:  # noqa: BLE001
            self._give_up(e)
            return False
        return self._activate(path)

    def close(self) -> None:
        """Cancel a background export still running (the next start exports again)."""
        job, self.job = self.job, None
        if job is not None:
            job.cancel()

    def wait(self, progress: Progress | None = None) -> bool:
        """Block until a background export (if any) has finished, then ``poll``."""
        if self.job is not None:
            self.job.wait(progress)
        return self.poll()
