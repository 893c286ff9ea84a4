"""The runtime: one worker thread, idle keystrokes at once, coalescing, stale results dropped, errors as sentences, clean exit."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
import shiboken6

from explainer.runtime.controller import Controller


def make(engine, **kw) -> Controller:
    kw.setdefault("projection", False)  # the embedding map's preparation would add reference analyses
    return Controller(lambda progress: engine, **kw)


def held_start(engine):
    """A started controller whose model load waits (up to 5 s) until the returned event is set, and the list its
    results arrive in."""
    ready = threading.Event()

    def factory(progress):
        ready.wait(5)
        return engine

    c = Controller(factory, projection=False)
    got: list = []
    c.resultReady.connect(got.append)
    c.start()
    return c, ready, got


def assert_shut_down(c: Controller) -> None:
    worker = c.worker
    c.shutdown()
    if c.thread is not None:
        assert not c.thread.isRunning()
    assert not shiboken6.isValid(worker) or worker.engine is None


def test_sync_mode_delivers_immediately(qtbot, fakes):
    engine = fakes.FakeEngine()
    c = make(engine, sync=True)
    got = []
    c.resultReady.connect(got.append)
    c.start()
    assert c.model is not None and c.model.info is engine.info
    c.set_text("hello world")
    assert [r.text for r in got] == ["hello world"]
    assert c.shown_generation == c.generation == 1
    c.submit("hello there")
    assert got[-1].text == "hello there"
    assert engine.threads == {threading.current_thread().name}
    c.shutdown()
    qtbot.wait(1)


def test_model_runs_in_worker_thread_and_results_reach_ui(qtbot, fakes):
    engine = fakes.FakeEngine()
    c = make(engine)
    got = []
    c.resultReady.connect(got.append)
    loaded = []
    c.modelLoaded.connect(loaded.append)
    c.start()
    c.set_text("The cat sat")
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    assert loaded == [engine.info]
    assert got[-1].text == "The cat sat"
    assert threading.current_thread().name not in engine.threads
    assert_shut_down(c)


def test_a_waiting_thread_is_woken_in_the_model_thread_by_each_result_and_error(qtbot, fakes):
    """What the timing harness sleeps on: the model's thread calls back before the window hears of the answer."""
    engine = fakes.FakeEngine(delay_s=0.05, fail_on="boom")
    c = make(engine)
    answered = threading.Event()
    woke_in: list[str] = []
    got, errors = [], []

    def woken():
        woke_in.append(threading.current_thread().name)
        answered.set()

    c.notify_in_worker(woken)
    c.resultReady.connect(got.append)
    c.errorOccurred.connect(errors.append)
    c.start()
    qtbot.waitUntil(lambda: c.model is not None, timeout=5000)
    try:
        for text in ("The cat sat", "boom"):
            answered.clear()
            c.set_text(text)  # the model's thread is idle: it starts at once
            assert answered.wait(5)  # without the window's event loop turning
            qtbot.waitUntil(lambda: not c.busy, timeout=5000)
        assert len(woke_in) == 2 and threading.current_thread().name not in woke_in
        assert [r.text for r in got] == ["The cat sat"] and len(errors) == 1
    finally:
        assert_shut_down(c)


def test_requests_before_model_loaded_wait_for_it(qtbot, fakes):
    ready = threading.Event()
    engine = fakes.FakeEngine()

    def slow_factory(progress):
        progress("Reading the weights…", 0.3)
        ready.wait(5)
        progress("Done", 1.0)
        return engine

    c = Controller(slow_factory, projection=False)
    progress, got = [], []
    c.progressChanged.connect(lambda m, f: progress.append((m, f)))
    c.resultReady.connect(got.append)
    c.start()
    c.set_text("one")
    c.set_text("two")
    qtbot.wait(100)
    assert not got
    ready.set()
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    qtbot.wait(50)
    assert [r.text for r in got] == ["two"]
    assert progress[0] == ("Reading the weights…", 0.3) and progress[-1][1] == 1.0
    assert_shut_down(c)


def test_the_first_text_is_analysed_right_after_the_load_without_the_window_thread(qtbot, fakes):
    """At start the window is still being built when the model is ready: the first text already waits in the
    model's thread and is analysed there at once, not after a round trip through the window's event loop."""
    engine = fakes.FakeEngine()
    c, ready, got = held_start(engine)
    answered = threading.Event()
    c.notify_in_worker(answered.set)
    loaded = []
    c.modelLoaded.connect(loaded.append)
    c.set_text("first words")
    assert c.busy
    ready.set()
    try:
        assert answered.wait(5)  # while this thread never turned its event loop
        assert engine.calls == ["first words"] and not got and not loaded
        qtbot.waitUntil(lambda: bool(got), timeout=5000)
        qtbot.wait(50)
        assert loaded == [engine.info] and [r.text for r in got] == ["first words"]
        assert engine.calls == ["first words"]  # the loaded model did not analyse the same text twice
        assert c.shown_generation == c.generation and not c.busy
    finally:
        assert_shut_down(c)


def test_the_same_first_text_set_again_during_the_load_is_analysed_once(qtbot, fakes):
    """The window sets its text from its settings and then again from the autosave while it is built: the
    request already waiting behind the load answers both."""
    engine = fakes.FakeEngine()
    c, ready, got = held_start(engine)
    c.set_text("first words")
    c.set_text("first words")
    c.submit()
    ready.set()
    try:
        qtbot.waitUntil(lambda: bool(got), timeout=5000)
        qtbot.wait(50)
        assert engine.calls == ["first words"] and len(got) == 1
        assert got[0].generation == c.generation == c.shown_generation == 1 and not c.busy
        c.set_text("first words")  # once its answer is in, the same text is a new request again
        qtbot.waitUntil(lambda: len(got) == 2, timeout=5000)
        assert engine.calls == ["first words", "first words"] and c.generation == 2
    finally:
        assert_shut_down(c)


def test_settings_put_back_during_the_load_are_used_for_the_first_picture(qtbot, fakes):
    """The window restores saved analysis settings after its text, straight into ``settings`` (no request): the
    text that waited behind the load was sent with the old ones, so the loaded model analyses it again."""
    import dataclasses

    engine = fakes.FakeEngine()
    c, ready, got = held_start(engine)
    c.set_text("first words")
    c.settings = dataclasses.replace(c.settings, start_token=False)
    ready.set()
    try:
        qtbot.waitUntil(lambda: bool(got), timeout=5000)
        qtbot.wait(50)
        assert len(got) == 1 and got[0].generation == c.generation == 2
        assert engine.calls == ["first words", "first words"]
        assert not got[0].start_token  # analysed with the settings put back
    finally:
        assert_shut_down(c)


def test_coalescing_keeps_only_newest_and_drops_stale(qtbot, fakes):
    engine = fakes.FakeEngine(delay_s=0.15)
    c = make(engine, refresh_while_typing_ms=None)
    got = []
    c.resultReady.connect(got.append)
    c.start()
    qtbot.waitUntil(lambda: c.model is not None, timeout=5000)
    texts = [f"text {i}" for i in range(12)]
    for t in texts:
        c.set_text(t)
        qtbot.wait(20)  # faster than the engine
    qtbot.waitUntil(lambda: c.shown_generation == c.generation and not c.busy, timeout=10000)
    assert got[-1].text == texts[-1]
    assert got[-1].generation == c.generation == len(texts)
    assert len(engine.calls) < len(texts)  # pending requests were coalesced
    assert engine.calls[-1] == texts[-1]
    assert c.dropped >= 1  # a result that was stale on arrival was not shown
    assert all(r.text == texts[-1] for r in got)  # only the final generation was shown
    assert_shut_down(c)


def test_refresh_while_typing_shows_some_intermediate_pictures(qtbot, fakes):
    engine = fakes.FakeEngine(delay_s=0.1)
    c = make(engine, refresh_while_typing_ms=150)
    got = []
    c.resultReady.connect(got.append)
    c.start()
    qtbot.waitUntil(lambda: c.model is not None, timeout=5000)
    for i in range(20):
        c.set_text("x" * (i + 1))
        qtbot.wait(30)
    qtbot.waitUntil(lambda: c.shown_generation == c.generation and not c.busy, timeout=10000)
    gens = [r.generation for r in got]
    assert gens == sorted(gens) and gens[-1] == c.generation
    assert len(got) >= 2  # the picture followed the typing instead of freezing until it stopped
    assert_shut_down(c)


def test_an_idle_keystroke_starts_at_once_and_a_burst_coalesces(qtbot, fakes):
    engine = fakes.FakeEngine(delay_s=0.05)
    c = make(engine, refresh_while_typing_ms=None)
    got = []
    c.resultReady.connect(got.append)
    c.start()
    qtbot.waitUntil(lambda: c.model is not None and not c.busy, timeout=5000)
    engine.calls.clear()
    c.set_text("a")
    qtbot.waitUntil(lambda: engine.calls == ["a"], timeout=1000)  # no quiet period first
    for i in range(1, 10):
        c.set_text("abcdefghij"[: i + 1])  # while "a" runs: each replaces the pending text
    qtbot.waitUntil(lambda: c.shown_generation == c.generation and not c.busy, timeout=5000)
    assert engine.calls == ["a", "abcdefghij"]
    assert got[-1].text == "abcdefghij"
    assert_shut_down(c)


def test_analysis_error_becomes_one_sentence_and_recovers(qtbot, fakes, caplog):
    engine = fakes.FakeEngine(fail_on="boom")
    c = make(engine)
    errors, got = [], []
    c.errorOccurred.connect(errors.append)
    c.resultReady.connect(got.append)
    c.start()
    c.set_text("this goes boom")
    qtbot.waitUntil(lambda: bool(errors), timeout=5000)
    assert errors[0].startswith("The analysis failed") and errors[0].endswith(".")
    assert "\n" not in errors[0]
    assert "Traceback" in caplog.text or any(r.exc_info for r in caplog.records)
    c.set_text("this is fine")
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    assert got[-1].text == "this is fine"
    assert_shut_down(c)


def test_load_failure_is_reported_and_keeps_current_model(qtbot, fakes):
    engine = fakes.FakeEngine()
    c = make(engine)
    failures = []
    c.modelLoadFailed.connect(failures.append)
    c.start()
    qtbot.waitUntil(lambda: c.model is not None, timeout=5000)
    c.load_model(fakes.FailingFactory("That file is not a GGUF model."))
    qtbot.waitUntil(lambda: bool(failures), timeout=5000)
    assert failures == ["That file is not a GGUF model."]
    assert c.model.info is engine.info
    got = []
    c.resultReady.connect(got.append)
    c.set_text("still works")
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    assert_shut_down(c)


def test_initial_load_failure(qtbot, fakes):
    c = Controller(fakes.FailingFactory())
    failures, errors = [], []
    c.modelLoadFailed.connect(failures.append)
    c.errorOccurred.connect(errors.append)
    c.start()
    c.set_text("anything")  # waits in the model's thread behind the load, which fails
    try:
        qtbot.waitUntil(lambda: bool(failures), timeout=5000)
        assert c.model is None and not c.busy
        qtbot.waitUntil(lambda: c.dropped == 1, timeout=5000)  # no model answered the text...
        assert failures == ["The model file is not a GGUF file."] and errors == []  # ...and only the load speaks
    finally:
        assert_shut_down(c)


def test_shutdown_during_a_long_load_cancels_it(qtbot, fakes):
    steps = []

    def endless(progress):
        for i in range(1000):
            progress("Dequantizing…", i / 1000)
            steps.append(i)
            time.sleep(0.01)
        return fakes.FakeEngine()

    c = Controller(endless)
    c.start()
    qtbot.waitUntil(lambda: len(steps) > 3)
    assert_shut_down(c)
    assert len(steps) < 1000  # the load stopped at its next progress report, not at its end


def test_shutdown_while_analysing_waits_and_deletes_worker(qtbot, fakes):
    engine = fakes.FakeEngine(delay_s=0.2)
    c = make(engine)
    c.start()
    qtbot.waitUntil(lambda: c.model is not None, timeout=5000)
    c.set_text("slow")
    qtbot.wait(20)
    worker = c.worker
    c.shutdown()
    assert not c.thread.isRunning()
    assert not shiboken6.isValid(worker)
    c.shutdown()  # twice is fine
    c.set_text("after close")  # ignored, no crash


@pytest.mark.parametrize("exc", [ValueError("bad"), KeyError("x")])
def test_unexpected_exceptions_in_load(qtbot, exc):
    def factory(progress):
        raise exc

    c = Controller(factory, sync=True)
    failures = []
    c.modelLoadFailed.connect(failures.append)
    c.start()
    assert failures and failures[0].startswith("The model load failed")
    c.shutdown()


def test_embedding_map_is_prepared_in_the_worker_when_idle(qtbot, fakes, temp_cache):
    engine = fakes.FakeEngine()
    c = Controller(lambda progress: engine)
    maps, busy = [], []
    c.projectionReady.connect(maps.append)
    c.busyChanged.connect(busy.append)
    c.start()
    c.set_text("first picture first")
    qtbot.waitUntil(lambda: bool(maps), timeout=10000)
    projector = maps[0]
    assert projector is c.model.projector
    assert all(projector.is_ready(layer) for layer in range(engine.info.n_layers + 1))
    assert engine.calls[0] == "first picture first"  # the user's text goes before the reference texts
    assert threading.current_thread().name not in engine.threads
    assert busy == [True, False]  # preparing the map does not show the busy indicator
    assert_shut_down(c)


def test_the_idle_worker_starts_reading_the_readable_model_ahead(qtbot, fakes, temp_cache):
    engine = fakes.FakeEngine()
    asked = []
    engine.prefetch_readable_model = lambda: asked.append(threading.current_thread().name) or engine.calls.append(0)
    c = Controller(lambda progress: engine)
    maps = []
    c.projectionReady.connect(maps.append)
    c.start()
    c.set_text("first picture first")
    qtbot.waitUntil(lambda: bool(maps), timeout=10000)
    assert len(asked) == 1 and asked[0] != threading.current_thread().name  # once, in the model's thread
    assert engine.calls.index(0) > engine.calls.index("first picture first")  # after the first picture
    assert_shut_down(c)


# --- garbage collection stays in the GUI thread; shutdown never blocks forever --------------------------------------
class _Cycle:
    """A reference cycle that records which thread freed it."""

    freed_in: list[str] = []

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        _Cycle.freed_in.append(threading.current_thread().name)


class _Allocating:
    """An engine whose analysis allocates many container objects (as the real one does): enough to trigger
    CPython's cycle collector in the worker thread when automatic collection is on."""

    def __init__(self, engine) -> None:
        self._engine = engine

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def analyze(self, text, **kw):
        junk = [[i] for i in range(20_000)]
        del junk
        return self._engine.analyze(text, **kw)


def test_cycles_are_collected_in_the_gui_thread_while_the_worker_runs(qtbot, fakes):
    import gc

    from explainer.runtime import gui_gc

    c = make(_Allocating(fakes.FakeEngine()))
    got = []
    c.resultReady.connect(got.append)
    c.start()
    installed = gui_gc.installed() and not gc.isenabled()
    _Cycle.freed_in.clear()
    for _ in range(30):
        _Cycle()  # garbage at once, but only the cycle collector can free it
    for i in range(200):  # the worker keeps allocating; the GUI thread's timer collects once the count is due
        c.submit(f"text {i}")
        qtbot.waitUntil(lambda i=i: bool(got) and got[-1].text == f"text {i}", timeout=5000)
        if len(_Cycle.freed_in) == 30:
            break
    assert len(_Cycle.freed_in) == 30
    assert set(_Cycle.freed_in) == {threading.current_thread().name}
    assert installed
    assert_shut_down(c)
    assert not gc.isenabled()  # for the life of the process: never again in the middle of a Qt call


def test_shutdown_does_not_wait_forever_for_a_stuck_worker(qtbot, fakes, monkeypatch, caplog):
    from explainer.runtime import controller as ctl

    monkeypatch.setattr(ctl, "SHUTDOWN_WAIT_MS", 300)
    stuck, entered = threading.Event(), threading.Event()
    engine = fakes.FakeEngine()

    def factory(progress):  # never reports progress, so it never sees the cancel flag
        entered.set()
        stuck.wait(30)
        return engine

    c = Controller(factory, projection=False)
    c.start()
    assert entered.wait(5)
    thread = c.thread
    c.shutdown()
    assert "did not stop" in caplog.text and thread.isRunning()  # returned without waiting for the load
    assert any(t is thread for t, _ in ctl._UNFINISHED)
    stuck.set()
    assert thread.wait(10_000)
    ctl._UNFINISHED[:] = [(t, w) for t, w in ctl._UNFINISHED if t is not thread]


def test_a_job_cancelled_after_its_last_check_ends_cancelled(qtbot, fakes):
    """The work may finish after the view cancelled it (between its last look at the flag and its end): its progress
    after the cancel is not delivered, and neither is its result: it ends with CANCELLED, as the contract says."""
    from explainer.runtime.jobs import CANCELLED, WorkerJobs

    c = make(fakes.FakeEngine())
    c.start()
    qtbot.waitUntil(lambda: c.model is not None, timeout=10000)
    jobs = WorkerJobs(c)
    progress, done = [], []

    def work(engine, job):
        job.report("first", 0.5, "piece")
        job.cancel()  # (the view's cancel, arriving now)
        return "a result built on what was reported"

    jobs.start(work, lambda result, error: done.append((result, error)), lambda *p: progress.append(p))
    qtbot.waitUntil(lambda: bool(done), timeout=10000)
    assert done == [(None, CANCELLED)]
    assert progress == []  # (the one report was delivered after the cancel: dropped)
    assert_shut_down(c)


def test_a_model_that_cannot_analyse_the_reference_text_has_no_map_and_a_warning_without_traceback(caplog):
    """Preparing the embedding map runs the model on the reference text; a model whose numbers fail there (a
    user error: one sentence) leaves the map out and logs that sentence, not a traceback."""
    import logging

    from explainer.core.errors import ModelFileError
    from explainer.runtime.worker import AnalysisWorker

    class Projector:
        def prepare(self):
            raise ModelFileError("The model's numbers overflowed to infinity or NaN on this text.")

    worker = AnalysisWorker()
    worker.projector = Projector()
    got = []
    worker.projectionReady.connect(got.append)
    with caplog.at_level(logging.WARNING, logger="explainer.runtime.worker"):
        worker.prepare_projection()
    assert got == [None]
    records = [r for r in caplog.records if r.name == "explainer.runtime.worker"]
    assert records and all(r.exc_info is None for r in records)
    assert "overflowed" in records[-1].getMessage()


def test_the_model_thread_can_start_before_the_plotting_library_is_imported():
    """The application starts loading the model first and imports the window's modules while it loads: the
    controller and the garbage-collection timer it installs need none of them."""
    code = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from explainer.runtime import gui_gc\n"
        "from explainer.runtime.controller import Controller\n"
        "app = QApplication([])\n"
        "gui_gc.install()\n"
        "assert gui_gc.installed()\n"
        "heavy = sorted(m for m in ('pyqtgraph', 'numpy', 'onnxruntime', 'torch') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
