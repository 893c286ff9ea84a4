"""Every broken model file gives one clear sentence (ModelFileError), and the CLI exits 2 without a traceback."""

from __future__ import annotations

import dataclasses
import functools
import shutil

import numpy as np
import pytest

from explainer.core.engine import TINY_CONFIG, Engine
from explainer.core.errors import ModelFileError
from explainer.core.gguf_loader import check_model_path, dequantize_gguf, load_weights
from explainer.core.llama import random_weights
from tests.gguf_factory import metadata_value_at, write_tiny_llama

SMALL = dataclasses.replace(TINY_CONFIG, n_layers=1)


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory, bundled_gguf):
    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    weights = random_weights(SMALL, seed=3)
    write_tiny_llama(path, SMALL, weights, bundled_gguf)
    return path, weights


def _bad_files(tmp_path, tiny):
    good = tiny.read_bytes()
    files = {
        "missing": tmp_path / "nope.gguf",
        "folder": tmp_path,
        "empty": tmp_path / "empty.gguf",
        "truncated": tmp_path / "truncated.gguf",
        "truncated_header": tmp_path / "truncated_header.gguf",
        "random": tmp_path / "random.gguf",
        "text": tmp_path / "notes.txt",
        "gguf_magic_garbage": tmp_path / "garbage.gguf",
    }
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(good[: len(good) // 2])
    files["truncated_header"].write_bytes(good[:200])
    files["random"].write_bytes(np.random.default_rng(0).bytes(4096))
    files["text"].write_text("this is not a model\n" * 10)
    files["gguf_magic_garbage"].write_bytes(b"GGUF" + np.random.default_rng(1).bytes(1000))
    return files


def test_bad_model_files_raise_one_sentence(tmp_path, tiny_gguf):
    for kind, path in _bad_files(tmp_path, tiny_gguf[0]).items():
        with pytest.raises(ModelFileError) as err:
            cfg, weights, _ = load_weights(path)
        msg = str(err.value)
        assert msg.endswith(".") and "\n" not in msg and "Traceback" not in msg, (kind, msg)
        assert len(msg) < 240, (kind, msg)


def test_wrong_architecture(tmp_path, bundled_gguf):
    path = tmp_path / "gpt2.gguf"
    write_tiny_llama(path, SMALL, random_weights(SMALL), bundled_gguf, arch="gpt2")
    with pytest.raises(ModelFileError, match="Llama"):
        load_weights(path)


def test_tiny_gguf_round_trip_reads_dimensions_from_metadata(tiny_gguf):
    path, weights = tiny_gguf
    cfg, loaded = dequantize_gguf(path)
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.d_ff) == (1, 64, 4, 2, 128)
    for k, v in weights.items():  # includes un-permuting attn_q / attn_k
        np.testing.assert_array_equal(loaded[k], v, err_msg=k)


def test_engine_on_any_llama_gguf_matches_direct_model(tiny_gguf):
    path, weights = tiny_gguf
    from_file = Engine(path, device="cpu")
    direct = Engine(_weights=(SMALL, weights, path), device="cpu")
    a, b = from_file.analyze("The cat sat on the mat."), direct.analyze("The cat sat on the mat.")
    np.testing.assert_allclose(a.top_probs, b.top_probs, atol=1e-6)
    np.testing.assert_allclose(a.attention.full(), b.attention.full(), atol=1e-6)


def test_damaged_cache_is_rebuilt_not_trusted(tiny_gguf, monkeypatch, tmp_path):
    monkeypatch.setenv("EXPLAINER_CACHE", str(tmp_path / "cache"))
    path, weights = tiny_gguf
    load_weights(path)
    st = next((tmp_path / "cache" / "weights").glob("*.safetensors"))
    data = bytearray(st.read_bytes())
    data[-10] ^= 0xFF  # flip bits inside a tensor: size unchanged, checksum differs
    st.write_bytes(bytes(data))
    cfg, loaded, _ = load_weights(path)
    np.testing.assert_array_equal(loaded["layers.0.w_down"], weights["layers.0.w_down"])
    st.write_bytes(b"")  # truncated to nothing
    cfg, loaded, _ = load_weights(path)
    np.testing.assert_array_equal(loaded["embed"], weights["embed"])


_METADATA = {
    "n_layers": "llama.block_count",
    "n_heads": "llama.attention.head_count",
    "n_kv_heads": "llama.attention.head_count_kv",
    "d_model": "llama.embedding_length",
    "vocab_size": "llama.vocab_size",
    "context_length": "llama.context_length",
    "rope_theta": "llama.rope.freq_base",
    "norm_eps": "llama.attention.layer_norm_rms_epsilon",
}


def _set_metadata(path, changes: dict) -> None:
    """Overwrite numeric metadata of a GGUF in place (as llama.cpp's gguf-set-metadata does)."""
    import struct

    import gguf

    T = gguf.GGUFValueType
    formats = {T.UINT32: "<I", T.INT32: "<i", T.UINT64: "<Q", T.INT64: "<q", T.FLOAT32: "<f", T.FLOAT64: "<d"}
    data = bytearray(path.read_bytes())
    for key, value in changes.items():
        kind, at = metadata_value_at(data, _METADATA[key])
        struct.pack_into(formats[T(kind)], data, at, value)
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def consistent_gguf(tmp_path_factory, bundled_gguf):
    """A tiny model whose metadata the tests below damage, each in a copy."""
    path = tmp_path_factory.mktemp("gguf") / "consistent.gguf"
    return write_tiny_llama(path, SMALL, random_weights(SMALL, seed=6), bundled_gguf)


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"n_layers": 0}, ["number of layers is 0"]),
        ({"n_layers": 4_000_000_000}, ["4000000000 layers", "weights of 1"]),  # at once, not out of memory
        ({"n_layers": 2}, ["2 layers", "weights of 1"]),
        ({"n_heads": 0}, ["attention heads is 0"]),
        ({"n_kv_heads": 3}, ["4 attention heads", "3 key/value heads"]),
        ({"d_model": 62}, ["width 62", "4 heads"]),
        ({"vocab_size": 100}, ["100 tokens", "embedding table"]),
        ({"context_length": 0}, ["context length is 0"]),
        ({"rope_theta": float("nan")}, ["rotary base", "nan"]),
        ({"rope_theta": -1.0}, ["rotary base", "-1.0"]),
        ({"norm_eps": -1.0}, ["epsilon is -1.0"]),
    ],
)
def test_metadata_no_model_can_have_is_one_sentence(tmp_path, consistent_gguf, monkeypatch, capsys, changes, words):
    """GGUF metadata that no model can have (sizes below 1, a layer count other than the layers stored, heads
    that do not divide, a width or vocabulary the embedding table contradicts, a rotary base or epsilon that is not
    a positive number) is named in one sentence before any weight is decoded: not an internal error, NaN
    everywhere, or memory exhausted; nothing is cached. Through the CLI: exit 2, one line."""
    from explainer.cli import main

    monkeypatch.setenv("EXPLAINER_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "inconsistent.gguf"
    shutil.copyfile(consistent_gguf, path)
    _set_metadata(path, changes)
    with pytest.raises(ModelFileError) as err:
        load_weights(path)
    msg = str(err.value)
    assert path.name in msg and msg.endswith(".") and "\n" not in msg and all(w in msg for w in words), msg
    assert not list((tmp_path / "cache").glob("weights/*.safetensors"))
    if changes.get("n_layers") == 2:
        code = main(["analyze", "--model", str(path), "--backend", "stored", "hello"])
        out, err_text = capsys.readouterr()
        assert code == 2 and out == "" and err_text.count("\n") == 1 and "2 layers" in err_text, err_text


@pytest.mark.parametrize("key", ["general.architecture", "general.name", "tokenizer.ggml.tokens"])
def test_metadata_text_that_is_not_utf8_is_one_sentence(tmp_path, consistent_gguf, monkeypatch, capsys, key):
    """GGUF strings are UTF-8: bytes that are not (a damaged file) are named in one sentence, not an internal
    error."""
    import struct

    from explainer.cli import main

    monkeypatch.setenv("EXPLAINER_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "bad-text.gguf"
    data = bytearray(consistent_gguf.read_bytes())
    _kind, at = metadata_value_at(data, key)  # (the last token, for the vocabulary)
    (n,) = struct.unpack_from("<Q", data, at)
    data[at + 8 : at + 8 + n] = b"\xff" * n
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=f"bad-text.gguf has a metadata '{key}' that is not valid UTF-8 text"):
        load_weights(path)
    code = main(["analyze", "--model", str(path), "hello"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1 and "internal error" not in err, err


def test_check_model_path_accepts_real_file(bundled_gguf):
    assert check_model_path(bundled_gguf) == bundled_gguf


@pytest.fixture(scope="module")
def quantized_gguf(tmp_path_factory, bundled_gguf):
    path = tmp_path_factory.mktemp("gguf") / "quantized.gguf"
    write_tiny_llama(path, SMALL, random_weights(SMALL, seed=4), bundled_gguf, layers="Q4_1", embed="Q8_0")
    return path


@functools.lru_cache(maxsize=4)
def _tensors(source):
    """``{name: (storage type, data offset)}`` of the GGUF ``source`` (written once per module; read once)."""
    import gguf

    return {t.name: (t.tensor_type, int(t.data_offset)) for t in gguf.GGUFReader(str(source)).tensors}


def _poisoned(tmp_path, source, tensor: str, value: float, at: int = 0):
    """A copy of the GGUF ``source`` whose ``tensor`` holds ``value`` in its first 2-byte scale (a quantized
    tensor) or at float32 index ``at`` (a float32 one)."""
    import gguf

    tensor_type, data_offset = _tensors(source)[tensor]
    data = bytearray(source.read_bytes())
    if tensor_type == gguf.GGMLQuantizationType.F32:
        off, raw = data_offset + 4 * at, np.float32(value).tobytes()
    else:
        off, raw = data_offset, np.float16(value).tobytes()
    data[off : off + len(raw)] = raw
    path = tmp_path / f"poisoned-{tensor}.gguf"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    "tensor, value", [("blk.0.attn_q.weight", np.inf), ("token_embd.weight", np.nan), ("blk.0.ffn_norm.weight", np.nan)]
)
def test_infinite_or_nan_weights_are_one_sentence_on_every_path(
    tmp_path, quantized_gguf, monkeypatch, capsys, tensor, value
):
    """One infinite or NaN weight makes every result NaN (and the embedding map's axes with it): the file is refused
    as damaged, naming the tensor, by the float32 loader, the stored-weights reader and the CLI."""
    from explainer.cli import main
    from explainer.core.stored import read_gguf

    monkeypatch.setenv("EXPLAINER_CACHE", str(tmp_path / "cache"))
    path = _poisoned(tmp_path, quantized_gguf, tensor, value, at=2)
    for load in (lambda: load_weights(path), lambda: read_gguf(path, SMALL)):
        with pytest.raises(ModelFileError) as err:
            load()
        msg = str(err.value)
        assert tensor in msg and "NaN" in msg and path.name in msg and msg.endswith("."), msg
    assert not list((tmp_path / "cache").glob("weights/*.safetensors"))  # nothing cached from it
    if tensor != "blk.0.attn_q.weight":
        return
    code = main(["analyze", "--model", str(path), "--backend", "stored", "hello"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1 and tensor in err and "Traceback" not in err, err


def test_weights_that_overflow_on_a_text_give_one_sentence_not_nan(tmp_path, bundled_gguf, monkeypatch):
    monkeypatch.setenv("EXPLAINER_CACHE", str(tmp_path / "cache"))
    weights = random_weights(SMALL, seed=5)
    weights["layers.0.w_up"] = weights["layers.0.w_up"] * np.float32(1e30)  # finite, but gate x up overflows
    weights["layers.0.w_gate"] = weights["layers.0.w_gate"] * np.float32(1e30)
    path = tmp_path / "overflowing.gguf"
    write_tiny_llama(path, SMALL, weights, bundled_gguf)
    engine = Engine(path, device="cpu", backend="torch")
    for _ in range(2):  # and again: no half-computed state is kept
        with pytest.raises(ModelFileError, match="overflowed") as err:
            engine.analyze("The cat sat on the mat.")
        assert "\n" not in str(err.value)


def test_a_sum_that_overflows_is_not_taken_for_an_infinite_weight():
    from explainer.core.gguf_loader import check_finite

    big = np.full(8, 3e38, np.float32)  # finite numbers whose float32 sum is inf
    check_finite(big, "t", "m.gguf")
    for bad in (np.inf, -np.inf, np.nan):
        w = big.copy()
        w[3] = bad
        with pytest.raises(ModelFileError, match="t holds infinite or undefined"):
            check_finite(w, "t", "m.gguf")
