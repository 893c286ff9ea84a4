"""The real model against Hugging Face transformers on the same GGUF: probabilities and attention within 1e-4."""

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


def _hf(hf_model, ids):
    with torch.no_grad():
        return hf_model(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)


@pytest.mark.parametrize("text", TEXTS)
def test_probabilities_attention_and_states_match_transformers(real_engine, hf_model, text):
    r = real_engine.analyze(text, incremental=False, parse_specials=True)
    out = _hf(hf_model, r.ids.tolist())
    probs = torch.softmax(out.logits[0].double(), -1).numpy()
    T = r.n_tokens
    # the probability of every actual token given its prefix
    hf_token_prob = probs[np.arange(T - 1), r.ids[1:]]
    np.testing.assert_allclose(r.token_prob[1:], hf_token_prob, atol=1e-4)
    # the top candidates after every position
    np.testing.assert_allclose(r.top_probs, np.take_along_axis(probs, r.top_ids, -1), atol=1e-4)
    assert (r.top_ids[:, 0] == probs.argmax(-1)).all()
    # attention [layer, head, query, key]
    hf_att = torch.stack([a[0] for a in out.attentions]).numpy()
    np.testing.assert_allclose(r.attention.full(), hf_att, atol=1e-4)
    # residual stream after each layer (HF's last entry is after the final norm)
    for layer in (0, 1, 15, 29):
        ref = out.hidden_states[layer][0].numpy()
        scale = np.abs(ref).max()
        np.testing.assert_allclose(r.hidden[layer], ref, atol=1e-4 * max(1.0, scale))
    np.testing.assert_allclose(r.final_normed, out.hidden_states[30][0].numpy(), atol=1e-3)


def test_incremental_equals_reference(real_engine, hf_model):
    real_engine.reset()
    text = "The eagle catches the"
    for i in range(1, len(text) + 1):
        r = real_engine.analyze(text[:i])
    out = _hf(hf_model, r.ids.tolist())
    probs = torch.softmax(out.logits[0].double(), -1).numpy()
    np.testing.assert_allclose(r.top_probs, np.take_along_axis(probs, r.top_ids, -1), atol=1e-4)
    hf_att = torch.stack([a[0] for a in out.attentions]).numpy()
    np.testing.assert_allclose(r.attention.full(), hf_att, atol=1e-4)


def test_cat_sat_on_the_predicts_mat(real_engine, tokenizer_decode=None):
    r = real_engine.analyze("The cat sat on the", incremental=False)
    assert real_engine.tokenizer.decode([int(r.top_ids[-1, 0])]) == " mat"
    assert r.top_probs[-1, 0] == pytest.approx(0.325, abs=0.01)
