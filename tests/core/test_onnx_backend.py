"""ONNX Runtime's settings from the environment."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "value, threads, warned",
    [("", None, False), ("2", 2, False), (" 3 ", 3, False), ("abc", None, True), ("-1", None, True),
     ("0", None, True), ("100000", None, True), ("1024", None, True), ("1.5", None, True)],
)  # fmt: skip
def test_the_thread_count_from_the_environment_is_a_number_or_ignored(monkeypatch, caplog, value, threads, warned):
    from explainer.core.backends.onnx_backend import threads_from_env

    monkeypatch.setenv("EXPLAINER_ORT_THREADS", value)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    with caplog.at_level("WARNING"):
        assert threads_from_env() == threads
    assert bool(caplog.records) == warned
