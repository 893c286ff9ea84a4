"""Hugging Face model folders: weights read into the loader's layout, and every broken or unsupported folder gives
one sentence (ModelFileError; the CLI exits 2). Folders are made here by transformers with random weights."""

from __future__ import annotations

import json
import os
import pickle
import shutil

import numpy as np
import pytest

from explainer.core import hf_folder
from explainer.core.errors import ModelFileError
from explainer.core.hf_folder import inspect_folder, load_folder_weights
from explainer.core.local_models import cached_models, hf_cache_dir
from tests.hf_factory import write_folder

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    base = tmp_path_factory.mktemp("hf")
    return {
        "gpt2": write_folder(base / "gpt2", "gpt2", n_layers=2, n_heads=4, tied=False),
        "llama": write_folder(base / "llama", "llama", n_heads=4, n_kv_heads=2, bos="<s>"),
        "qwen2": write_folder(base / "qwen2", "qwen2", n_heads=4, n_kv_heads=1, tied=False, dtype="bfloat16"),
    }


def _state(folder):
    from safetensors.torch import load_file

    return {k: v.float().numpy() for k, v in load_file(str(folder / "model.safetensors")).items()}


def test_gpt2_conv1d_weights_are_split_and_transposed(folders):
    f = inspect_folder(folders["gpt2"])
    cfg = f.config
    assert (cfg.arch, cfg.positions, cfg.norm, cfg.mlp, cfg.activation) == (
        "gpt2",
        "learned",
        "layer",
        "plain",
        "gelu_tanh",
    )
    assert cfg.qkv_bias and cfg.o_bias and cfg.mlp_bias and not f.tied
    w, s, D = load_folder_weights(f), _state(folders["gpt2"]), cfg.d_model
    c_attn = s["transformer.h.1.attn.c_attn.weight"]  # Conv1D: [in, 3 * out]
    np.testing.assert_array_equal(w["layers.1.wk"], c_attn[:, D : 2 * D].T)
    np.testing.assert_array_equal(w["layers.1.bv"], s["transformer.h.1.attn.c_attn.bias"][2 * D :])
    np.testing.assert_array_equal(w["layers.0.w_down"], s["transformer.h.0.mlp.c_proj.weight"].T)
    np.testing.assert_array_equal(w["pos_embed"], s["transformer.wpe.weight"])
    np.testing.assert_array_equal(w["lm_head"], s["lm_head.weight"])
    assert all(a.dtype == np.float32 and a.flags.c_contiguous for a in w.values())


def test_llama_and_qwen2_layout(folders):
    f = inspect_folder(folders["llama"])
    assert f.tied and f.config.n_kv_heads == 2 and not f.config.qkv_bias
    w = load_folder_weights(f)
    assert "lm_head" not in w and "layers.0.bq" not in w
    np.testing.assert_array_equal(w["layers.1.wk"], _state(folders["llama"])["model.layers.1.self_attn.k_proj.weight"])
    q = inspect_folder(folders["qwen2"])
    assert q.config.qkv_bias and not q.config.o_bias and q.config.n_kv_heads == 1
    w = load_folder_weights(q)  # stored as bfloat16: read as float32
    s = _state(folders["qwen2"])
    np.testing.assert_array_equal(w["layers.0.bq"], s["model.layers.0.self_attn.q_proj.bias"])
    np.testing.assert_array_equal(w["lm_head"], s["lm_head.weight"])


def _copy(folder, tmp_path, name="m"):
    dst = tmp_path / name
    shutil.copytree(folder, dst)
    return dst


def _edit_config(folder, **changes):
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(changes)
    (folder / "config.json").write_text(json.dumps(cfg))


class _Boom:
    """Unpickling this writes a marker file: a pickle weight file must never be loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _broken(kind, folders, tmp_path):
    f = _copy(folders["gpt2"], tmp_path)
    if kind == "unsupported":
        _edit_config(f, architectures=["MistralForCausalLM"], model_type="mistral")
    elif kind == "remote_code":
        _edit_config(f, auto_map={"AutoModelForCausalLM": "modeling_x.XForCausalLM"}, architectures=["XForCausalLM"])
    elif kind == "pickle_only":
        (f / "model.safetensors").unlink()
        (f / "pytorch_model.bin").write_bytes(pickle.dumps(_Boom(str(tmp_path / "pickle-was-loaded"))))
    elif kind == "no_tokenizer":
        (f / "tokenizer.json").unlink()
    elif kind == "no_weights":
        (f / "model.safetensors").unlink()
    elif kind == "no_config":
        (f / "config.json").unlink()
        (f / "notes.txt").write_text("x")
    elif kind == "bad_config":
        (f / "config.json").write_text("{not json")
    elif kind == "truncated":
        data = (f / "model.safetensors").read_bytes()
        (f / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif kind == "garbage_weights":
        (f / "model.safetensors").write_bytes(os.urandom(3000))
    elif kind == "wrong_shape":
        _edit_config(f, n_embd=48)
    elif kind == "missing_tensor":
        from safetensors.numpy import load_file, save_file

        tensors = load_file(f / "model.safetensors")
        del tensors[next(k for k in tensors if k.endswith("h.1.mlp.c_fc.bias"))]
        save_file(tensors, f / "model.safetensors", metadata={"format": "pt"})
    elif kind == "more_layers":
        _edit_config(f, n_layer=3)
    elif kind == "absurd_layers":
        _edit_config(f, n_layer=10**9)
    elif kind == "nan_weights":
        from safetensors.numpy import load_file, save_file

        tensors = load_file(f / "model.safetensors")
        key = next(k for k in tensors if k.endswith("h.1.mlp.c_fc.weight"))  # (with the file's own prefix)
        tensors[key].flat[7] = np.nan
        save_file(tensors, f / "model.safetensors", metadata={"format": "pt"})
    elif kind == "too_large":
        pass  # with the free memory patched below
    return f


KINDS = {
    "unsupported": ["MistralForCausalLM", "Llama", "Qwen2", "GPT-2"],
    "remote_code": ["trust_remote_code"],
    "pickle_only": ["pickle", "pytorch_model.bin", "safetensors"],
    "no_tokenizer": ["tokenizer.json"],
    "no_weights": ["safetensors"],
    "no_config": ["config.json"],
    "bad_config": ["config.json", "JSON"],
    "truncated": ["truncated"],
    "garbage_weights": ["safetensors"],
    "wrong_shape": ["shape"],
    "missing_tensor": ["h.1.mlp.c_fc.bias"],
    "more_layers": ["3 layers", "weights of 2", "folder"],
    "absurd_layers": ["1000000000 layers", "weights of 2"],  # said at once, without building a billion layers
    "too_large": ["GB", "free"],
    "nan_weights": ["h.1.mlp.c_fc.weight", "NaN", "damaged"],  # the tensor named as the file names it
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_broken_folders_raise_one_sentence(kind, folders, tmp_path, monkeypatch):
    f = _broken(kind, folders, tmp_path)
    if kind == "too_large":
        monkeypatch.setattr(hf_folder, "available_memory", lambda: 10_000)
    with pytest.raises(ModelFileError) as err:
        load_folder_weights(inspect_folder(f))
    msg = str(err.value)
    assert "\n" not in msg and msg.endswith(".") and msg.count(". ") <= 1, msg
    for word in KINDS[kind]:
        assert word in msg, (word, msg)
    assert not (tmp_path / "pickle-was-loaded").exists()


@pytest.mark.parametrize("kind", ["unsupported", "remote_code", "pickle_only", "no_tokenizer", "too_large"])
def test_cli_exits_2_with_one_line(kind, folders, tmp_path, monkeypatch, capsys):
    from explainer.cli import main

    f = _broken(kind, folders, tmp_path)
    if kind == "too_large":
        monkeypatch.setattr(hf_folder, "available_memory", lambda: 10_000)
    code = main(["analyze", "--model", str(f), "--json", "hello"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "pickle-was-loaded").exists()


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"rope_parameters": {"rope_type": "default", "rope_theta": "abc"}}, ["'rope_theta'", "not a number"]),
        ({"rms_norm_eps": [1]}, ["'rms_norm_eps'", "not a number"]),
        ({"rope_parameters": {"rope_theta": 0}}, ["rotary base", "0.0"]),
        ({"rope_parameters": None, "rope_theta": float("nan")}, ["rotary base", "nan"]),  # the older key
        ({"rms_norm_eps": -1}, ["epsilon", "-1"]),
        ({"max_position_embeddings": 0}, ["context length is 0"]),
        ({"num_attention_heads": -4}, ["attention heads is -4"]),
        ({"num_key_value_heads": 3}, ["4 attention heads", "3 key/value heads"]),
        ({"vocab_size": 0}, ["vocabulary size is 0"]),
        ({"num_hidden_layers": 2.5}, ["'num_hidden_layers'", "not a whole number"]),
        ({"hidden_size": "wide"}, ["'hidden_size'", "not a whole number"]),
        ({"num_attention_heads": None}, ["lacks a valid 'num_attention_heads'"]),
    ],
)
def test_config_values_no_model_can_have_are_one_sentence(folders, tmp_path, capsys, changes, words):
    """A config.json value no model can have (not a number, zero or negative sizes, a rotary base that is not a
    positive number, heads that cannot share key/value heads) is named in one sentence, before any weight is read,
    also through the CLI (exit 2), instead of an internal error or NaN everywhere."""
    from explainer.cli import main

    f = _copy(folders["llama"], tmp_path)
    _edit_config(f, **changes)
    with pytest.raises(ModelFileError) as err:
        inspect_folder(f)
    msg = str(err.value)
    assert "\n" not in msg and msg.endswith(".") and all(w in msg for w in words), msg
    code = main(["analyze", "--model", str(f), "hello"])
    out, err_text = capsys.readouterr()
    assert code == 2 and out == "" and err_text.count("\n") == 1 and "internal error" not in err_text, err_text


def test_config_json_picked_in_a_file_dialog_opens_its_folder(folders):
    from explainer.core.model_source import open_model

    src = open_model(folders["gpt2"] / "config.json")
    assert src.kind == "folder" and src.cfg.arch == "gpt2"


def test_unsupported_rope_scaling_and_sliding_window(folders, tmp_path):
    f = _copy(folders["qwen2"], tmp_path, "q")
    _edit_config(f, use_sliding_window=True, sliding_window=16)
    with pytest.raises(ModelFileError, match="sliding-window"):
        inspect_folder(f)
    f = _copy(folders["llama"], tmp_path, "l")
    _edit_config(f, rope_parameters={"rope_type": "yarn", "factor": 4.0, "rope_theta": 10000.0})
    with pytest.raises(ModelFileError, match="yarn"):
        inspect_folder(f)


# -- the Hugging Face cache ------------------------------------------------------------------------------------
def _cache_entry(cache, repo, folder, *, drop_blob=None):
    """A cache entry as huggingface_hub lays it out: blobs/<hash>, snapshots/<rev>/<file> → ../../blobs/<hash>."""
    d = cache / f"models--{repo.replace('/', '--')}"
    (d / "blobs").mkdir(parents=True)
    snap = d / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (d / "refs").mkdir()
    (d / "refs" / "main").write_text("abc123")
    for i, src in enumerate(sorted(folder.iterdir())):
        blob = d / "blobs" / f"blob{i}"
        if src.name != drop_blob:
            shutil.copy(src, blob)
        (snap / src.name).symlink_to(os.path.relpath(blob, snap))
    return snap


def test_cached_models_lists_complete_supported_snapshots(folders, tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    good = _cache_entry(cache, "someone/tiny-gpt2", folders["gpt2"])
    _cache_entry(cache, "someone/half-downloaded", folders["llama"], drop_blob="model.safetensors")
    other = _copy(folders["qwen2"], tmp_path, "mistral")
    _edit_config(other, architectures=["MistralForCausalLM"])
    _cache_entry(cache, "someone/mistral", other)
    (cache / "datasets--x--y").mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert hf_cache_dir() == cache
    found = cached_models()
    assert [(m.name, m.arch, m.path) for m in found] == [("someone/tiny-gpt2", "gpt2", good)]
    assert "GPT-2" in found[0].label
    # the cache entry itself (models--…) opens as its snapshot
    assert hf_folder.resolve_folder(cache / "models--someone--tiny-gpt2") == good


def test_cache_location_rules(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert hf_cache_dir() == tmp_path / "hf" / "hub"
    monkeypatch.delenv("HF_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hf_cache_dir() == tmp_path / "xdg" / "huggingface" / "hub"
    assert cached_models(tmp_path / "nothing-here") == []


def test_a_gguf_larger_than_the_free_memory_is_refused(tmp_path, bundled_gguf, monkeypatch):
    from explainer.core.engine import TINY_CONFIG
    from explainer.core.gguf_loader import dequantize_gguf
    from explainer.core.llama import random_weights
    from tests.gguf_factory import write_tiny_llama

    path = write_tiny_llama(tmp_path / "t.gguf", TINY_CONFIG, random_weights(TINY_CONFIG), bundled_gguf)
    monkeypatch.setattr(hf_folder, "available_memory", lambda: 1000)
    with pytest.raises(ModelFileError, match="GB of memory"):
        dequantize_gguf(path)
