"""The engine on a CUDA GPU agrees with the CPU; ONNX Runtime's CUDA provider works.

Every test here needs a CUDA device and is skipped, with that reason, where torch sees none.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU: torch.cuda.is_available() is False"),
]
TEXTS = ["The cat sat on the", "How many r's are in strawberry? 数字 123 🍓"]


def _tiny(device: str, backend: str = "torch"):
    from explainer.core.bundled import bundled_model_path
    from explainer.core.engine import TINY_CONFIG, Engine
    from explainer.core.llama import random_weights

    return Engine(
        _weights=(TINY_CONFIG, random_weights(TINY_CONFIG, 0), bundled_model_path(fetch=False)),
        device=device,
        backend=backend,
    )


def _assert_close(a, b, tol=1e-3):
    assert a.ids.tolist() == b.ids.tolist()
    np.testing.assert_allclose(a.token_prob, b.token_prob, atol=tol, equal_nan=True)
    np.testing.assert_allclose(a.top_probs, b.top_probs, atol=tol)
    np.testing.assert_allclose(a.attention.full(), b.attention.full(), atol=tol)


def test_device_label_names_the_gpu():
    eng = _tiny("cuda")
    assert eng.device.startswith("cuda (") and torch.cuda.get_device_name(0) in eng.device
    assert eng.analyze("hello").device == eng.device


@pytest.mark.parametrize("text", TEXTS)
def test_tiny_cuda_equals_cpu(text):
    _assert_close(_tiny("cuda").analyze(text), _tiny("cpu").analyze(text))


def test_tiny_cuda_incremental_equals_cpu():
    gpu, cpu = _tiny("cuda"), _tiny("cpu")
    text = ""
    for ch in TEXTS[1]:
        text += ch
        r = gpu.analyze(text)
    _assert_close(r, cpu.analyze(text, incremental=False))


def test_onnx_cuda_provider_works():
    from explainer.core.backends.onnx_backend import CUDA, cuda_provider_available

    if not cuda_provider_available():
        pytest.skip("onnxruntime lists no CUDAExecutionProvider (CPU-only onnxruntime, or no CUDA libraries)")
    eng = _tiny("cuda", backend="onnx")
    assert eng.backend == "onnx", eng.notice
    assert eng._backends.active.provider == CUDA and eng.notice is None
    _assert_close(eng.analyze(TEXTS[1]), _tiny("cpu").analyze(TEXTS[1]))


def test_auto_on_gpu_is_torch():
    assert _tiny("cuda", backend="auto").backend == "torch"


@pytest.mark.slow
@pytest.mark.parametrize("text", TEXTS)
def test_real_model_cuda_equals_cpu(real_engine, text):
    from explainer.core.engine import Engine

    gpu = Engine(device="cuda")
    assert gpu.device.startswith("cuda (")
    _assert_close(gpu.analyze(text), real_engine.analyze(text, incremental=False))
