"""Knock-out, attribution and patching on model folders of every family (Llama, Qwen2, GPT-2) against transformers
on the same folder, with transformers' own hooks: a forward pre-hook on the attention's output projection
(``o_proj``, GPT-2's ``c_proj``) zeroing a head's slice, ``inputs_embeds`` gradients in float64, forward hooks on the
decoder blocks. Probabilities within 1e-4; attributions within 1e-4 of the reference's largest score."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from explainer.core.attribution import attribute
from explainer.core.engine import Engine
from explainer.core.patching import patch
from tests.hf_factory import write_folder

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")
pytestmark = pytest.mark.reference

SHAPES = {
    "gpt2": ("gpt2", dict(n_layers=3, n_heads=4, tied=False)),
    "llama": ("llama", dict(n_layers=3, n_heads=4, n_kv_heads=2, bos="<s>")),
    "qwen2": ("qwen2", dict(n_layers=3, d_model=48, n_heads=6, n_kv_heads=2)),
}
TEXT = "The cat sat on the mat. The cat sat on the"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    base = tmp_path_factory.mktemp("why")
    return {
        name: write_folder(base / name, arch, seed=3 + i, **kw) for i, (name, (arch, kw)) in enumerate(SHAPES.items())
    }


def _hf(folder, dtype=None):
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(folder), attn_implementation="eager", dtype=torch.float32
    ).eval()
    return model.to(dtype) if dtype is not None else model


def _blocks(model):
    return model.transformer.h if hasattr(model, "transformer") else model.model.layers


def _out_proj(block):
    return block.attn.c_proj if hasattr(block, "attn") else block.self_attn.o_proj


def _embed(model):
    return model.transformer.wte if hasattr(model, "transformer") else model.model.embed_tokens


@contextlib.contextmanager
def knocked_out(model, heads):
    d_head = model.config.hidden_size // model.config.num_attention_heads
    if getattr(model.config, "head_dim", None):
        d_head = model.config.head_dim
    handles = []
    for layer, head in heads:

        def zero(module, args, head=head):
            z = args[0].clone()
            z[..., head * d_head : (head + 1) * d_head] = 0
            return (z, *args[1:])

        handles.append(_out_proj(_blocks(model)[layer]).register_forward_pre_hook(zero))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _probs(model, ids):
    with torch.no_grad():
        logits = model(torch.tensor([list(ids)])).logits[0]
    return torch.softmax(logits.double(), -1).numpy()


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_knock_out_equals_transformers(name, folders):
    engine = Engine(folders[name], device="cpu", backend="auto")
    heads = ((0, 1), (2, 0), (2, engine.info.n_heads - 1))
    r = engine.analyze(TEXT, ablated=heads, incremental=False)
    assert r.ablated == heads and r.backend == "torch"
    model = _hf(folders[name])
    with knocked_out(model, heads):
        probs = _probs(model, r.ids)
    np.testing.assert_allclose(r.top_probs, np.take_along_axis(probs, r.top_ids, -1), atol=1e-4)
    clean = engine.analyze(TEXT)
    assert np.abs(clean.top_probs[:, 0] - r.top_probs[:, 0]).max() > 1e-3  # the knock-out changes something


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_attribution_equals_transformers(name, folders):
    engine = Engine(folders[name], device="cpu", backend="auto")
    ids = engine.analyze(TEXT).ids
    a = attribute(engine, ids)
    model = _hf(folders[name], torch.float64)
    emb = _embed(model)(torch.tensor([list(ids)])).detach().requires_grad_()
    logp = torch.log_softmax(model(inputs_embeds=emb).logits[0, -1], -1)
    (grad,) = torch.autograd.grad(logp[a.target], emb)
    ref = (emb * grad).sum(-1)[0].detach().numpy()
    assert a.target == int(logp.argmax())
    assert a.target_prob == pytest.approx(float(logp[a.target].detach().exp()), abs=1e-4)
    np.testing.assert_allclose(a.scores, ref, atol=1e-4 * np.abs(ref).max())


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_patching_equals_transformers(name, folders):
    engine = Engine(folders[name], device="cpu", backend="auto")
    clean = engine.analyze("The cat sat on the mat").ids
    corrupt = engine.analyze("The dog sat on the mat").ids
    if len(clean) != len(corrupt):
        pytest.skip("the random tokenizer cut the two texts differently")
    res = patch(engine, clean, corrupt)
    model = _hf(folders[name])
    blocks = _blocks(model)
    saved = {}
    handles = [
        b.register_forward_hook(
            lambda m, a, o, l=l: saved.__setitem__(l, (o[0] if isinstance(o, tuple) else o)[0].clone())
        )
        for l, b in enumerate(blocks)
    ]
    _probs(model, clean)
    for h in handles:
        h.remove()
    for layer in range(len(blocks)):
        for p in range(len(clean)):

            def replace(module, args, output, l=layer, p=p):
                h = (output[0] if isinstance(output, tuple) else output).clone()
                h[0, p] = saved[l][p]
                return (h, *output[1:]) if isinstance(output, tuple) else h

            handle = blocks[layer].register_forward_hook(replace)
            try:
                want = _probs(model, corrupt)[-1, res.target]
            finally:
                handle.remove()
            assert res.prob[layer, p] == pytest.approx(want, abs=1e-4)
