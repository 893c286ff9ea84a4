"""The controller: turns keystrokes into numbered requests, keeps only the newest one while the worker is
busy, drops stale results and hands fresh ones to the UI thread.

::

    set_text ─▶ submit(gen n) ─▶ pending (newest only) ─▶ worker thread: engine.analyze
                                                            │
    resultReady ◀── drop if gen < latest (unless the picture is older than refresh_while_typing_ms) ◀┘

A keystroke that finds the worker idle starts at once (no quiet period: an analysis takes a few milliseconds,
so waiting would only delay the picture); while the worker is busy, each keystroke replaces the pending text,
and the newest one starts the moment the worker is free.

With ``sync=True`` there is no thread: the engine runs in the caller's thread and signals fire before
``submit`` returns (for tests and scripts). Call :meth:`shutdown` before the application quits: it cancels a
model load in progress, lets a running analysis finish, stops the thread and deletes the worker.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from PySide6.QtCore import QDeadlineTimer, QObject, Qt, QThread, Signal, Slot

from explainer.runtime import gui_gc
from explainer.runtime.worker import (
    AnalysisSettings,
    AnalysisWorker,
    EngineFactory,
    LoadedModel,
    Request,
    engine_factory,
)

log = logging.getLogger(__name__)

__all__ = ["AnalysisSettings", "Controller", "engine_factory"]
SHUTDOWN_WAIT_MS = 30_000  # a running analysis finishes in well under a second; a load checks cancel often
_UNFINISHED: list = []  # threads that did not stop at shutdown (kept referenced: deleting a running one aborts)
_PREPARE = Request(-1, "")  # marks the worker as busy preparing the embedding map


class Controller(QObject):
    resultReady = Signal(object)  # AnalysisResult (a fresh one; stale ones are dropped)
    errorOccurred = Signal(str)  # one sentence: the analysis of the newest text failed
    modelLoaded = Signal(object)  # ModelInfo
    modelLoadFailed = Signal(str)  # one sentence; the previous model (if any) stays in use
    progressChanged = Signal(str, float)  # message, fraction 0..1 while a model is prepared / loaded
    busyChanged = Signal(bool)  # True while a request waits or runs
    projectionReady = Signal(object)  # the model's Projector once every layer's map axes exist (or None)

    _loadRequested = Signal(object)
    _analyzeRequested = Signal(object)
    _releaseRequested = Signal()
    _prepareRequested = Signal()

    def __init__(
        self,
        factory: EngineFactory | None = None,
        *,
        sync: bool = False,
        refresh_while_typing_ms: int | None = 500,
        settings: AnalysisSettings | None = None,
        projection: bool = True,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self._factory = factory or engine_factory()
        self.sync = sync
        self.settings = settings or AnalysisSettings()
        self.refresh_while_typing_ms = refresh_while_typing_ms
        # public state (read on the UI thread)
        self.model: LoadedModel | None = None
        self.generation = 0  # number of the newest request
        self.shown_generation = -1
        self.dropped = 0  # stale results not shown
        self.last_latency_ms = float("nan")  # request issued → result back on the UI thread
        self.loading = False
        self.factory: EngineFactory | None = None  # the factory of the loaded model (to reopen it otherwise)
        self._factories: list[EngineFactory] = []  # requested loads, oldest first
        self._text: str | None = None
        self._pending: Request | None = None
        self._in_flight: Request | None = None
        self._behind_load: Request | None = None  # the first text, sent to wait behind the first model's load
        self._last_shown = 0.0
        self._busy = False
        self._closed = False
        self._started = False
        self.projection = projection  # prepare the embedding map's axes in the worker once per model
        self._projection_due = False
        self.baseline = None  # with heads knocked out: the clean model's result for the text last shown
        self._baseline_in = None

        self._worker = AnalysisWorker()
        self._thread: QThread | None = None
        if not sync:
            self._thread = QThread()
            self._thread.setObjectName("explainer-model")
            self._worker.moveToThread(self._thread)
            self._thread.finished.connect(self._worker.deleteLater)
        self._loadRequested.connect(self._worker.load)
        self._analyzeRequested.connect(self._worker.analyze)
        self._releaseRequested.connect(self._worker.release)
        self._prepareRequested.connect(self._worker.prepare_projection)
        self._worker.projectionReady.connect(self._on_worker_projection_ready)
        self._worker.loaded.connect(self._on_worker_loaded)
        self._worker.loadFailed.connect(self._on_worker_load_failed)
        self._worker.resultReady.connect(self._on_worker_result)
        self._worker.baselineReady.connect(self._on_worker_baseline)
        self._worker.analysisFailed.connect(self._on_worker_failed)
        self._worker.progressChanged.connect(self.progressChanged)

    def notify_in_worker(self, callback) -> None:
        """Call ``callback()`` in the model's thread the moment it has a result or an error (before the window
        hears of it): what a timing harness waits on instead of polling the window's event loop."""
        for signal in (self._worker.resultReady, self._worker.analysisFailed):
            signal.connect(lambda *_args: callback(), Qt.DirectConnection)

    # --- life cycle ---------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker thread and load the model there (progress arrives via ``progressChanged``)."""
        if self._started or self._closed:
            return
        self._started = True
        if self._thread is not None:
            gui_gc.install()  # cycles holding widgets must never be freed from the worker thread
            self._thread.start()
        self.load_model(self._factory)

    def load_model(self, factory: EngineFactory) -> None:
        """Load another model; on failure ``modelLoadFailed`` fires and the current model stays."""
        if self._closed:
            return
        self.loading = True
        self._factories.append(factory)
        self._update_busy()
        self._loadRequested.emit(factory)

    def shutdown(self) -> None:
        """Stop everything this controller started; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._pending = None
        self._worker.cancel.set()  # aborts a model load at its next progress report
        if self._thread is not None:
            stopped = True
            if self._thread.isRunning():
                self._releaseRequested.emit()
                self._thread.quit()
                stopped = self._thread.wait(QDeadlineTimer(SHUTDOWN_WAIT_MS))
            else:
                self._worker.deleteLater()
            if stopped:
                self._thread.deleteLater()
            else:  # a step that never checks the cancel flag: never block the closing window on it
                log.error(
                    "The model thread did not stop within %d s; leaving it to finish on its own.",
                    SHUTDOWN_WAIT_MS // 1000,
                )
                _UNFINISHED.append((self._thread, self._worker))  # destroying a running QThread aborts
        else:
            self._worker.release()
            self._worker.deleteLater()
        self._set_busy(False)

    @property
    def worker(self) -> AnalysisWorker:
        return self._worker

    @property
    def thread(self) -> QThread | None:
        return self._thread

    @property
    def is_closed(self) -> bool:
        return self._closed

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer if self.model else None

    # --- requests -------------------------------------------------------------------------------------------
    def set_text(self, text: str) -> None:
        """The text changed (a keystroke): analyse it now if the worker is idle, else when it is free."""
        self.submit(text)

    def set_settings(self, **changes: Any) -> None:
        """Change analysis settings (``start_token``, ``max_tokens``, ``parse_specials``, ``top_k``, ``ablated``)
        and re-analyse the current text."""
        self.settings = dataclasses.replace(self.settings, **changes)
        if self._text is not None:
            self.submit(self._text)

    def submit(self, text: str | None = None) -> int:
        """Request an analysis of ``text`` (None: the current text again); returns its generation number."""
        if text is not None:
            self._text = text
        if self._closed or self._text is None:
            return self.generation
        if self._pending is None and self._current_behind_load():  # (the window setting its text again at start)
            return self.generation
        self.generation += 1
        self._pending = Request(self.generation, self._text, self.settings, time.perf_counter())
        self._dispatch()
        self._update_busy()
        return self.generation

    def _current_behind_load(self) -> bool:
        """A request sent behind the first load is in the worker and asks for the current text and settings."""
        early = self._behind_load
        return (
            early is not None
            and self._in_flight is early
            and (early.text, early.settings) == (self._text, self.settings)
        )

    def _dispatch(self) -> None:
        if self._closed or self._in_flight is not None:
            return
        if self.loading or self.model is None:
            # the first model is loading: its first text waits in the worker's queue, behind the load, and is
            # analysed the moment the model is ready (not after a round trip through a window still being built)
            first_load = self.loading and self.model is None and len(self._factories) == 1
            if not first_load or self._pending is None:
                return
            self._behind_load = self._pending
        if self._pending is None:
            if self._projection_due:  # idle: prepare the embedding map (cached after the first run)
                self._projection_due = False
                self._in_flight = _PREPARE
                self._prepareRequested.emit()
            return
        self._in_flight, self._pending = self._pending, None
        self._analyzeRequested.emit(self._in_flight)  # in sync mode this returns after the result

    # --- results (UI thread) -----------------------------------------------------------------------------
    @Slot(object)
    def _on_worker_projection_ready(self, projector: Any) -> None:
        self._in_flight = None
        if self._closed:
            return
        self._dispatch()
        self._update_busy()
        self.projectionReady.emit(projector)

    @Slot(object)
    def _on_worker_baseline(self, result: Any) -> None:
        self._baseline_in = result  # the knocked-out result of the same request follows

    @Slot(object)
    def _on_worker_result(self, result: Any) -> None:
        request, self._in_flight = self._in_flight, None
        baseline, self._baseline_in = self._baseline_in, None
        if self._closed or request is None:
            return
        now = time.perf_counter()
        stale = request.generation < self.generation
        behind_load, self._behind_load = request is self._behind_load, None
        overdue = (
            not behind_load  # (typed while the model loaded: the newest text is analysed next)
            and self.refresh_while_typing_ms is not None
            and self.refresh_while_typing_ms > 0
            and (now - self._last_shown) * 1000 >= self.refresh_while_typing_ms
        )
        if stale and not overdue:
            self.dropped += 1
            log.debug("dropped stale result %d (newest %d)", request.generation, self.generation)
        else:
            self.shown_generation = request.generation
            self.last_latency_ms = (now - request.submitted) * 1000
            self._last_shown = now
        if self._pending is not None:
            self._dispatch()  # the worker starts on the newest text while the UI draws this result
        self._update_busy()
        if not stale or overdue:
            self.baseline = baseline if getattr(result, "ablated", ()) else None
            self.resultReady.emit(result)
        self._dispatch()  # idle: perhaps prepare the embedding map (after the picture is out)
        self._update_busy()

    @Slot(int, str)
    def _on_worker_failed(self, generation: int, message: str) -> None:
        request, self._in_flight, self._baseline_in = self._in_flight, None, None
        behind_load, self._behind_load = request is not None and request is self._behind_load, None
        if self._closed:
            return
        self._dispatch()
        self._update_busy()
        if behind_load and self.model is None:  # no model answered the first text: the load's failure said why
            self.dropped += 1
        elif generation >= self.generation:
            self.errorOccurred.emit(message)
        else:
            self.dropped += 1

    @Slot(object)
    def _on_worker_loaded(self, loaded: LoadedModel) -> None:
        if self._closed:
            return
        first = self.model is None
        # the worker is analysing the first text with this model already (unless the text or the settings were
        # changed since without a request: settings restored at start, say)
        waiting = self._current_behind_load()
        self.model = loaded
        self.factory = self._factories.pop(0) if self._factories else None
        self.loading = False
        self._projection_due = self.projection and loaded.projector is not None
        self.modelLoaded.emit(loaded.info)
        if self.projection and loaded.projector is None:
            self.projectionReady.emit(None)  # no map for this model: nothing to wait for
        if self._text is not None and not waiting and (first or self._pending is None):
            self.submit(self._text)  # re-analyse with the new model
        else:
            self._dispatch()
        self._update_busy()

    @Slot(str)
    def _on_worker_load_failed(self, message: str) -> None:
        if self._closed:
            return
        self.loading = False
        if self._factories:
            self._factories.pop(0)
        self._dispatch()
        self._update_busy()
        self.modelLoadFailed.emit(message)

    # --- busy state -----------------------------------------------------------------------------------------
    def _update_busy(self) -> None:
        can_run = self.model is not None or self.loading  # no model: nothing is coming, nothing to wait for
        working = (self._in_flight is not None and self._in_flight is not _PREPARE) or self._pending is not None
        self._set_busy(not self._closed and can_run and working)

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busyChanged.emit(busy)

    @property
    def busy(self) -> bool:
        return self._busy
