"""Hugging Face checkpoints of the three supported families: config.json into the model config, the tensors each
family needs with their shapes, and their conversion to the loader's layout (``explainer.core.gguf_loader``):
``[out, in]`` matrices named ``layers.{i}.wq`` and so on, plus the biases, LayerNorm biases and learned position
table where the family has them. GPT-2 stores its projections as ``Conv1D`` (``[in, out]``, transposed here) and
its query, key and value side by side in one ``c_attn`` (split here).
"""

from __future__ import annotations

import numpy as np

from explainer.core.errors import ModelFileError
from explainer.core.gguf_loader import LlamaConfig, as_number

ARCHITECTURES = {"LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2", "GPT2LMHeadModel": "gpt2"}
SUPPORTED_TEXT = "Llama (LlamaForCausalLM), Qwen2 (Qwen2ForCausalLM) and GPT-2 (GPT2LMHeadModel)"
_GPT2_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "silu": "silu"}
_ROPE_TYPES = ("default", "llama3")


def read_hf_config(raw: dict, arch: str, name: str) -> LlamaConfig:
    """config.json (a dict) of a supported architecture → LlamaConfig; one sentence for what is unsupported."""

    def need(*keys, cast=int):
        for k in keys:
            if raw.get(k) is not None:
                return _number(raw[k], k, name, cast)
        raise ModelFileError(f"config.json of {name} lacks a valid '{keys[0]}'; the folder is damaged.")

    def number(key: str, default, cast=float):  # (an integer entry of 0 means "not set", as for transformers)
        v = raw.get(key)
        return _number(default if v is None or (cast is int and v == 0) else v, key, name, cast)

    if arch == "gpt2":
        d = need("n_embd", "hidden_size")
        act = str(raw.get("activation_function", "gelu_new"))
        if act not in _GPT2_ACTIVATIONS:
            raise ModelFileError(f"{name} uses the activation '{act}', which explainer does not support.")
        if raw.get("add_cross_attention") or raw.get("scale_attn_by_inverse_layer_idx"):
            raise ModelFileError(f"{name} uses a GPT-2 attention variant that explainer does not support.")
        if raw.get("scale_attn_weights", True) is False:
            raise ModelFileError(f"{name} does not scale its attention scores, which explainer does not support.")
        heads = need("n_head", "num_attention_heads")
        return LlamaConfig(
            n_layers=need("n_layer", "num_hidden_layers"),
            d_model=d,
            d_ff=number("n_inner", 4 * d, int),
            n_heads=heads,
            n_kv_heads=heads,
            vocab_size=need("vocab_size"),
            context_length=need("n_positions", "n_ctx", "max_position_embeddings"),
            rope_theta=0.0,
            norm_eps=number("layer_norm_epsilon", 1e-5),
            name=name,
            arch="gpt2",
            positions="learned",
            norm="layer",
            mlp="plain",
            activation=_GPT2_ACTIVATIONS[act],
            qkv_bias=True,
            o_bias=True,
            mlp_bias=True,
            bos_token_id=_token_id(raw.get("bos_token_id")),
        )
    act = str(raw.get("hidden_act", "silu"))
    if act != "silu":
        raise ModelFileError(f"{name} uses the activation '{act}'; explainer supports SiLU (SwiGLU) here.")
    if arch == "qwen2" and raw.get("use_sliding_window"):
        raise ModelFileError(f"{name} uses sliding-window attention, which explainer does not support.")
    heads = need("num_attention_heads")
    theta, scaling = _rope(raw, name)
    bias = bool(raw.get("attention_bias", False))
    return LlamaConfig(
        n_layers=need("num_hidden_layers"),
        d_model=need("hidden_size"),
        d_ff=need("intermediate_size"),
        n_heads=heads,
        n_kv_heads=number("num_key_value_heads", heads, int),
        vocab_size=need("vocab_size"),
        context_length=need("max_position_embeddings"),
        rope_theta=theta,
        norm_eps=number("rms_norm_eps", 1e-6),
        name=name,
        arch=arch,
        head_dim=number("head_dim", 0, int),
        qkv_bias=arch == "qwen2" or bias,
        o_bias=bias,
        mlp_bias=bool(raw.get("mlp_bias", False)),
        rope_scaling=scaling,
        bos_token_id=_token_id(raw.get("bos_token_id")),
    )


def _number(value, key: str, name: str, cast):
    """``cast(value)``, or one sentence naming the config.json entry that is not a number."""
    kind = "whole number" if cast is int else "number"
    return as_number(value, cast, f"config.json of {name} has a '{key}' that is not a {kind}; the folder is damaged.")


def _token_id(value) -> int:
    """A token id from config.json (an int, a list of ints, or null) → the id, -1 for none."""
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else -1


def _rope(raw: dict, name: str) -> tuple[float, tuple]:
    """(θ, scaling) from ``rope_parameters`` (transformers ≥ 5) or ``rope_theta`` / ``rope_scaling``."""
    params = dict(raw.get("rope_scaling") or {})
    if isinstance(raw.get("rope_parameters"), dict):
        params.update(raw["rope_parameters"])
    theta = _number(params.get("rope_theta", raw.get("rope_theta", 10000.0)), "rope_theta", name, float)
    kind = str(params.get("rope_type", params.get("type", "default")))
    if kind not in _ROPE_TYPES:
        raise ModelFileError(
            f"{name} uses '{kind}' rotary scaling; explainer supports the default rotary positions and Llama 3's."
        )
    if kind == "default":
        return theta, ()
    try:
        scaling = (
            "llama3",
            float(params["factor"]),
            float(params["low_freq_factor"]),
            float(params["high_freq_factor"]),
            int(params["original_max_position_embeddings"]),
        )
    except (KeyError, TypeError, ValueError):
        raise ModelFileError(f"config.json of {name} has incomplete llama3 rotary scaling values.") from None
    return theta, scaling


def expected_shapes(cfg: LlamaConfig, tied: bool) -> dict[str, tuple[int, ...]]:
    """Checkpoint tensor name → shape, for every tensor the model needs."""
    D, F, V, hd = cfg.d_model, cfg.d_ff, cfg.vocab_size, cfg.d_head
    Hq, Hkv = cfg.n_heads * hd, cfg.n_kv_heads * hd
    if cfg.arch == "gpt2":
        out = {"wte.weight": (V, D), "wpe.weight": (cfg.context_length, D), "ln_f.weight": (D,), "ln_f.bias": (D,)}
        for i in range(cfg.n_layers):
            p = f"h.{i}."
            out.update(
                {
                    p + "ln_1.weight": (D,),
                    p + "ln_1.bias": (D,),
                    p + "attn.c_attn.weight": (D, 3 * D),  # Conv1D: [in, out]
                    p + "attn.c_attn.bias": (3 * D,),
                    p + "attn.c_proj.weight": (D, D),
                    p + "attn.c_proj.bias": (D,),
                    p + "ln_2.weight": (D,),
                    p + "ln_2.bias": (D,),
                    p + "mlp.c_fc.weight": (D, F),
                    p + "mlp.c_fc.bias": (F,),
                    p + "mlp.c_proj.weight": (F, D),
                    p + "mlp.c_proj.bias": (D,),
                }
            )
    else:
        out = {"embed_tokens.weight": (V, D), "norm.weight": (D,)}
        for i in range(cfg.n_layers):
            p = f"layers.{i}."
            a, m = p + "self_attn.", p + "mlp."
            out.update(
                {
                    p + "input_layernorm.weight": (D,),
                    p + "post_attention_layernorm.weight": (D,),
                    a + "q_proj.weight": (Hq, D),
                    a + "k_proj.weight": (Hkv, D),
                    a + "v_proj.weight": (Hkv, D),
                    a + "o_proj.weight": (D, Hq),
                    m + "gate_proj.weight": (F, D),
                    m + "up_proj.weight": (F, D),
                    m + "down_proj.weight": (D, F),
                }
            )
            if cfg.qkv_bias:
                out.update({a + "q_proj.bias": (Hq,), a + "k_proj.bias": (Hkv,), a + "v_proj.bias": (Hkv,)})
            if cfg.o_bias:
                out[a + "o_proj.bias"] = (D,)
            if cfg.mlp_bias:
                out.update({m + "gate_proj.bias": (F,), m + "up_proj.bias": (F,), m + "down_proj.bias": (D,)})
    if not tied:
        out["lm_head.weight"] = (V, D)
    return out


def to_layout(cfg: LlamaConfig, t: dict[str, np.ndarray], tied: bool) -> dict[str, np.ndarray]:
    """Checkpoint tensors (names without prefix) → the loader's layout: ``[out, in]`` matrices, our names."""
    c = np.ascontiguousarray
    if cfg.arch == "gpt2":
        D = cfg.d_model
        out = {
            "embed": t["wte.weight"],
            "pos_embed": t["wpe.weight"],
            "norm": t["ln_f.weight"],
            "norm_bias": t["ln_f.bias"],
        }
        for i in range(cfg.n_layers):
            s, p = f"h.{i}.", f"layers.{i}."
            qkv_w, qkv_b = t[s + "attn.c_attn.weight"].T, t[s + "attn.c_attn.bias"]  # Conv1D [in, out] → [out, in]
            out.update(
                {
                    p + "attn_norm": t[s + "ln_1.weight"],
                    p + "attn_norm_bias": t[s + "ln_1.bias"],
                    p + "wq": c(qkv_w[:D]),
                    p + "wk": c(qkv_w[D : 2 * D]),
                    p + "wv": c(qkv_w[2 * D :]),
                    p + "bq": c(qkv_b[:D]),
                    p + "bk": c(qkv_b[D : 2 * D]),
                    p + "bv": c(qkv_b[2 * D :]),
                    p + "wo": c(t[s + "attn.c_proj.weight"].T),
                    p + "bo": t[s + "attn.c_proj.bias"],
                    p + "ffn_norm": t[s + "ln_2.weight"],
                    p + "ffn_norm_bias": t[s + "ln_2.bias"],
                    p + "w_up": c(t[s + "mlp.c_fc.weight"].T),
                    p + "b_up": t[s + "mlp.c_fc.bias"],
                    p + "w_down": c(t[s + "mlp.c_proj.weight"].T),
                    p + "b_down": t[s + "mlp.c_proj.bias"],
                }
            )
    else:
        out = {"embed": t["embed_tokens.weight"], "norm": t["norm.weight"]}
        names = {
            "input_layernorm.weight": "attn_norm",
            "post_attention_layernorm.weight": "ffn_norm",
            "self_attn.q_proj.weight": "wq",
            "self_attn.k_proj.weight": "wk",
            "self_attn.v_proj.weight": "wv",
            "self_attn.o_proj.weight": "wo",
            "self_attn.q_proj.bias": "bq",
            "self_attn.k_proj.bias": "bk",
            "self_attn.v_proj.bias": "bv",
            "self_attn.o_proj.bias": "bo",
            "mlp.gate_proj.weight": "w_gate",
            "mlp.up_proj.weight": "w_up",
            "mlp.down_proj.weight": "w_down",
            "mlp.gate_proj.bias": "b_gate",
            "mlp.up_proj.bias": "b_up",
            "mlp.down_proj.bias": "b_down",
        }
        for i in range(cfg.n_layers):
            for src, dst in names.items():
                key = f"layers.{i}.{src}"
                if key in t:
                    out[f"layers.{i}.{dst}"] = t[key]
    if not tied:
        out["lm_head"] = t["lm_head.weight"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}
