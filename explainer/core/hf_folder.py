"""Read a Hugging Face model folder (config.json, *.safetensors, tokenizer.json) of a Llama, Qwen2 or GPT-2 model.

Only data is read: the config as JSON, the weights as safetensors (their JSON headers are checked before any
tensor is read), the tokenizer as tokenizer.json. Pickle weights (``*.bin``) are never opened, and a folder that
needs its own Python code (``auto_map`` in config.json, loaded with ``trust_remote_code``) is refused.

``inspect_folder`` does every check that needs no tensor data (architecture, files, shapes, memory) and says
what is wrong in one sentence; ``load_folder_weights`` then returns float32 weights in the loader's layout
(``explainer.core.gguf_loader``): ``[out, in]`` matrices named ``layers.{i}.wq`` and so on, plus biases, the
LayerNorm biases and the learned position table where the architecture has them.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explainer.core.errors import ModelFileError
from explainer.core.gguf_loader import LlamaConfig

log = logging.getLogger(__name__)
Progress = Callable[[str, float], None]

ARCHITECTURES = {"LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2", "GPT2LMHeadModel": "gpt2"}
SUPPORTED_TEXT = "Llama (LlamaForCausalLM), Qwen2 (Qwen2ForCausalLM) and GPT-2 (GPT2LMHeadModel)"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_DTYPES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8}
_GPT2_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "silu": "silu"}
_ROPE_TYPES = ("default", "llama3")


def looks_like_model_folder(path: str | os.PathLike) -> bool:
    """True for a folder with a config.json (or a Hugging Face cache entry ``models--org--name``)."""
    p = Path(path).expanduser()
    return p.is_dir() and ((p / "config.json").is_file() or (p / "snapshots").is_dir())


def resolve_folder(path: str | os.PathLike) -> Path:
    """The folder itself, or for a Hugging Face cache entry (``models--org--name``) the snapshot its
    ``refs/main`` names (else its newest snapshot)."""
    p = Path(path).expanduser()
    snaps = p / "snapshots"
    if (p / "config.json").is_file() or not snaps.is_dir():
        return p
    ref = p / "refs" / "main"
    if ref.is_file():
        target = snaps / ref.read_text(encoding="utf-8").strip()
        if target.is_dir():
            return target
    found = sorted((s for s in snaps.iterdir() if (s / "config.json").is_file()), key=lambda s: s.stat().st_mtime)
    return found[-1] if found else p


@dataclass(frozen=True)
class TensorEntry:
    file: Path
    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ModelFolder:
    """A checked model folder: its config, where every tensor is, and its tokenizer file."""

    path: Path
    config: LlamaConfig
    raw_config: dict
    tensors: dict[str, TensorEntry]  # the checkpoint's own names, prefix ("model." / "transformer.") removed
    tokenizer_json: Path
    tied: bool  # the output layer is the input embedding table
    n_params: int


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ModelFileError(f"{what} in {path.parent} cannot be read ({e.strerror}).") from None
    except (UnicodeDecodeError, ValueError):
        raise ModelFileError(f"{what} in {path.parent} is not valid JSON; the folder is damaged.") from None
    if not isinstance(data, dict):
        raise ModelFileError(f"{what} in {path.parent} is not a JSON object; the folder is damaged.")
    return data


def available_memory() -> int:
    """Bytes of memory the process can still use (what the operating system calls available)."""
    import psutil

    return int(psutil.virtual_memory().available)


def check_memory(n_bytes: int, name: str) -> None:
    """Raise ModelFileError when ``n_bytes`` of float32 weights would not fit in the free memory."""
    free = available_memory()
    if n_bytes > free:
        raise ModelFileError(
            f"{name} needs about {n_bytes / 1e9:.1f} GB of memory for its weights (float32), but only "
            f"{free / 1e9:.1f} GB is free; close other programs or choose a smaller model."
        )


# -- checks ------------------------------------------------------------------------------------------------------
def inspect_folder(path: str | os.PathLike) -> ModelFolder:
    """Check a model folder without reading tensor data; raise ModelFileError with one sentence."""
    p = resolve_folder(path)
    if not p.is_dir():
        raise ModelFileError(f"The model folder {p} does not exist; check the path.")
    if not (p / "config.json").is_file():
        raise ModelFileError(
            f"{p} has no config.json; give a Hugging Face model folder (config.json, *.safetensors, "
            f"tokenizer.json) or a .gguf file."
        )
    raw = _read_json(p / "config.json", "config.json")
    name = p.name if p.parent.name != "snapshots" else p.parent.parent.name.removeprefix("models--")
    if raw.get("auto_map"):
        raise ModelFileError(
            f"{name} needs its own Python code to run (trust_remote_code); explainer never runs code from a model "
            f"folder and supports {SUPPORTED_TEXT} models."
        )
    arch = _architecture(raw, name)
    tensors = _read_weight_headers(p, name)
    tok = p / "tokenizer.json"
    if not tok.is_file():
        raise ModelFileError(
            f"{name} has no tokenizer.json; explainer needs the model's own tokenizer in that file "
            f"(save it with the tokenizer's save_pretrained)."
        )
    cfg = read_hf_config(raw, arch, name)
    tensors = _strip_prefix(tensors, arch)
    tied = bool(raw.get("tie_word_embeddings", arch == "gpt2"))
    _check_shapes(cfg, tensors, tied, name)
    n_params = sum(int(np.prod(e.shape)) for k, e in tensors.items() if _used(k, tied))
    check_memory(4 * n_params, name)
    return ModelFolder(p, cfg, raw, tensors, tok, tied, n_params)


def _architecture(raw: dict, name: str) -> str:
    archs = raw.get("architectures") or []
    if isinstance(archs, str):
        archs = [archs]
    for a in archs:
        if a in ARCHITECTURES:
            return ARCHITECTURES[a]
    model_type = str(raw.get("model_type", ""))
    if not archs and model_type in ARCHITECTURES.values():
        return model_type
    what = archs[0] if archs else (model_type or "an unnamed architecture")
    raise ModelFileError(f"{name} is a {what} model; explainer supports {SUPPORTED_TEXT} models and Llama GGUF files.")


def _read_weight_headers(p: Path, name: str) -> dict[str, TensorEntry]:
    files = sorted(p.glob("*.safetensors"))
    if not files:
        pickles = sorted(f.name for f in p.iterdir() if f.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise ModelFileError(
                f"{name} has only pickle weights ({pickles[0]}), which can run code when loaded and are never "
                f"opened; save the model as safetensors (save_pretrained with safe_serialization=True)."
            )
        raise ModelFileError(f"{name} has no weights (*.safetensors files); the folder is incomplete.")
    index = p / "model.safetensors.index.json"
    if index.is_file():  # a sharded checkpoint: only the shards the index names
        weight_map = _read_json(index, "model.safetensors.index.json").get("weight_map") or {}
        names = sorted(set(weight_map.values()))
        missing = [n for n in names if not (p / n).is_file()]
        if missing:
            raise ModelFileError(f"{name} lacks the weight file {missing[0]}; the download is incomplete.")
        files = [p / n for n in names]
    out: dict[str, TensorEntry] = {}
    for f in files:
        for key, entry in _safetensors_header(f).items():
            out[key] = entry
    return out


def _safetensors_header(f: Path) -> dict[str, TensorEntry]:
    try:
        size = f.stat().st_size
        with open(f, "rb") as fh:
            head = fh.read(8)
            n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
            if not 0 < n <= min(size - 8, 100_000_000):
                raise ValueError("bad header length")
            header = json.loads(fh.read(n))
    except OSError as e:
        raise ModelFileError(f"The weight file {f.name} cannot be read ({e.strerror}).") from None
    except (ValueError, UnicodeDecodeError, struct.error):
        raise ModelFileError(f"{f.name} is not a readable safetensors file; download it again.") from None
    out, end = {}, 0
    for key, meta in header.items():
        if key == "__metadata__":
            continue
        dtype, shape = meta.get("dtype"), tuple(int(d) for d in meta.get("shape", ()))
        if dtype not in _DTYPES:
            raise ModelFileError(
                f"The tensor {key} in {f.name} is stored as {dtype}; explainer reads float weights (F32, F16, BF16) "
                f"and Llama GGUF files, not quantized safetensors."
            )
        end = max(end, int(meta.get("data_offsets", (0, 0))[1]))
        out[key] = TensorEntry(f, dtype, shape)
    if 8 + n + end > size:
        raise ModelFileError(f"{f.name} is truncated ({size:,} bytes); download it again.")
    return out


def _strip_prefix(tensors: dict[str, TensorEntry], arch: str) -> dict[str, TensorEntry]:
    prefix = "transformer." if arch == "gpt2" else "model."
    return {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in tensors.items()}


def _used(key: str, tied: bool) -> bool:
    if key.endswith((".attn.bias", ".attn.masked_bias")):  # GPT-2's stored causal mask buffers
        return False
    return not (tied and key == "lm_head.weight")


def read_hf_config(raw: dict, arch: str, name: str) -> LlamaConfig:
    """config.json (a dict) of a supported architecture → LlamaConfig; one sentence for what is unsupported."""

    def need(*keys, cast=int):
        for k in keys:
            if raw.get(k) is not None:
                try:
                    return cast(raw[k])
                except (TypeError, ValueError):
                    break
        raise ModelFileError(f"config.json of {name} lacks a valid '{keys[0]}'; the folder is damaged.")

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
            d_ff=int(raw.get("n_inner") or 4 * d),
            n_heads=heads,
            n_kv_heads=heads,
            vocab_size=need("vocab_size"),
            context_length=need("n_positions", "n_ctx", "max_position_embeddings"),
            rope_theta=0.0,
            norm_eps=float(raw.get("layer_norm_epsilon", 1e-5)),
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
        n_kv_heads=int(raw.get("num_key_value_heads") or heads),
        vocab_size=need("vocab_size"),
        context_length=need("max_position_embeddings"),
        rope_theta=theta,
        norm_eps=float(raw.get("rms_norm_eps", 1e-6)),
        name=name,
        arch=arch,
        head_dim=int(raw.get("head_dim") or 0),
        qkv_bias=arch == "qwen2" or bias,
        o_bias=bias,
        mlp_bias=bool(raw.get("mlp_bias", False)),
        rope_scaling=scaling,
        bos_token_id=_token_id(raw.get("bos_token_id")),
    )


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
    theta = float(params.get("rope_theta", raw.get("rope_theta", 10000.0)))
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


def _expected_shapes(cfg: LlamaConfig, tied: bool) -> dict[str, tuple[int, ...]]:
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


def _check_shapes(cfg: LlamaConfig, tensors: dict[str, TensorEntry], tied: bool, name: str) -> None:
    if cfg.n_heads % cfg.n_kv_heads or (cfg.arch == "gpt2" and cfg.d_model % cfg.n_heads):
        raise ModelFileError(f"config.json of {name} has head counts that do not divide evenly; it is inconsistent.")
    for key, shape in _expected_shapes(cfg, tied).items():
        if key not in tensors:
            raise ModelFileError(f"{name} has no weight '{key}'; the checkpoint is incomplete or of another model.")
        if tensors[key].shape != shape:
            raise ModelFileError(
                f"The weight '{key}' of {name} has shape {list(tensors[key].shape)}, but config.json implies "
                f"{list(shape)}; the folder is inconsistent."
            )


# -- weights -----------------------------------------------------------------------------------------------------
def load_folder_weights(folder: ModelFolder, progress: Progress | None = None) -> dict[str, np.ndarray]:
    """Every tensor the model needs, as float32 numpy arrays in the loader's layout and names."""
    from safetensors import safe_open

    by_file: dict[Path, list[str]] = {}
    for key in _expected_shapes(folder.config, folder.tied):
        by_file.setdefault(folder.tensors[key].file, []).append(key)
    loaded: dict[str, np.ndarray] = {}
    done, total = 0, sum(len(v) for v in by_file.values())
    for f, keys in by_file.items():
        try:
            with safe_open(str(f), framework="pt") as st:
                names = set(st.keys())
                for key in keys:
                    full = key if key in names else _with_prefix(key, names)
                    loaded[key] = st.get_tensor(full).float().numpy()
                    done += 1
                    if progress is not None and done % 16 == 0:
                        progress(f"Reading weights ({done}/{total})", 0.1 + 0.8 * done / total)
        except ModelFileError:
            raise
        except Exception as e:  # noqa: BLE001 - the safetensors reader raises its own error types on damage
            raise ModelFileError(
                f"{f.name} cannot be read as safetensors ({type(e).__name__}); download it again."
            ) from None
    return to_layout(folder.config, loaded, folder.tied)


def _with_prefix(key: str, names: set[str]) -> str:
    for prefix in ("model.", "transformer."):
        if prefix + key in names:
            return prefix + key
    return key


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
