"""The worker that owns the model: it lives in one QThread, loads the engine there and analyses texts there.

Only the :class:`~explainer.runtime.controller.Controller` talks to it, through queued signals, so every call
into the engine happens on the worker's thread (the engine is thread-safe only from one thread). Errors never
escape: a user error becomes its own sentence, anything else is logged with its traceback and becomes one
sentence too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from explainer.core.errors import UserError

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, float], None]
EngineFactory = Callable[[ProgressFn], Any]  # returns an object with the Engine API


@dataclass(frozen=True)
class AnalysisSettings:
    """What ``Engine.analyze`` needs besides the text."""

    start_token: bool = True
    max_tokens: int = 512
    parse_specials: bool = False
    top_k: int = 64
    ablated: tuple[tuple[int, int], ...] = ()  # heads knocked out (0-based); the clean model is analysed too


@dataclass(frozen=True)
class Request:
    generation: int
    text: str
    settings: AnalysisSettings = field(default_factory=AnalysisSettings)
    submitted: float = 0.0  # time.perf_counter() when the controller issued it


@dataclass(frozen=True)
class LoadedModel:
    """Sent to the UI thread once an engine is ready (no tensors)."""

    info: Any  # ModelInfo
    device: str
    backend: str
    tokenizer: Any  # the engine's tokenizer: token_bytes(id), decode(ids); read-only, safe from any thread
    projector: Any = None  # core.projection.Projector for the embeddings map (axes filled in by prepare)


class Cancelled(Exception):
    """Raised from the progress callback when the application is closing during a model load."""


def engine_factory(
    model_path: str | None = None, *, device: str = "auto", backend: str = "torch", demo: bool = False
) -> EngineFactory:
    """A factory for the real engine (or the demo engine); the import of torch happens in the worker."""

    def make(progress: ProgressFn):
        from explainer.core import engine as eng

        if demo:
            progress("Building the demo model…", 0.0)
            return eng.demo_engine()
        return eng.Engine(model_path, device=device, backend=backend, progress=progress)

    make.description = "demo model" if demo else (model_path or "bundled model")  # type: ignore[attr-defined]
    make.options = {
        "model_path": model_path,
        "device": device,
        "backend": backend,  # type: ignore[attr-defined]
        "demo": demo,
    }  # to reopen the same model with another backend
    return make


def _close(engine) -> None:
    close = getattr(engine, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            log.exception("closing the engine failed")


def one_sentence(exc: BaseException, what: str) -> str:
    """A user-facing sentence for an unexpected exception (the traceback goes to the log)."""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    detail = detail[:160].rstrip(".")
    name = type(exc).__name__
    return f"The {what} failed ({name}{': ' + detail if detail else ''})."


class AnalysisWorker(QObject):
    loaded = Signal(object)  # LoadedModel
    loadFailed = Signal(str)
    resultReady = Signal(object)  # AnalysisResult
    analysisFailed = Signal(int, str)  # generation, one sentence
    progressChanged = Signal(str, float)
    projectionReady = Signal(object)  # Projector with every layer's axes (or None)
    baselineReady = Signal(object)  # the clean model's AnalysisResult, just before a knocked-out one

    def __init__(self) -> None:
        super().__init__()
        self.engine: Any = None
        self.cancel = threading.Event()

    def _progress(self, message: str, fraction: float) -> None:
        if self.cancel.is_set():
            raise Cancelled()
        self.progressChanged.emit(str(message), float(fraction))

    @Slot(object)
    def load(self, factory: EngineFactory) -> None:
        try:
            engine = factory(self._progress)
        except Cancelled:
            log.info("model load cancelled")
            return
        except UserError as e:
            self.loadFailed.emit(str(e))
            return
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:
            log.exception("loading the model failed")
            self.loadFailed.emit(one_sentence(e, "model load"))
            return
        _close(self.engine)
        self.engine = engine  # the previous engine (if any) is released here, in this thread
        self.projector = None
        try:
            from explainer.core.projection import Projector

            self.projector = Projector(engine)
        except Exception:
            log.exception("no embedding projection for this model")
        self.loaded.emit(
            LoadedModel(
                engine.info,
                str(getattr(engine, "device", "cpu")),
                str(getattr(engine, "backend", "")),
                getattr(engine, "tokenizer", None),
                self.projector,
            )
        )

    @Slot(object)
    def analyze(self, request: Request) -> None:
        if self.engine is None:
            self.analysisFailed.emit(request.generation, "No model is loaded.")
            return
        s = request.settings
        options = dict(
            start_token=s.start_token,
            max_tokens=s.max_tokens,
            parse_specials=s.parse_specials,
            top_k=s.top_k,
            generation=request.generation,
        )
        try:
            if s.ablated:  # before and after: the engine keeps an incremental state for each
                self.baselineReady.emit(self.engine.analyze(request.text, **options))
                options["ablated"] = s.ablated
            result = self.engine.analyze(request.text, **options)
        except UserError as e:
            self.analysisFailed.emit(request.generation, str(e))
            return
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:
            log.exception("analysis of generation %d failed", request.generation)
            self.analysisFailed.emit(request.generation, one_sentence(e, "analysis"))
            return
        self.resultReady.emit(result)

    @Slot()
    def prepare_projection(self) -> None:
        """Fit (or load from the cache) the embedding map's axes: runs the engine on the reference text once
        per model, so it happens here, between analyses. What the readable model (attribution, patching,
        knock-out where the backend cannot) is built from starts being read into the file cache in the background
        too: the app is idle."""
        projector = getattr(self, "projector", None)
        prefetch = getattr(self.engine, "prefetch_readable_model", None)  # (a stand-in engine may have none)
        if prefetch is not None:
            prefetch()
        if projector is not None:
            try:
                projector.prepare()
            except (KeyboardInterrupt, SystemExit):
                raise
            except UserError as e:  # (the model cannot analyse the reference text: its sentence says why)
                log.warning("no embedding map: %s", e)
                projector = None
            except BaseException:
                log.exception("preparing the embedding map failed")
                projector = None
        self.projectionReady.emit(projector)

    @Slot()
    def release(self) -> None:
        """Drop the engine in the thread that made it (its background ONNX export, if any, is cancelled)."""
        _close(self.engine)
        self.engine = None
        self.projector = None
