"""Model folders of every supported family against transformers on the same folder: ``explainer analyze --model
FOLDER --no-start-token --json --attention --top-k 5`` gives the probabilities and the attention transformers
computes (within 1e-4), for several layer / head / key-value-head shapes. The folders are made by transformers
with random weights (tests/hf_factory.py); no file comes from the network."""

from __future__ import annotations

import json

import numpy as np
import pytest

from explainer.cli import main
from tests.hf_factory import write_folder

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")
pytestmark = pytest.mark.reference

TEXTS = [
    "The cat sat on the mat. The cat sat on the",
    "def add(a, b):\n    return a + b  # 数字 123 🍓",
    "<|im_start|>user\nHi<|im_end|>",
]
LLAMA3_ROPE = {
    "rope_type": "llama3",
    "rope_theta": 500000.0,
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 16,
}
SHAPES = {
    "gpt2-3x2-untied": ("gpt2", dict(n_layers=3, n_heads=2, tied=False)),
    "gpt2-2x4-tied-bf16": ("gpt2", dict(n_layers=2, n_heads=4, d_model=48, dtype="bfloat16")),
    "gpt2-exact-gelu": ("gpt2", dict(n_layers=1, n_heads=8, config_extra={"activation_function": "gelu"})),
    "llama-4q2kv-untied-bos": ("llama", dict(n_heads=4, n_kv_heads=2, tied=False, bos="<s>")),
    "llama-4q1kv-llama3-rope-head_dim": (
        "llama",
        dict(n_heads=4, n_kv_heads=1, config_extra={"rope_parameters": LLAMA3_ROPE, "head_dim": 16}),
    ),
    "qwen2-4q1kv-untied": ("qwen2", dict(n_heads=4, n_kv_heads=1, tied=False)),
    "qwen2-3x6q2kv-tied": ("qwen2", dict(n_layers=3, d_model=48, n_heads=6, n_kv_heads=2)),
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    base = tmp_path_factory.mktemp("ref")
    return {name: write_folder(base / name, arch, seed=i, **kw) for i, (name, (arch, kw)) in enumerate(SHAPES.items())}


def _hf(folder):
    return transformers.AutoModelForCausalLM.from_pretrained(
        str(folder), attn_implementation="eager", dtype=torch.float32
    ).eval()


def _analyze(capsys, folder, *extra):
    code = main(["analyze", "--model", str(folder), "--json", "--attention", "--top-k", "5", *extra, *TEXTS])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out), err


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_cli_equals_transformers(name, folders, capsys):
    rows, _ = _analyze(capsys, folders[name], "--no-start-token")
    model = _hf(folders[name])
    for r in rows:
        ids = [t["id"] for t in r["tokens"]]
        assert not any(t["special"] and t["text"] == "<|endoftext|>" for t in r["tokens"])
        with torch.no_grad():
            out = model(torch.tensor([ids]), output_attentions=True)
        probs = torch.softmax(out.logits[0].double(), -1).numpy()
        V = probs.shape[1]
        assert probs.max() > 20 / V  # the random model is not uniform: the comparison can fail
        for i, pos in enumerate(r["positions"]):
            got = np.array([t["prob"] for t in pos["top"]])
            np.testing.assert_allclose(got, probs[i, [t["id"] for t in pos["top"]]], atol=1e-4)
            assert [t["id"] for t in pos["top"]][0] == int(probs[i].argmax())
            if i + 1 < len(ids):
                assert r["positions"][i + 1]["prob"] == pytest.approx(probs[i, ids[i + 1]], abs=1e-4)
        hf_att = torch.stack([a[0] for a in out.attentions]).numpy()  # [layer, head, query, key]
        np.testing.assert_allclose(np.array(r["attention"]), hf_att, atol=1e-4)


@pytest.mark.parametrize("name", ["gpt2-3x2-untied", "llama-4q2kv-untied-bos", "qwen2-4q1kv-untied"])
def test_start_token_is_the_models_own(name, folders, capsys):
    rows, _ = _analyze(capsys, folders[name])
    model = _hf(folders[name])
    tok = transformers.AutoTokenizer.from_pretrained(str(folders[name]))
    first = rows[0]["tokens"][0]
    want = "<s>" if name.startswith("llama") else "<|endoftext|>"
    assert first["special"] and first["text"] == want and first["id"] == tok.convert_tokens_to_ids(want)
    ids = [t["id"] for t in rows[0]["tokens"]]
    assert ids[1:] == tok(TEXTS[0], add_special_tokens=False)["input_ids"]
    if name.startswith("llama"):  # its tokenizer adds <s> itself: the same ids as transformers' default
        assert ids == tok(TEXTS[0])["input_ids"]
    with torch.no_grad():
        probs = torch.softmax(model(torch.tensor([ids])).logits[0].double(), -1).numpy()
    got = [p["prob"] for p in rows[0]["positions"][1:]]
    np.testing.assert_allclose(got, probs[np.arange(len(ids) - 1), ids[1:]], atol=1e-4)


@pytest.mark.parametrize("name", ["gpt2-3x2-untied", "qwen2-3x6q2kv-tied", "llama-4q1kv-llama3-rope-head_dim"])
def test_engine_views_on_folders(name, folders):
    """Incremental typing equals a full pass; the walk-through and the logit lens redo the model's own numbers."""
    from explainer.core import walkthrough as wt
    from explainer.core.engine import Engine
    from explainer.core.heads import ROLES, reference_scores, scores_from_result
    from explainer.core.lens import logit_lens

    engine = Engine(folders[name], device="cpu", backend="auto")
    text = TEXTS[0]
    for i in range(1, len(text) + 1, 3):
        engine.analyze(text[:i])
    r = engine.analyze(text)
    full = engine.analyze(text, incremental=False)
    np.testing.assert_allclose(r.top_probs, full.top_probs, atol=1e-5)  # float32 sums in another order
    np.testing.assert_allclose(r.attention.full(), full.attention.full(), atol=1e-5)
    assert engine.backend == "torch"
    info = r.model
    for layer in range(info.n_layers):
        for head in range(info.n_heads):
            for q in (0, r.n_tokens // 2, r.n_tokens - 1):
                w = wt.walkthrough(r, layer, head, q)
                np.testing.assert_allclose(w.weights[: q + 1], r.attention.row(layer, head, q), atol=1e-5)
    lens = logit_lens(r, r.n_tokens - 1, k=5)
    np.testing.assert_allclose(lens.top_probs[-1], r.top_probs[-1, :5], atol=1e-5)
    for scores in (scores_from_result(r), reference_scores(engine, n_seeds=1)):
        for role in ROLES:
            values = np.asarray(scores.role(role))
            assert values.shape == (info.n_layers, info.n_heads) and np.all((values >= 0) | np.isnan(values))


@pytest.mark.parametrize("choice", ["auto", "onnx"])
def test_qwen2_and_gpt2_run_on_torch_and_say_so(choice, folders):
    from explainer.core.engine import Engine

    for name in ("gpt2-3x2-untied", "qwen2-4q1kv-untied"):
        engine = Engine(folders[name], device="cpu", backend=choice)
        family = "GPT-2" if name.startswith("gpt2") else "Qwen2"
        assert engine.backend == "torch" and engine._backends.job is None  # no export started
        assert (
            engine.notice
            == f"The ONNX backend runs Llama-architecture models only; this {family} model runs with torch."
        )
        assert engine.analyze("The cat").backend == "torch"
    llama = Engine(folders["llama-4q2kv-untied-bos"], device="cpu", backend="auto")
    assert llama.backend == "torch" and (llama.notice is None or "Llama-architecture" not in llama.notice)
