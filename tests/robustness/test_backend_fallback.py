"""CUDA / ONNX provider failures fall back (to torch, or to ONNX Runtime's CPU provider) with a one-sentence
notice, and the analysis goes on. No GPU needed: onnxruntime sessions are faked where a GPU would be."""

from __future__ import annotations

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")

from explainer.core.backends import onnx_backend as ob  # noqa: E402
from tests.robustness.hostile_texts import HOSTILE  # noqa: E402


def test_onnx_session_failure_falls_back_to_torch_with_a_notice(monkeypatch, tmp_path):
    from explainer.core.backends import onnx_export
    from explainer.core.bundled import bundled_model_path
    from explainer.core.engine import TINY_CONFIG, Engine
    from explainer.core.llama import random_weights

    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not really onnx")
    monkeypatch.setattr(onnx_export, "cached_export", lambda identity: fake)

    def broken(*a, **k):
        raise RuntimeError("CUDAExecutionProvider: libcudnn.so.9: cannot open shared object file")

    monkeypatch.setattr(ob, "OnnxBackend", broken)
    engine = Engine(
        _weights=(TINY_CONFIG, random_weights(TINY_CONFIG), bundled_model_path(fetch=False)),
        device="cpu",
        backend="onnx",
    )
    assert engine.backend == "torch"
    notice = engine.notice
    assert notice and "torch" in notice and "\n" not in notice and len(notice) < 300
    for name in ("zwj_family", "no_token_only", "special_im_end", "empty"):
        r = engine.analyze(HOSTILE[name], max_tokens=16, top_k=3)
        assert r.backend == "torch" and r.n_tokens >= 1


@pytest.fixture(scope="module")
def onnx_engine():
    """The tiny model on the ONNX backend (exported once on the CPU, ~10 s, then cached)."""
    from explainer.core.bundled import bundled_model_path
    from explainer.core.engine import TINY_CONFIG, Engine
    from explainer.core.llama import random_weights

    engine = Engine(
        _weights=(TINY_CONFIG, random_weights(TINY_CONFIG), bundled_model_path(fetch=False)),
        device="cpu",
        backend="onnx",
    )
    if engine.backend != "onnx":
        pytest.skip(f"no ONNX backend here: {engine.notice}")
    return engine


class BrokenCudaSession:
    """A real CPU session that claims to run on CUDA and fails whenever it is asked to run."""

    def __init__(self, real):
        self._real = real

    def get_providers(self):
        return [ob.CUDA, ob.CPU]

    def _fail(self, *a, **k):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    run = run_with_iobinding = run_with_ort_values = _fail

    def __getattr__(self, name):
        return getattr(self._real, name)


def make_like(active, device: str):
    """Another OnnxBackend like ``active`` for ``device`` (the constructor's parameters are looked up by name)."""
    import inspect

    known = {
        "path": active.path,
        "cfg": active.cfg,
        "embedding": getattr(active, "embedding", None),
        "device": device,
        "threads": None,
    }
    kwargs = {}
    for name, prm in list(inspect.signature(type(active).__init__).parameters.items())[1:]:
        if name in known and known[name] is not None:
            kwargs[name] = known[name]
        elif prm.default is inspect.Parameter.empty:
            pytest.skip(f"OnnxBackend takes an unknown argument {name!r}; update this test")
    return type(active)(**kwargs)


@pytest.mark.parametrize("fail", ["run", "create", "no_provider"])
def test_onnx_cuda_provider_failure_falls_back_to_cpu(monkeypatch, onnx_engine, fail):
    """No GPU needed: the CUDA provider is faked (it fails to start, or fails while running, or is missing)."""
    active = onnx_engine._backends.active
    real_session = ort.InferenceSession

    def session(path, options=None, providers=None, **kw):
        if providers and providers[0] == ob.CUDA:
            if fail == "create":
                raise RuntimeError("CUDA failure 999: unknown error")
            return BrokenCudaSession(real_session(path, options, providers=[ob.CPU], **kw))
        return real_session(path, options, providers=providers, **kw)

    monkeypatch.setattr(ort, "InferenceSession", session)
    monkeypatch.setattr(ob, "cuda_provider_available", lambda: fail != "no_provider")
    be = make_like(active, "cuda")
    ids = np.array([0, 504, 2644, 30], np.int64)
    step = be.forward(ids, None)
    assert be.provider == ob.CPU and "CPU" in be.label
    assert be.notice and "CPU" in be.notice and "\n" not in be.notice
    ref = active.forward(ids, None)
    np.testing.assert_allclose(step.final_normed, ref.final_normed, atol=1e-5)
    step2 = be.forward(np.array([17], np.int64), step.cache)  # and it keeps working
    assert be.cache_length(step2.cache) == 5
