"""A backend that fell back says so in the window (provider failures fall back with a notice)."""

from __future__ import annotations


def test_the_window_shows_the_engine_notice(qtbot, make_main_window, fakes):
    engine = fakes.FakeEngine()
    engine.notice = "ONNX Runtime could not start the CUDA provider; running on the CPU."
    w = make_main_window(lambda progress: engine)
    qtbot.waitUntil(lambda: engine.notice in w.statusBar().currentMessage(), timeout=10000)
