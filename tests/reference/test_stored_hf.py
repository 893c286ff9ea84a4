"""The stored-weights backend (ONNX Runtime on the GGUF's own Q4_1/Q8_0 blocks) on the real model: against
Hugging Face transformers on the same file (probabilities within 2e-3, the same top candidates) and against the
float32 torch path (probabilities and attention within 1e-4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.reference, pytest.mark.slow]

TEXTS = [
    "The cat sat on the",
    "How many r's are in strawberry?",
    "I sat on the bank of the river. Then I went to the bank to deposit money.",
    "def add(a, b):\n    return a + b  # 数字 123 🍓",
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
]
HF_TOL = 2e-3
FLOAT32_TOL = 1e-4


@pytest.fixture(scope="module")
def stored_engine():
    from explainer.core.engine import Engine

    eng = Engine(device="cpu", backend="stored")
    assert eng.backend == "stored", eng.notice
    return eng


def _hf_probs(hf_model, ids) -> np.ndarray:
    with torch.no_grad():
        out = hf_model(torch.tensor([ids]))
    return torch.softmax(out.logits[0].double(), -1).numpy()


def _assert_same_top(r, probs, k=5, gap=1e-4):
    """The top-``k`` ids equal the reference's, except where two candidates are within ``gap`` (a tie)."""
    ref_top = np.argsort(-probs, axis=-1)[:, :k]
    for row in range(len(ref_top)):
        for j in range(k):
            if r.top_ids[row, j] != ref_top[row, j]:
                assert abs(probs[row, r.top_ids[row, j]] - probs[row, ref_top[row, j]]) < gap


@pytest.mark.parametrize("text", TEXTS)
def test_stored_probabilities_match_transformers(stored_engine, hf_model, text):
    r = stored_engine.analyze(text, incremental=False, parse_specials=True)
    probs = _hf_probs(hf_model, r.ids.tolist())
    T = r.n_tokens
    np.testing.assert_allclose(r.token_prob[1:], probs[np.arange(T - 1), r.ids[1:]], atol=HF_TOL)
    np.testing.assert_allclose(r.top_probs, np.take_along_axis(probs, r.top_ids, -1), atol=HF_TOL)
    _assert_same_top(r, probs)


@pytest.mark.parametrize("text", TEXTS)
def test_stored_equals_the_float32_path(stored_engine, real_engine, text):
    a = stored_engine.analyze(text, incremental=False, parse_specials=True)
    b = real_engine.analyze(text, incremental=False, parse_specials=True)
    assert a.ids.tolist() == b.ids.tolist()
    np.testing.assert_allclose(a.token_prob, b.token_prob, atol=FLOAT32_TOL, equal_nan=True)
    np.testing.assert_allclose(a.top_probs, b.top_probs, atol=FLOAT32_TOL)
    np.testing.assert_allclose(a.attention.full(), b.attention.full(), atol=FLOAT32_TOL)
    for layer in (1, 15, 30):
        scale = max(1.0, float(np.abs(b.hidden[layer]).max()))
        np.testing.assert_allclose(a.hidden[layer], b.hidden[layer], atol=FLOAT32_TOL * scale)


def test_stored_incremental_matches_transformers(stored_engine, hf_model):
    stored_engine.reset()
    text = "The eagle catches the"
    for i in range(1, len(text) + 1):
        r = stored_engine.analyze(text[:i])
    probs = _hf_probs(hf_model, r.ids.tolist())
    np.testing.assert_allclose(r.top_probs, np.take_along_axis(probs, r.top_ids, -1), atol=HF_TOL)
    _assert_same_top(r, probs)


def test_stored_cat_sat_on_the_predicts_mat(stored_engine):
    r = stored_engine.analyze("The cat sat on the", incremental=False)
    assert stored_engine.tokenizer.decode([int(r.top_ids[-1, 0])]) == " mat"
    assert r.top_probs[-1, 0] == pytest.approx(0.325, abs=0.01)
