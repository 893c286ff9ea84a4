"""Fixtures for the robustness tests: a tiny GGUF model on disk and an in-process CLI runner."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass

import pytest


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory, bundled_gguf):
    """The tiny random-weight Llama (``TINY_CONFIG``) written as an F32 GGUF with the real vocabulary."""
    from explainer.core.engine import TINY_CONFIG
    from explainer.core.llama import random_weights
    from tests.gguf_factory import write_tiny_llama

    path = tmp_path_factory.mktemp("model") / "tiny.gguf"
    return write_tiny_llama(path, TINY_CONFIG, random_weights(TINY_CONFIG), bundled_gguf)


@dataclass
class CliRun:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys, monkeypatch):
    """``cli(*argv, stdin=b"...")`` runs ``explainer.cli.main`` in this process and returns a CliRun."""
    from explainer.cli import main

    def run(*argv: str, stdin: bytes | None = None) -> CliRun:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
        code = main(list(argv))
        out, err = capsys.readouterr()
        return CliRun(code, out, err)

    return run


# --- Qt: a failing engine, message boxes, waiting for a result -------------------------------------------------------
class FailOn:
    """A fake engine: the tiny real engine, except that texts containing ``fail_on`` raise ``exc``."""

    def __init__(self, engine, fail_on: str = "BOOM", exc: BaseException | None = None):
        self._engine, self.fail_on = engine, fail_on
        self.exc = exc if exc is not None else RuntimeError("fake failure inside the analysis")
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def analyze(self, text, **kw):
        self.calls += 1
        if self.fail_on and self.fail_on in text:
            raise self.exc
        return self._engine.analyze(text, **kw)


@pytest.fixture
def dialogs(monkeypatch):
    """Record message boxes instead of showing them: a list of (kind, title, text)."""
    from PySide6.QtWidgets import QMessageBox

    shown: list[tuple[str, str, str]] = []

    def static(kind):
        def record(parent, title, text, *args, **kwargs):
            shown.append((kind, title, text))
            return QMessageBox.Ok

        return staticmethod(record)

    for kind in ("warning", "critical", "information", "question"):
        monkeypatch.setattr(QMessageBox, kind, static(kind))
    monkeypatch.setattr(QMessageBox, "open", lambda self, *a: shown.append(("open", self.windowTitle(), self.text())))
    monkeypatch.setattr(
        QMessageBox, "exec", lambda self, *a: shown.append(("exec", self.windowTitle(), self.text())) or 0
    )
    return shown


def wait_for_result(qtbot, w, text: str | None = None, timeout: int = 30000) -> None:
    """Until the window shows the analysis of ``text`` (default: the editor's text) and nothing is pending."""
    qtbot.waitUntil(
        lambda: (
            w.result is not None
            and w.result.text == (w.editor.toPlainText() if text is None else text)
            and not w.controller.busy
        ),
        timeout=timeout,
    )
