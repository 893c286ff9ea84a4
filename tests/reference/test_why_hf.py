"""Knock-out, attribution and activation patching of the real model against Hugging Face transformers on the same
GGUF, with transformers' own hooks: a forward pre-hook on ``o_proj`` zeroing a head's slice, forward hooks on the
decoder layers replacing a residual, gradients of ``inputs_embeds``. Probabilities within 1e-4; attributions
within 1e-4 of the reference's largest score.

The attribution reference runs transformers in float64: its own float32 gradients differ from the float64 ones by
up to 1.2e-4 of the largest score on short texts (the backward of the vocabulary product sums 49k float32 terms
that nearly cancel), ours by at most 4e-5 (``attribution.logprob_gradient``)."""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import pytest
import torch

from explainer.core.attribution import attribute
from explainer.core.patching import patch

pytestmark = [pytest.mark.reference, pytest.mark.slow]

HEADS = ((1, 4), (4, 0), (14, 8), (22, 3))  # 0-based (layer, head)
TEXTS = [
    "The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the",
    "Paul was born in Germany, so Paul speaks",
]


@contextlib.contextmanager
def knocked_out(hf_model, heads):
    """transformers' Llama with ``heads`` zeroed: a pre-hook on o_proj sets the head's slice of its input to 0."""
    d_head = hf_model.config.hidden_size // hf_model.config.num_attention_heads
    handles = []
    for layer, head in heads:

        def zero(module, args, head=head):
            (z,) = args
            z = z.clone()
            z[..., head * d_head : (head + 1) * d_head] = 0
            return (z,)

        handles.append(hf_model.model.layers[layer].self_attn.o_proj.register_forward_pre_hook(zero))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _hf_probs(hf_model, ids, **kw):
    with torch.no_grad():
        out = hf_model(torch.tensor([list(ids)]), **kw)
    return torch.softmax(out.logits[0].double(), -1).numpy(), out


@pytest.mark.parametrize("text", TEXTS)
def test_knock_out_matches_transformers(real_engine, hf_model, text):
    r = real_engine.analyze(text, ablated=HEADS, incremental=False)
    assert r.ablated == HEADS
    with knocked_out(hf_model, HEADS):
        probs, out = _hf_probs(hf_model, r.ids, output_attentions=True, output_hidden_states=True)
    T = r.n_tokens
    np.testing.assert_allclose(r.token_prob[1:], probs[np.arange(T - 1), r.ids[1:]], atol=1e-4)
    np.testing.assert_allclose(r.top_probs, np.take_along_axis(probs, r.top_ids, -1), atol=1e-4)
    np.testing.assert_allclose(r.attention.full(), torch.stack([a[0] for a in out.attentions]).numpy(), atol=1e-4)
    for layer in (2, 15, 29):
        ref = out.hidden_states[layer][0].numpy()
        np.testing.assert_allclose(r.hidden[layer], ref, atol=1e-4 * max(1.0, np.abs(ref).max()))
    clean, _ = _hf_probs(hf_model, r.ids)
    assert np.abs(clean - probs).max() > 1e-2  # the knock-out is visible, so the comparison means something


@pytest.fixture(scope="module")
def hf_model64(hf_model):
    return copy.deepcopy(hf_model).double()


def _hf_attribution(hf_model, ids, target):
    emb = hf_model.model.embed_tokens(torch.tensor([list(ids)])).detach().requires_grad_()
    logp = torch.log_softmax(hf_model(inputs_embeds=emb).logits[0, -1].double(), -1)
    (grad,) = torch.autograd.grad(logp[target], emb)
    return (emb * grad).sum(-1)[0].detach().numpy(), float(logp[target].detach().exp())


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("heads", [(), HEADS])
def test_attribution_matches_transformers(real_engine, hf_model64, text, heads):
    ids = real_engine.analyze(text).ids
    a = attribute(real_engine, ids, ablated=heads)
    with knocked_out(hf_model64, heads):
        probs, _ = _hf_probs(hf_model64, ids)
        ref, prob = _hf_attribution(hf_model64, ids, a.target)
    assert a.target == int(probs[-1].argmax())
    assert a.target_prob == pytest.approx(prob, abs=1e-4)
    np.testing.assert_allclose(a.scores, ref, atol=1e-4 * np.abs(ref).max())
    # another candidate near the top
    second = int(np.argsort(-probs[-1])[3])
    b = attribute(real_engine, ids, target=second, ablated=heads)
    with knocked_out(hf_model64, heads):
        ref, prob = _hf_attribution(hf_model64, ids, second)
    assert b.target_prob == pytest.approx(prob, abs=1e-4)
    np.testing.assert_allclose(b.scores, ref, atol=1e-4 * np.abs(ref).max())


def _residual_output(output):
    return output[0] if isinstance(output, tuple) else output


def _hf_patched(hf_model, clean_ids, corrupt_ids, target, layers):
    """P(target) at the last position of the corrupted text with decoder layer l's output at position p replaced
    by the clean run's (forward hooks on the decoder layers), for l in ``layers`` and every p."""
    blocks = hf_model.model.layers
    clean = {}
    handles = [
        blocks[l].register_forward_hook(lambda m, a, o, l=l: clean.__setitem__(l, _residual_output(o)[0].clone()))
        for l in layers
    ]
    try:
        _hf_probs(hf_model, clean_ids)
    finally:
        for h in handles:
            h.remove()
    out = np.zeros((len(layers), len(clean_ids)))
    for i, l in enumerate(layers):
        for p in range(len(clean_ids)):

            def replace(module, args, output, l=l, p=p):
                h = _residual_output(output).clone()
                h[0, p] = clean[l][p]
                return (h, *output[1:]) if isinstance(output, tuple) else h

            handle = blocks[l].register_forward_hook(replace)
            try:
                probs, _ = _hf_probs(hf_model, corrupt_ids)
            finally:
                handle.remove()
            out[i, p] = probs[-1, target]
    return out


@pytest.mark.parametrize(
    "clean,corrupt",
    [
        ("The capital of France is", "The capital of Italy is"),
        ("Paul was born in Germany, so Paul speaks", "Anna was born in Spain, so Anna speaks"),
    ],
)
def test_patching_matches_transformers(real_engine, hf_model, clean, corrupt):
    a, b = real_engine.analyze(clean).ids, real_engine.analyze(corrupt).ids
    r = patch(real_engine, a, b)
    probs_clean, _ = _hf_probs(hf_model, a)
    probs_corrupt, _ = _hf_probs(hf_model, b)
    assert r.target == int(probs_clean[-1].argmax())
    assert r.clean_prob == pytest.approx(probs_clean[-1, r.target], abs=1e-4)
    assert r.corrupt_prob == pytest.approx(probs_corrupt[-1, r.target], abs=1e-4)
    layers = [0, 7, 15, 22, 23, 29]
    ref = _hf_patched(hf_model, a, b, r.target, layers)
    np.testing.assert_allclose(r.prob[layers], ref, atol=1e-4)
    assert r.prob.max() - r.prob.min() > 0.3  # the grid shows where the answer is carried
