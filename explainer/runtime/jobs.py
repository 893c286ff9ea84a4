"""Run a function with the loaded engine on the model's worker thread (one model, one thread).

Besides the keystroke analyses, a few views need the model itself: the head-roles reference test runs the model
on random words, the backend menu asks the engine which backend it ended up with. They must not run on the UI
thread (it would freeze) nor on a thread of their own (the engine is used from one thread only), so they queue
behind the analyses on the worker's thread::

    jobs = WorkerJobs(controller)
    jobs.call(lambda engine: engine.notice, on_done)        # from the UI thread; on_done(result, error) there
    scores = jobs.call_blocking(heads.cached_reference_scores)  # from a background thread; waits

In the controller's synchronous mode (tests) there is no worker thread: jobs run on the UI thread, queued when
asked from another thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

log = logging.getLogger(__name__)


class _Job:
    def __init__(self, fn: Callable[[Any], Any], callback: Callable[[Any, str], None] | None = None):
        self.fn, self.callback = fn, callback
        self.result: Any = None
        self.error = ""  # one sentence when it failed
        self.exception: BaseException | None = None
        self.done = threading.Event()


class _Runner(QObject):
    """Lives on the worker's thread; runs jobs there."""

    finished = Signal(object)  # _Job, to the UI thread

    def __init__(self, worker) -> None:
        super().__init__()
        self._worker = worker

    @Slot(object)
    def run(self, job: _Job) -> None:
        engine = getattr(self._worker, "engine", None)
        try:
            if engine is None:
                raise RuntimeError("No model is loaded.")
            job.result = job.fn(engine)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:
            log.exception("a job on the model's thread failed")
            job.exception = e
            job.error = str(e) if str(e) else type(e).__name__
        job.done.set()
        self.finished.emit(job)


class WorkerJobs(QObject):
    _requested = Signal(object)

    def __init__(self, controller, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._runner = _Runner(controller.worker)
        thread = controller.thread
        if thread is not None:
            self._runner.moveToThread(thread)
            thread.finished.connect(self._runner.deleteLater)
        self._requested.connect(self._runner.run)
        self._runner.finished.connect(self._on_runner_finished)

    def call(self, fn: Callable[[Any], Any], callback: Callable[[Any, str], None] | None = None) -> None:
        """Run ``fn(engine)`` on the worker thread; ``callback(result, error)`` follows on this object's thread
        (``error`` is "" on success)."""
        if self.controller.is_closed:
            return
        self._requested.emit(_Job(fn, callback))

    def call_blocking(self, fn: Callable[[Any], Any], poll_s: float = 0.2) -> Any:
        """Run ``fn(engine)`` on the worker thread and wait for its result (call from a background thread, never
        the UI thread). Raises what ``fn`` raised, or RuntimeError when the application closes meanwhile."""
        job = _Job(fn)
        self._requested.emit(job)
        while not job.done.wait(poll_s):
            if self.controller.is_closed:
                raise RuntimeError("The application is closing.")
        if job.exception is not None:
            raise job.exception
        return job.result

    @Slot(object)
    def _on_runner_finished(self, job: _Job) -> None:
        if job.callback is not None:
            try:
                job.callback(job.result, job.error)
            except Exception:
                log.exception("a job's callback failed")
