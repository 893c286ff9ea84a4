"""Read a Llama-architecture GGUF file into float32 weights, with a verified safetensors cache.

The GGUF is only ever parsed as data (gguf-py) and the cache is safetensors: no pickle, no code from model files.
llama.cpp stores the rows of ``attn_q`` / ``attn_k`` permuted for its rotary layout; we undo that here so the
weights follow the Hugging Face layout (rotate-half RoPE) and q/k vectors can be compared with the reference.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from explainer.core.errors import ModelFileError
from explainer.core.paths import atomic_write, cache_dir, read_regular_text, remove_older_formats, sha256_file

log = logging.getLogger(__name__)
Progress = Callable[[str, float], None]
CACHE_FORMAT = 3  # bump when the cached layout or config changes
KEPT_WEIGHT_BYTES = 3 * 10**9  # the weight cache keeps the models used most recently, this much of them


@dataclass(frozen=True)
class LlamaConfig:
    """The shape of a decoder-only transformer. The defaults describe Llama; the architecture fields say how a
    Qwen2 or GPT-2 model differs (``explainer.core.hf_folder`` reads them from a model folder's config.json)."""

    n_layers: int
    d_model: int
    d_ff: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    context_length: int = 2048
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    name: str = "llama"
    arch: str = "llama"  # "llama", "qwen2" or "gpt2"
    head_dim: int = 0  # 0: d_model // n_heads
    positions: str = "rotary"  # "rotary" (RoPE on q and k) or "learned" (a position vector added to the input)
    norm: str = "rms"  # "rms" (RMSNorm, a gain) or "layer" (LayerNorm, a gain and a bias)
    mlp: str = "swiglu"  # "swiglu": down(act(gate x) * up x); "plain": down(act(up x))
    activation: str = "silu"  # "silu", "gelu_tanh" (GPT-2's gelu_new) or "gelu" (exact, erf)
    qkv_bias: bool = False  # biases on the query, key and value projections
    o_bias: bool = False  # a bias on the attention output projection
    mlp_bias: bool = False  # biases on the MLP's projections
    rope_scaling: tuple = ()  # () or ("llama3", factor, low_freq_factor, high_freq_factor, original_context)
    bos_token_id: int = -1  # the configured beginning-of-sequence token; -1: none (see core.start_token)
    add_bos: bool = False  # the model's tokenizer puts it before every text

    @property
    def d_head(self) -> int:
        return self.head_dim or self.d_model // self.n_heads


def check_config(cfg: LlamaConfig, source: str, stored_layers: int | None = None, kind: str = "file") -> None:
    """ModelFileError (one sentence) for a configuration no model can have: a size or count below 1, head counts
    that do not divide, a rotary base or normalisation epsilon that is not a finite positive number (``≥ 0`` for
    epsilon), or a layer count other than the ``stored_layers`` whose weights the file holds. Checked before any
    weight is read: such values would otherwise surface as shape errors, NaN everywhere or, for an absurd layer
    count, as memory exhausted before anything is said."""
    counts = {
        "number of layers": cfg.n_layers,
        "width (hidden size)": cfg.d_model,
        "MLP width": cfg.d_ff,
        "number of attention heads": cfg.n_heads,
        "number of key/value heads": cfg.n_kv_heads,
        "vocabulary size": cfg.vocab_size,
        "context length": cfg.context_length,
    }
    problem = next((f"its {what} is {n}" for what, n in counts.items() if n < 1), None)
    if problem is None and cfg.n_heads % cfg.n_kv_heads:
        problem = f"its {cfg.n_heads} attention heads cannot share {cfg.n_kv_heads} key/value heads evenly"
    elif problem is None and not cfg.head_dim and cfg.d_model % cfg.n_heads:
        problem = f"its width {cfg.d_model} does not divide into {cfg.n_heads} heads"
    elif problem is None and cfg.positions == "rotary" and not (math.isfinite(cfg.rope_theta) and cfg.rope_theta > 0):
        problem = f"its rotary base (rope theta) is {cfg.rope_theta}"
    elif problem is None and cfg.positions == "rotary" and cfg.d_head % 2:
        problem = f"its head size {cfg.d_head} is odd, which rotary positions cannot use"
    elif problem is None and not (math.isfinite(cfg.norm_eps) and cfg.norm_eps >= 0):
        problem = f"its normalisation epsilon is {cfg.norm_eps}"
    if problem is not None:
        raise ModelFileError(f"{source} describes a model that cannot exist: {problem}; the {kind} is damaged.")
    if stored_layers is not None and stored_layers != cfg.n_layers:
        raise ModelFileError(
            f"{source} says its model has {cfg.n_layers} layers but holds the weights of {stored_layers}; "
            f"the {kind} is damaged or incomplete."
        )


def as_number(value, cast, problem: str):
    """``cast(value)`` (int or float) of a model file's setting, or ModelFileError(``problem``) when it is not a
    number (text, a list, true/false), or not a whole number where one is needed (2.5 layers)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        if cast is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return cast(value)
    except (TypeError, ValueError, OverflowError):
        raise ModelFileError(problem) from None


def stored_layer_count(names, pattern: str = r"(?:^|\.)(?:blk|layers|h)\.(\d+)\.") -> int:
    """How many layers ``names`` (tensor names) hold weights for: one more than the highest layer index."""
    found = [int(m.group(1)) for n in names if (m := re.search(pattern, n))]
    return max(found) + 1 if found else 0


def _no_progress(msg: str, frac: float) -> None:
    log.info("%s (%.0f%%)", msg, 100 * frac)


def check_model_path(path: str | os.PathLike) -> Path:
    """Raise ModelFileError with one sentence if ``path`` cannot be a GGUF model file."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelFileError(
            f"The model file {p} does not exist; check the path or omit --model to use the bundled model."
        )
    if p.is_dir():
        raise ModelFileError(f"{p} is a folder, not a model file; give the path of a .gguf file inside it.")
    if not p.is_file():  # a device or a pipe: no size to check, and reading a pipe could wait forever
        raise ModelFileError(f"{p} is not a regular file; choose a .gguf file.")
    try:
        size = p.stat().st_size
        with open(p, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise ModelFileError(f"The model file {p} cannot be read ({e.strerror}); check its permissions.") from None
    if size == 0:
        raise ModelFileError(f"The model file {p} is empty (0 bytes); download or copy it again.")
    if magic != b"GGUF":
        raise ModelFileError(f"{p} is not a GGUF model file (it does not start with 'GGUF'); choose a .gguf file.")
    return p


def _field(reader, key: str, default=None, *, name: str):
    f = reader.fields.get(key)
    if f is None:
        return default
    try:
        return f.contents()
    except UnicodeDecodeError:  # GGUF strings are UTF-8
        raise ModelFileError(
            f"{name} has a metadata '{key}' that is not valid UTF-8 text; the file is damaged."
        ) from None


def read_config(reader, path: Path) -> LlamaConfig:
    arch = _field(reader, "general.architecture", name=path.name)
    if arch != "llama":
        raise ModelFileError(
            f"{path.name} is a '{arch}' model; explainer supports Llama-architecture GGUF files (such as SmolLM2), "
            f"and Llama, Qwen2 and GPT-2 models as Hugging Face folders (config.json, *.safetensors, tokenizer.json)."
        )

    def number(key: str, default=None, cast=int):
        v = _field(reader, key, default, name=path.name)
        if v is None:
            raise ModelFileError(
                f"{path.name} lacks the metadata '{key}'; the file is incomplete or not a Llama model."
            )
        kind = "whole number" if cast is int else "number"
        return as_number(v, cast, f"{path.name} has a metadata '{key}' that is not a {kind}; the file is damaged.")

    n_layers, d_model = number("llama.block_count"), number("llama.embedding_length")
    d_ff, n_heads = number("llama.feed_forward_length"), number("llama.attention.head_count")
    tokens = _field(reader, "tokenizer.ggml.tokens", name=path.name)
    cfg = LlamaConfig(
        n_layers=n_layers,
        d_model=d_model,
        d_ff=d_ff,
        n_heads=n_heads,
        n_kv_heads=number("llama.attention.head_count_kv", n_heads),
        vocab_size=number("llama.vocab_size", len(tokens) if tokens is not None else 0),
        context_length=number("llama.context_length", 2048),
        rope_theta=number("llama.rope.freq_base", 10000.0, float),
        norm_eps=number("llama.attention.layer_norm_rms_epsilon", 1e-5, float),
        name=str(_field(reader, "general.name", path.stem, name=path.name)),
        bos_token_id=number("tokenizer.ggml.bos_token_id", -1),
        add_bos=bool(_field(reader, "tokenizer.ggml.add_bos_token", False, name=path.name)),
    )
    check_config(cfg, path.name, stored_layer_count(t.name for t in reader.tensors))
    embed = next((t for t in reader.tensors if t.name == "token_embd.weight"), None)
    if embed is not None and [int(n) for n in embed.shape[:2]] != [cfg.d_model, cfg.vocab_size]:
        raise ModelFileError(
            f"{path.name} says its model is {cfg.d_model} wide with {cfg.vocab_size} tokens, but its embedding "
            f"table is {int(embed.shape[0])} × {int(embed.shape[-1])}; the file is damaged."
        )
    return cfg


def _unpermute(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Undo llama.cpp's rotary row permutation: per head, rows are stored interleaved (pairs) instead of
    in two halves. ``w``: [n_heads * d_head, d_in]."""
    out_dim, d_in = w.shape
    hd = out_dim // n_heads
    return w.reshape(n_heads, hd // 2, 2, d_in).swapaxes(1, 2).reshape(out_dim, d_in)


_NAMES = {
    "attn_norm.weight": "attn_norm",
    "attn_q.weight": "wq",
    "attn_k.weight": "wk",
    "attn_v.weight": "wv",
    "attn_output.weight": "wo",
    "ffn_norm.weight": "ffn_norm",
    "ffn_gate.weight": "w_gate",
    "ffn_up.weight": "w_up",
    "ffn_down.weight": "w_down",
}


def check_finite(arr: np.ndarray, tensor: str, source: str) -> None:
    """ModelFileError when ``arr`` holds an infinite or undefined (NaN) number: one such weight turns every
    result of the model into NaN. (A float32 sum is finite when every number is, short of overflowing 3e38:
    only then are the numbers looked at one by one.)"""
    with np.errstate(all="ignore"):  # (the sum of a damaged tensor overflows, or meets inf - inf)
        total = np.sum(arr, dtype=np.float32)
    if np.isfinite(total) or np.isfinite(arr).all():
        return
    raise ModelFileError(
        f"{source} is damaged: its tensor {tensor} holds infinite or undefined (NaN) numbers; download it again."
    )


def dequantize_gguf(path: Path, progress: Progress = _no_progress) -> tuple[LlamaConfig, dict[str, np.ndarray]]:
    """Parse the GGUF and return (config, float32 weights in [out, in] layout, our names)."""
    import gguf

    progress("Reading the model file", 0.05)
    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as e:  # noqa: BLE001 - gguf-py raises ValueError/IndexError/struct errors on damaged files
        raise ModelFileError(
            f"{path.name} is damaged or truncated and cannot be read as GGUF ({type(e).__name__}); download it again."
        ) from None
    cfg = read_config(reader, path)
    from explainer.core.hf_folder import check_memory

    check_memory(4 * sum(int(t.n_elements) for t in reader.tensors), path.name)  # the float32 weights must fit
    weights: dict[str, np.ndarray] = {}
    tensors = list(reader.tensors)
    for i, t in enumerate(tensors):
        if i % 16 == 0:
            progress(f"Dequantizing weights ({i}/{len(tensors)})", 0.1 + 0.75 * i / max(1, len(tensors)))
        try:
            with np.errstate(all="ignore"):  # a damaged scale (inf, NaN) is reported below, as one sentence
                arr = gguf.quants.dequantize(t.data, t.tensor_type)
        except Exception as e:  # noqa: BLE001 - any decoding failure means a damaged tensor
            raise ModelFileError(
                f"Tensor {t.name} in {path.name} cannot be decoded ({e}); the file is damaged."
            ) from None
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        name = t.name
        check_finite(arr, name, path.name)
        if name == "token_embd.weight":
            weights["embed"] = arr.reshape(cfg.vocab_size, cfg.d_model)
        elif name == "output_norm.weight":
            weights["norm"] = arr
        elif name == "output.weight":
            weights["lm_head"] = arr.reshape(cfg.vocab_size, cfg.d_model)
        elif name.startswith("blk."):
            _, idx, rest = name.split(".", 2)
            if rest in _NAMES:
                weights[f"layers.{int(idx)}.{_NAMES[rest]}"] = arr
    _check_complete(cfg, weights, path)
    for li in range(cfg.n_layers):
        weights[f"layers.{li}.wq"] = _unpermute(weights[f"layers.{li}.wq"], cfg.n_heads)
        weights[f"layers.{li}.wk"] = _unpermute(weights[f"layers.{li}.wk"], cfg.n_kv_heads)
    return cfg, weights


def _check_complete(cfg: LlamaConfig, w: dict[str, np.ndarray], path: Path) -> None:
    hd = cfg.d_head
    expect = {"embed": (cfg.vocab_size, cfg.d_model), "norm": (cfg.d_model,)}
    for li in range(cfg.n_layers):
        p = f"layers.{li}."
        expect.update(
            {
                p + "attn_norm": (cfg.d_model,),
                p + "ffn_norm": (cfg.d_model,),
                p + "wq": (cfg.n_heads * hd, cfg.d_model),
                p + "wk": (cfg.n_kv_heads * hd, cfg.d_model),
                p + "wv": (cfg.n_kv_heads * hd, cfg.d_model),
                p + "wo": (cfg.d_model, cfg.n_heads * hd),
                p + "w_gate": (cfg.d_ff, cfg.d_model),
                p + "w_up": (cfg.d_ff, cfg.d_model),
                p + "w_down": (cfg.d_model, cfg.d_ff),
            }
        )
    for k, shape in expect.items():
        if k not in w:
            raise ModelFileError(f"{path.name} has no tensor for '{k}'; it is incomplete or not a Llama model.")
        if tuple(w[k].shape) != shape:
            raise ModelFileError(
                f"Tensor '{k}' in {path.name} has shape {w[k].shape}, expected {shape}; the file is inconsistent."
            )


# --- the safetensors cache ------------------------------------------------------------------------------


def _cache_paths(gguf_sha: str) -> tuple[Path, Path]:
    d = cache_dir("weights")
    stem = f"{gguf_sha[:24]}-v{CACHE_FORMAT}"
    return d / f"{stem}.safetensors", d / f"{stem}.json"


atomic_write_bytes = atomic_write  # the one atomic writer lives in paths.py


def _load_cache(gguf_sha: str) -> tuple[LlamaConfig, dict[str, np.ndarray]] | None:
    st_path, meta_path = _cache_paths(gguf_sha)
    if not (st_path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(read_regular_text(meta_path))
        if meta.get("size") != st_path.stat().st_size or meta.get("sha256") != sha256_file(st_path):
            log.warning("weight cache %s failed verification; rebuilding", st_path)
            return None
        from explainer.core.backends.memory import map_safetensors

        cfg = meta["config"]
        cfg["rope_scaling"] = tuple(cfg.get("rope_scaling", ()))
        loaded = LlamaConfig(**cfg), map_safetensors(st_path)  # read on demand
    except Exception as e:  # noqa: BLE001 - a damaged cache entry is rebuilt, never trusted
        log.warning(
            "weight cache entry %s (.json, .safetensors) unreadable (%s); rebuilding", st_path.with_suffix(""), e
        )
        return None
    remove_older_formats(st_path.parent, gguf_sha[:24], "v", CACHE_FORMAT)
    try:
        os.utime(meta_path)  # used now: the last entry the pruning removes
    except OSError as e:
        log.info("weight cache %s not marked as used (%s)", meta_path.name, e)
    return loaded


def prune_weight_cache(budget: int = KEPT_WEIGHT_BYTES) -> list[str]:
    """Delete the entries of the weight cache used least recently until the rest fit in ``budget`` bytes (the
    newest is always kept): every model file ever opened would otherwise leave its decoded weights behind, each as
    large as the model in float32. An entry that cannot be deleted now (in use, on a system that forbids that) is
    left for the next time. Returns the names deleted."""
    d = cache_dir("weights")
    entries = []
    for meta in d.glob(f"*-v{CACHE_FORMAT}.json"):
        weights = meta.with_suffix(".safetensors")
        try:
            size = weights.stat().st_size if weights.exists() else 0
            entries.append((meta.stat().st_mtime, size, meta, weights))
        except OSError:
            continue  # (removed meanwhile by another process)
    entries.sort(key=lambda e: e[0], reverse=True)
    gone, total = [], 0
    for i, (_, size, meta, weights) in enumerate(entries):
        total += size
        if i == 0 or total <= budget:
            continue
        for p in (weights, meta):
            try:
                p.unlink(missing_ok=True)
                gone.append(p.name)
            except OSError as e:
                log.info("weight cache %s left in place (%s)", p.name, e)
                break
    return gone


def _save_cache(gguf_sha: str, cfg: LlamaConfig, weights: dict[str, np.ndarray]) -> None:
    from explainer.core.backends.memory import write_safetensors

    st_path, meta_path = _cache_paths(gguf_sha)
    atomic_write_bytes(st_path, lambda p: write_safetensors(p, weights))
    meta = {
        "config": asdict(cfg),
        "size": st_path.stat().st_size,
        "sha256": sha256_file(st_path),
        "gguf_sha256": gguf_sha,
    }
    atomic_write_bytes(meta_path, lambda p: p.write_text(json.dumps(meta, indent=1), encoding="utf-8"))
    remove_older_formats(st_path.parent, gguf_sha[:24], "v", CACHE_FORMAT)
    prune_weight_cache()


def load_weights(
    path: str | os.PathLike, progress: Progress = _no_progress, expected_sha256: str | None = None
) -> tuple[LlamaConfig, dict[str, np.ndarray], str]:
    """Return (config, weights, gguf sha256), from the cache when it verifies, else from the GGUF."""
    p = check_model_path(path)
    progress("Checking the model file", 0.0)
    gguf_sha = sha256_file(p)
    if expected_sha256 and gguf_sha != expected_sha256:
        raise ModelFileError(
            f"{p.name} does not match its published checksum; the file is damaged or modified, reinstall it."
        )
    cached = _load_cache(gguf_sha)
    if cached is not None:
        progress("Loaded cached weights", 1.0)
        return cached[0], cached[1], gguf_sha
    cfg, weights = dequantize_gguf(p, progress)
    progress("Writing the weight cache", 0.9)
    try:
        _save_cache(gguf_sha, cfg, weights)
        cached = _load_cache(gguf_sha)  # the file just written, mapped: the decoded arrays are freed
        if cached is not None:
            weights = cached[1]
    except OSError as e:  # a read-only or full cache folder must not stop the app
        log.warning("could not write weight cache: %s", e)
    progress("Model ready", 1.0)
    return cfg, weights, gguf_sha
