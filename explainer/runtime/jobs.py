"""Run a function with the loaded engine on the model's worker thread (one model, one thread).

Besides the keystroke analyses, a few views need the model itself: the head-roles reference test runs the model
on random words, the backend menu asks the engine which backend it ended up with. They must not run on the UI
thread (it would freeze) nor on a thread of their own (the engine is used from one thread only), so they queue
behind the analyses on the worker's thread::

    jobs = WorkerJobs(controller)
    jobs.call(lambda engine: engine.notice, on_done)        # from the UI thread; on_done(result, error) there
    scores = jobs.call_blocking(heads.cached_reference_scores)  # from a background thread; waits
    job = jobs.start(lambda engine, job: work(engine, progress=job.report, cancelled=job.cancelled),
                     on_done, on_progress=lambda message, fraction, item: ...)  # long work: progress, cancel
    job.cancel()                                            # from the UI thread; the work stops at its next check

A cancelled job ends with ``error == CANCELLED`` (``core.errors.Cancelled`` raised inside the work), never with a
logged traceback.

In the controller's synchronous mode (tests) there is no worker thread: jobs run on the UI thread, queued when
asked from another thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from explainer.core.errors import Cancelled, UserError

log = logging.getLogger(__name__)
CANCELLED = "Cancelled."


class _Job:
    def __init__(
        self,
        fn: Callable[[Any], Any],
        callback: Callable[[Any, str], None] | None = None,
        on_progress: Callable[[str, float, Any], None] | None = None,
    ):
        self.fn, self.callback, self.on_progress = fn, callback, on_progress
        self.result: Any = None
        self.error = ""  # one sentence when it failed
        self.exception: BaseException | None = None
        self.done = threading.Event()
        self._cancel = threading.Event()
        self._report: Callable[[_Job, str, float, Any], None] | None = None  # set by the runner
        self._closing: Callable[[], bool] = lambda: False  # the application is closing: stop too

    # --- for the work, on the worker thread ------------------------------------------------------------------
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called (or the application is closing): the work should stop."""
        return self._cancel.is_set() or self._closing()

    def report(self, message: str, fraction: float, item: Any = None) -> None:
        """Progress (``fraction`` 0..1) and, optionally, a finished piece of the result for the UI thread's
        ``on_progress(message, fraction, item)``. Raises ``Cancelled`` once the job is cancelled."""
        if self.cancelled():
            raise Cancelled()
        if self._report is not None:
            self._report(self, str(message), float(fraction), item)

    # --- for the UI thread -------------------------------------------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()

    @property
    def finished(self) -> bool:
        return self.done.is_set()


class _Runner(QObject):
    """Lives on the worker's thread; runs jobs there."""

    finished = Signal(object)  # _Job, to the UI thread
    progressed = Signal(object, str, float, object)  # _Job, message, fraction, item; to the UI thread

    def __init__(self, worker) -> None:
        super().__init__()
        self._worker = worker

    @Slot(object)
    def run(self, job: _Job) -> None:
        engine = getattr(self._worker, "engine", None)
        try:
            if engine is None:
                raise RuntimeError("No model is loaded.")
            if job.cancelled():
                raise Cancelled()
            job._report = lambda j, m, f, item: self.progressed.emit(j, m, f, item)
            job.result = job.fn(engine)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Cancelled as e:
            job.exception, job.error = e, CANCELLED
        except UserError as e:  # the user's input (texts of different lengths…): its own sentence
            job.exception, job.error = e, str(e)
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
        self._runner.progressed.connect(self._on_runner_progressed)
        self._jobs: set[_Job] = set()  # started and not finished (cancelled when the application closes)

    def call(self, fn: Callable[[Any], Any], callback: Callable[[Any, str], None] | None = None) -> None:
        """Run ``fn(engine)`` on the worker thread; ``callback(result, error)`` follows on this object's thread
        (``error`` is "" on success)."""
        if self.controller.is_closed:
            return
        self._requested.emit(_Job(fn, callback))

    def start(
        self,
        fn: Callable[[Any, _Job], Any],
        callback: Callable[[Any, str], None] | None = None,
        on_progress: Callable[[str, float, Any], None] | None = None,
    ) -> _Job:
        """Run ``fn(engine, job)`` on the worker thread; it may call ``job.report(message, fraction, item)``
        (``on_progress`` follows on this object's thread) and ``job.cancelled()``. Returns the job, whose
        ``cancel()`` stops it at its next report or check; ``callback(result, error)`` follows as with
        :meth:`call` (``error`` is ``CANCELLED`` after a cancel)."""
        job = _Job(lambda engine: fn(engine, job), callback, on_progress)
        job._closing = lambda: self.controller.is_closed
        if self.controller.is_closed:
            job.cancel()
            return job
        self._jobs.add(job)
        self._requested.emit(job)
        return job

    def cancel_all(self) -> None:
        for job in list(self._jobs):
            job.cancel()

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

    @Slot(object, str, float, object)
    def _on_runner_progressed(self, job: _Job, message: str, fraction: float, item: Any) -> None:
        if job.on_progress is not None and not job.cancelled():
            try:
                job.on_progress(message, fraction, item)
            except Exception:
                log.exception("a job's progress callback failed")

    @Slot(object)
    def _on_runner_finished(self, job: _Job) -> None:
        self._jobs.discard(job)
        if job.cancelled() and not job.error:
            # cancelled after the work's last look at the flag: its progress since was not delivered, nor is what
            # it built on it (a view would show a result without the pieces it drew it from)
            job.result, job.exception, job.error = None, Cancelled(), CANCELLED
        if job.callback is not None:
            try:
                job.callback(job.result, job.error)
            except Exception:
                log.exception("a job's callback failed")
