"""Which backend the engine runs, and switching to ONNX once its export is ready (rules: package docstring)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from explainer.core.backends import BACKENDS, ExportJob, check_agreement, probe_reference
from explainer.core.backends.base import Backend
from explainer.core.backends.torch_backend import TorchBackend
from explainer.core.errors import UserError
from explainer.core.stored import UnsupportedStorage

log = logging.getLogger(__name__)
Progress = Callable[[str, float], None]
ONNX_ARCHS = ("llama",)  # the families exported to ONNX and checked there; the others always run on torch


class BackendSelector:
    """Owns the torch backend (always there: the fallback) and, when chosen and working, the ONNX one.

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
    ):
        if choice not in BACKENDS:
            raise UserError(f"Unknown backend '{choice}'; use {', '.join(BACKENDS)}.")
        self.choice, self.model, self.device = choice, model, device
        self._embedding, self._unembedding = embedding, unembedding
        self._identity_fn, self._identity = identity, None
        self.gguf_path, self._stored_tensors = gguf_path, stored_tensors
        self.torch = TorchBackend(model, device)
        self.active: Backend = self.torch
        self._notice: str | None = None
        self.job: ExportJob | None = None
        if choice == "torch" or (choice == "auto" and device.startswith("cuda")):
            return
        if model.cfg.arch not in ONNX_ARCHS:  # Qwen2, GPT-2: the readable torch model only
            family = {"qwen2": "Qwen2", "gpt2": "GPT-2"}.get(model.cfg.arch, model.cfg.arch)
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

            cpu_model = self.model if self.device == "cpu" else copy.deepcopy(self.model).to("cpu")
            return export_model(cpu_model, self.identity, progress)
        job = ExportJob(self.gguf_path, self.identity)
        job.wait(progress)
        return job.result()

    def _give_up(self, exc: BaseException, what: str = "ONNX") -> None:
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        self._notice = f"The {what} backend is not available ({detail}); running with torch."
        quiet = (RuntimeError, ImportError, UnsupportedStorage)
        log.warning("%s", self._notice, exc_info=not isinstance(exc, quiet))

    def _activate_stored(self, progress: Progress | None) -> bool:
        """Run the stored-weights graphs (built now if the cache has none); False with a notice if they cannot
        be built or disagree with torch."""
        from explainer.core.backends import stored_backend as sb

        try:
            record = sb.cached_graphs(self.identity)
            if record is None:
                if progress is not None:
                    progress("Preparing the model's stored-weights kernels (once)", 0.9)
                if self._stored_tensors is None:
                    raise UnsupportedStorage("the model's stored matrices are not available")
                tensors = self._stored_tensors()
                probe = probe_reference(self.torch, self._unembedding)
                record = sb.build_graphs(self.identity, self.model.cfg, tensors, probe)
                del tensors
            be = sb.StoredBackend(record, self.model.cfg, self._embedding)
            diff = check_agreement(be, record["probe"], self._unembedding, sb.TOLERANCE)
        except Exception as e:  # noqa: BLE001 - unsupported storage, onnxruntime missing or failing, disk full…
            self._give_up(e, "stored-weights")
            return False
        log.info("stored-weights backend agrees with torch (max probability difference %.2g)", diff)
        self.active, self._notice = be, None
        return True

    def _activate(self, path: Path) -> bool:
        if self.gguf_path is not None and self.identity.startswith("gguf-") and self.device == "cpu":
            # before the session exists, so the two copies of the weights are never resident together
            from explainer.core.backends.memory import map_layers_from_weight_cache

            map_layers_from_weight_cache(self.model, self.identity[len("gguf-") :])
        try:
            from explainer.core.backends.onnx_backend import OnnxBackend
            from explainer.core.backends.onnx_export import export_record

            be = OnnxBackend(path, self.model.cfg, self._embedding, self.device)
            diff = check_agreement(be, export_record(path)["probe"], self._unembedding)
        except Exception as e:  # noqa: BLE001
            self._give_up(e)
            return False
        log.info("ONNX backend %s agrees with torch (max probability difference %.2g)", be.label, diff)
        self.active, self._notice = be, None
        from explainer.core.backends.memory import release_free_memory

        release_free_memory()  # the torch layer weights that were freed for the memory maps
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
