"""Shared fixtures: an isolated cache folder, offscreen Qt, the real bundled model, a tiny GGUF written on the fly,
the main window, and the Hugging Face reference model (only for tests marked ``reference``)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# the session's own cache (the converted model and its kernels: over 1 GB) and data folders, removed when the
# process ends (an xdist worker inherits its controller's cache and removes only the folder it made itself)
_CACHE = tempfile.mkdtemp(prefix="explainer-test-cache-")
_DATA_ROOT = tempfile.mkdtemp(prefix="explainer-test-data-")
for _made in (_CACHE, _DATA_ROOT):
    atexit.register(shutil.rmtree, _made, True)
os.environ.setdefault("EXPLAINER_CACHE", _CACHE)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # every test and every app it starts: no real screen

import pytest  # noqa: E402
from hypothesis import settings as hypothesis_settings  # noqa: E402

# The test command gives the same result at every run: the property tests draw the same examples each time (a
# fresh draw could fail an install on an example nobody has seen). EXPLAINER_TEST_EXPLORE=1 draws new ones.
hypothesis_settings.register_profile("fixed", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile("explore" if os.environ.get("EXPLAINER_TEST_EXPLORE") else "fixed")

_data_dirs = iter(range(1 << 62))


@pytest.fixture(scope="session", autouse=True)
def _gui_thread_garbage_collection(qapp):
    """As in the app: cycles are collected only on a GUI-thread timer, between events (never from a model
    worker thread, never inside a Qt call that walks the widgets); see explainer.runtime.gui_gc."""
    from explainer.runtime import gui_gc

    gui_gc.install()
    yield gui_gc


@pytest.fixture(autouse=True)
def _collect_between_tests(_gui_thread_garbage_collection):
    yield
    _gui_thread_garbage_collection.collect_if_due()  # what automatic collection would have done by now


@pytest.fixture(autouse=True)
def _isolated_autosave(monkeypatch):
    """The main window autosaves its text and scene to $EXPLAINER_DATA and
    restores them at start; each test gets its own (not yet created) folder, never the user's."""
    monkeypatch.setenv("EXPLAINER_DATA", os.path.join(_DATA_ROOT, f"t{next(_data_dirs)}"))


@pytest.fixture(scope="module")
def module_cache_folder(tmp_path_factory):
    """A fresh EXPLAINER_CACHE for one test module (tests that build caches from nothing)."""
    old = os.environ.get("EXPLAINER_CACHE")
    os.environ["EXPLAINER_CACHE"] = str(tmp_path_factory.mktemp("explainer-cache"))
    yield
    if old is None:
        os.environ.pop("EXPLAINER_CACHE", None)
    else:
        os.environ["EXPLAINER_CACHE"] = old


@pytest.fixture
def encoded_chars(monkeypatch):
    """``encoded_chars(tokenizer)`` starts counting the characters that tokenizer runs BPE on (returns a list
    that grows by one piece length per piece): how much of a text was looked at, independent of the
    machine's speed. The tokenizer's memo of its last text starts empty: no piece is reused from before."""

    def watch(tok) -> list[int]:
        seen: list[int] = []
        inner = tok._encode_piece
        monkeypatch.setattr(tok, "_memo", {})

        def counting(piece, *args):
            seen.append(len(piece))
            return inner(piece, *args)

        monkeypatch.setattr(tok, "_encode_piece", counting)
        return seen

    return watch


@pytest.fixture(scope="session")
def bundled_gguf():
    from explainer.core.bundled import bundled_model_path

    return bundled_model_path(fetch=False)


@pytest.fixture(scope="session")
def real_engine():
    """The real SmolLM2-135M-Instruct engine on CPU (loads once per test session)."""
    from explainer.core.engine import Engine

    return Engine(device="cpu")


@pytest.fixture(scope="session")
def real_engines(real_engine):
    """``real_engines(name)``: the real model on backend ``name`` ("torch" is ``real_engine``), made once per
    session (the first ONNX export of the real model takes minutes and goes into the test cache)."""
    from explainer.core.engine import Engine

    made = {"torch": real_engine}

    def get(name: str):
        if name not in made:
            eng = Engine(device="cpu", backend=name)
            if eng.backend != name:
                pytest.fail(f"the {name} backend did not start: {eng.notice}")
            made[name] = eng
        return made[name]

    return get


@pytest.fixture(scope="session")
def tiny_engine():
    from explainer.core.engine import demo_engine

    return demo_engine()


@pytest.fixture(scope="session")
def hf_model(bundled_gguf):
    """transformers' own Llama on the same GGUF, eager attention so it returns attention weights."""
    transformers = pytest.importorskip("transformers")
    import torch

    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(bundled_gguf.parent), gguf_file=bundled_gguf.name, attn_implementation="eager", dtype=torch.float32
    )
    model.eval()
    return model


# --- the main window ------------------------------------------------------------------------------------------------
@pytest.fixture
def qt_isolated(qapp, tmp_path, monkeypatch):
    """QSettings and the autosave folder in this test's temporary folder; pyqtgraph configured like the app."""
    import pyqtgraph as pg
    from PySide6.QtCore import QSettings

    for fmt in (QSettings.IniFormat, QSettings.NativeFormat):
        QSettings.setPath(fmt, QSettings.UserScope, str(tmp_path / "settings"))
    monkeypatch.setenv("EXPLAINER_DATA", str(tmp_path / "data"))
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)
    return tmp_path


@pytest.fixture
def make_main_window(qtbot, qt_isolated):
    """``make(factory=None, *, text="", start=True, size=(1280, 800), **controller_kw)``: a shown MainWindow on
    ``factory``'s engine (the demo engine when None), its controller started unless ``start=False``; no embedding
    map unless ``projection=True``; ``text=None`` restores the autosaved text. Closed after the test."""
    import shiboken6

    from explainer.runtime.controller import Controller, engine_factory
    from explainer.ui.main_window import MainWindow

    made = []

    def make(factory=None, *, text: str | None = "", start: bool = True, size=(1280, 800), **controller_kw):
        controller_kw.setdefault("projection", False)
        controller = Controller(factory or engine_factory(demo=True), **controller_kw)
        w = MainWindow(controller, text=text)
        qtbot.addWidget(w)
        w.resize(*size)
        w.show()
        if start:
            controller.start()
        made.append(w)
        return w

    yield make
    for w in made:
        if shiboken6.isValid(w):
            w.close()
