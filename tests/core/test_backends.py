"""Backends: the ONNX export of the tiny model agrees with torch; caching, fallbacks and ``auto``."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from .test_incremental import REAL, assert_same, run_sequence

TEXTS = ["The cat sat on the mat.", "How many r's are in strawberry? 数字 123 🍓", "a"]


def tiny_engine(backend: str, seed: int = 0, device: str = "cpu"):
    from explainer.core.bundled import bundled_model_path
    from explainer.core.engine import TINY_CONFIG, Engine
    from explainer.core.llama import random_weights

    return Engine(
        _weights=(TINY_CONFIG, random_weights(TINY_CONFIG, seed), bundled_model_path(fetch=False)),
        device=device,
        backend=backend,
    )


@pytest.fixture(scope="module")
def onnx_tiny():
    eng = tiny_engine("onnx")  # exports once into the test cache (seconds)
    assert eng.backend == "onnx", eng.notice
    return eng


@pytest.fixture(scope="module")
def torch_tiny():
    return tiny_engine("torch")


def export_path(engine):
    from explainer.core.backends.onnx_export import cached_export

    return cached_export(engine._backends.identity)


def assert_probabilities_close(a, b, tol=1e-3):
    assert a.ids.tolist() == b.ids.tolist()
    np.testing.assert_allclose(a.token_prob, b.token_prob, atol=tol, equal_nan=True)
    np.testing.assert_allclose(a.top_probs, b.top_probs, atol=tol)
    np.testing.assert_allclose(a.entropy_bits, b.entropy_bits, atol=10 * tol)
    np.testing.assert_allclose(a.attention.full(), b.attention.full(), atol=tol)
    scale = max(1.0, float(np.abs(b.hidden).max()))
    np.testing.assert_allclose(a.hidden, b.hidden, atol=tol * scale)


def test_onnx_backend_runs_on_cpu(onnx_tiny):
    assert onnx_tiny.backend == "onnx" and onnx_tiny.notice is None
    assert "CPUExecutionProvider" in onnx_tiny.backend_label
    assert onnx_tiny.analyze("hi").backend == "onnx"


@pytest.mark.parametrize("text", TEXTS)
def test_onnx_probabilities_equal_torch(onnx_tiny, torch_tiny, text):
    assert_probabilities_close(onnx_tiny.analyze(text, incremental=False), torch_tiny.analyze(text, incremental=False))


def test_onnx_incremental_equals_full_recompute(onnx_tiny):
    steps = [("append_char", c) for c in " and the dog"] + [
        ("backspace", 3),
        ("insert", 0.3, "big "),
        ("prefix", 0.5),
        ("empty",),
        ("append", "again!"),
    ]
    run_sequence(onnx_tiny, TEXTS[1], steps)


def test_onnx_incremental_equals_torch(onnx_tiny, torch_tiny):
    text = ""
    for ch in TEXTS[0]:
        text += ch
        r = onnx_tiny.analyze(text)
    assert_probabilities_close(r, torch_tiny.analyze(text, incremental=False))


def test_export_is_cached_with_a_record_and_reused(onnx_tiny, monkeypatch):
    from explainer.core.backends import onnx_export

    path = export_path(onnx_tiny)
    assert path is not None and path.with_suffix(".json").is_file()
    assert path.parent == onnx_export.cache_dir() / "onnx"
    monkeypatch.setattr(onnx_export, "export_model", lambda *a, **k: pytest.fail("exported again"))
    assert tiny_engine("onnx").backend == "onnx"


def test_damaged_export_is_rebuilt(onnx_tiny, tmp_path, monkeypatch):
    good = export_path(onnx_tiny)
    monkeypatch.setenv("EXPLAINER_CACHE", str(tmp_path))
    from explainer.core.backends.onnx_export import cached_export, export_paths

    identity = onnx_tiny._backends.identity
    dst, meta = export_paths(identity)
    shutil.copy(good, dst)
    shutil.copy(good.with_suffix(".json"), meta)
    assert cached_export(identity) == dst
    data = bytearray(dst.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\xff" * 64  # same size, damaged weights
    dst.write_bytes(bytes(data))
    assert cached_export(identity) is None
    eng = tiny_engine("onnx")
    assert eng.backend == "onnx" and cached_export(identity) == dst
    assert_probabilities_close(eng.analyze(TEXTS[0]), onnx_tiny.analyze(TEXTS[0], incremental=False), 1e-5)


def test_auto_uses_a_cached_export_and_otherwise_torch(onnx_tiny):
    assert tiny_engine("auto").backend == "onnx"
    other = tiny_engine("auto", seed=1)  # no export for these weights; in-memory models are not exported
    assert other.backend == "torch" and other._backends.job is None and other.notice is None


def test_unknown_backend_is_one_sentence():
    from explainer.core.errors import UserError

    with pytest.raises(UserError, match="Unknown backend"):
        tiny_engine("tensorrt")


def test_disagreeing_onnx_falls_back_to_torch(onnx_tiny, monkeypatch):
    import explainer.core.backends as backends

    monkeypatch.setattr(backends, "PROBE_TOLERANCE", -1.0)
    eng = tiny_engine("onnx")
    assert eng.backend == "torch" and "differs from torch" in eng.notice
    assert eng.analyze("still works").backend == "torch"


class _FailingCuda:
    def __init__(self, real):
        self.real = real

    def __call__(self, path, options=None, providers=None):
        if "CUDAExecutionProvider" in (providers or []):
            raise RuntimeError("CUDA failure: no device")
        return self.real(path, options, providers=providers)


def test_cuda_provider_that_fails_to_start_falls_back(onnx_tiny, monkeypatch):
    import onnxruntime

    from explainer.core.backends import onnx_backend

    monkeypatch.setattr(onnx_backend, "cuda_provider_available", lambda: True)
    monkeypatch.setattr(onnxruntime, "InferenceSession", _FailingCuda(onnxruntime.InferenceSession))
    be = onnx_backend.OnnxBackend(export_path(onnx_tiny), onnx_tiny.cfg, onnx_tiny.embedding_table, device="cuda")
    assert be.provider == onnx_backend.CPU and "CPU" in be.notice
    monkeypatch.setattr(onnx_backend, "cuda_provider_available", lambda: False)
    be = onnx_backend.OnnxBackend(export_path(onnx_tiny), onnx_tiny.cfg, onnx_tiny.embedding_table, device="cuda")
    assert be.provider == onnx_backend.CPU and "no CUDA provider" in be.notice


def test_provider_failing_while_running_falls_back(onnx_tiny):
    from explainer.core.backends import onnx_backend

    be = onnx_backend.OnnxBackend(export_path(onnx_tiny), onnx_tiny.cfg, onnx_tiny.embedding_table)
    ids = np.array([0, 5, 9], np.int64)
    expected = be.forward(ids, None)

    real = be.session

    class Broken:
        def io_binding(self):
            return real.io_binding()

        def run_with_iobinding(self, *a, **k):
            raise RuntimeError("CUDA error: an illegal memory access was encountered")

    be.session, be.provider = Broken(), onnx_backend.CUDA
    got = be.forward(ids, None)
    assert be.provider == onnx_backend.CPU and "CPU" in be.notice
    np.testing.assert_array_equal(got.attention, expected.attention)


def test_switches_to_onnx_when_a_background_export_finishes(onnx_tiny, tmp_path, monkeypatch):
    good = export_path(onnx_tiny)
    monkeypatch.setenv("EXPLAINER_CACHE", str(tmp_path))  # nothing cached: auto starts on torch
    eng = tiny_engine("auto")
    assert eng.backend == "torch"
    before = eng.analyze(TEXTS[0])

    class FinishedJob:
        def done(self):
            return True

        def wait(self, progress=None):
            pass

        def result(self):
            return good

    eng._backends.job = FinishedJob()
    after = eng.analyze(TEXTS[0] + " More")
    assert after.backend == "onnx" and eng.notice is None
    assert_same(after, onnx_tiny.analyze(TEXTS[0] + " More", incremental=False))
    assert before.backend == "torch"


def test_a_failed_export_job_reports_why(tmp_path):
    from explainer.core.backends import ExportJob

    job = ExportJob(tmp_path / "missing.gguf", "gguf-0000")
    job.wait()
    with pytest.raises(RuntimeError, match="export failed"):
        job.result()


@pytest.mark.slow
def test_real_model_onnx_equals_torch(real_engine):
    """The real model's ONNX export (cached; the first export takes minutes) against torch within 1e-3."""
    from explainer.core.engine import Engine

    eng = Engine(device="cpu", backend="onnx")
    assert eng.backend == "onnx", eng.notice
    for text in ("The cat sat on the", "def add(a, b):\n    return a + b  # 数字 123 🍓"):
        assert_probabilities_close(eng.analyze(text, incremental=False), real_engine.analyze(text, incremental=False))
    run_sequence(
        eng,
        "The cat sat on the",
        [("append", " mat"), ("backspace", 2), ("append_char", "x")],
        *REAL,
    )
