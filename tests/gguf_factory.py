"""Write small GGUF files for tests: a tiny random Llama with the real vocabulary, and broken variants."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def permute_like_llama_cpp(w: np.ndarray, n_heads: int) -> np.ndarray:
    """The row permutation llama.cpp's converter applies to attn_q / attn_k (the inverse of what we undo)."""
    out_dim, d_in = w.shape
    return w.reshape(n_heads, 2, out_dim // n_heads // 2, d_in).swapaxes(1, 2).reshape(out_dim, d_in)


_VOCABULARIES: dict[tuple, tuple[list, list, list]] = {}


def _vocabulary(path: Path) -> tuple[list, list, list]:
    """The tokens, token types and merges of the GGUF at ``path``, read once per file version (gguf-py parses the
    whole file's metadata, ~2 s for a 49,152-token vocabulary)."""
    import gguf

    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _VOCABULARIES:
        src = gguf.GGUFReader(str(path))
        _VOCABULARIES[key] = tuple(
            list(src.fields[f"tokenizer.ggml.{name}"].contents()) for name in ("tokens", "token_type", "merges")
        )
    tokens, types, merges = _VOCABULARIES[key]
    return list(tokens), list(types), list(merges)


def write_tiny_llama(
    path: Path, cfg, weights: dict, vocab_from: Path, arch: str = "llama", layers: str = "F32", embed: str = "F32"
) -> Path:
    """Write ``weights`` (our loader's layout and names) as a GGUF with the vocabulary of ``vocab_from``; the
    layers' matrices stored as ``layers`` and the embedding table as ``embed`` (F32, or a ggml block type such
    as Q4_1 / Q8_0, quantized by gguf-py)."""
    import gguf

    def add(name: str, arr: np.ndarray, kind: str) -> None:
        qtype = gguf.GGMLQuantizationType[kind]
        if qtype == gguf.GGMLQuantizationType.F32:
            w.add_tensor(name, np.ascontiguousarray(arr))
        else:
            w.add_tensor(name, gguf.quants.quantize(np.ascontiguousarray(arr), qtype), raw_dtype=qtype)

    tokens, types, merges = _vocabulary(Path(vocab_from))
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name("tiny-test-llama")
    w.add_block_count(cfg.n_layers)
    w.add_context_length(cfg.context_length)
    w.add_embedding_length(cfg.d_model)
    w.add_feed_forward_length(cfg.d_ff)
    w.add_head_count(cfg.n_heads)
    w.add_head_count_kv(cfg.n_kv_heads)
    w.add_rope_freq_base(cfg.rope_theta)
    w.add_layer_norm_rms_eps(cfg.norm_eps)
    w.add_vocab_size(cfg.vocab_size)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    names = {
        "attn_norm": "attn_norm",
        "ffn_norm": "ffn_norm",
        "wq": "attn_q",
        "wk": "attn_k",
        "wv": "attn_v",
        "wo": "attn_output",
        "w_gate": "ffn_gate",
        "w_up": "ffn_up",
        "w_down": "ffn_down",
    }
    add("token_embd.weight", weights["embed"], embed)
    w.add_tensor("output_norm.weight", weights["norm"])
    for key, arr in weights.items():
        if not key.startswith("layers."):
            continue
        _, idx, name = key.split(".", 2)
        if name == "wq":
            arr = permute_like_llama_cpp(arr, cfg.n_heads)
        elif name == "wk":
            arr = permute_like_llama_cpp(arr, cfg.n_kv_heads)
        add(f"blk.{idx}.{names[name]}.weight", arr, layers if arr.ndim == 2 else "F32")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def metadata_value_at(data: bytes, key: str) -> tuple[int, int]:
    """``(value type, offset of the value)`` of the metadata ``key`` in the GGUF bytes ``data``, found by walking the
    header's key/value pairs (no parsing of the whole file); for an array, the offset of its last element."""
    import struct

    import gguf

    T = gguf.GGUFValueType
    sizes = {T.UINT8: 1, T.INT8: 1, T.BOOL: 1, T.UINT16: 2, T.INT16: 2, T.UINT32: 4, T.INT32: 4, T.FLOAT32: 4}
    sizes |= {T.UINT64: 8, T.INT64: 8, T.FLOAT64: 8}

    def skip(kind: int, at: int) -> int:  # the offset after a value of type ``kind`` at ``at``
        if kind == T.STRING:
            return at + 8 + struct.unpack_from("<Q", data, at)[0]
        return at + sizes[T(kind)]

    at = 4 + 4 + 8  # magic, version, tensor count
    (n_kv,) = struct.unpack_from("<Q", data, at)
    at += 8
    for _ in range(n_kv):
        (n,) = struct.unpack_from("<Q", data, at)
        name = data[at + 8 : at + 8 + n].decode()
        (kind,) = struct.unpack_from("<I", data, at + 8 + n)
        at += 8 + n + 4
        if kind == T.ARRAY:
            item, count = struct.unpack_from("<IQ", data, at)
            at, last = at + 12, at + 12
            for _ in range(count):
                last, at = at, skip(item, at)
            if name == key:
                return item, last
        else:
            if name == key:
                return kind, at
            at = skip(kind, at)
    raise KeyError(key)
