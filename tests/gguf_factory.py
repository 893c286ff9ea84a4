"""Write small GGUF files for tests: a tiny random Llama with the real vocabulary, and broken variants."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def permute_like_llama_cpp(w: np.ndarray, n_heads: int) -> np.ndarray:
    """The row permutation llama.cpp's converter applies to attn_q / attn_k (the inverse of what we undo)."""
    out_dim, d_in = w.shape
    return w.reshape(n_heads, 2, out_dim // n_heads // 2, d_in).swapaxes(1, 2).reshape(out_dim, d_in)


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

    src = gguf.GGUFReader(str(vocab_from))
    tokens = list(src.fields["tokenizer.ggml.tokens"].contents())
    types = list(src.fields["tokenizer.ggml.token_type"].contents())
    merges = list(src.fields["tokenizer.ggml.merges"].contents())
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
