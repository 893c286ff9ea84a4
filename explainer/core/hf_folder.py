"""Read a Hugging Face model folder (config.json, *.safetensors, tokenizer.json) of a Llama, Qwen2 or GPT-2 model.

Only data is read: the config as JSON, the weights as safetensors (their JSON headers are checked before any
tensor is read), the tokenizer as tokenizer.json. Pickle weights (``*.bin``) are never opened, and a folder that
needs its own Python code (``auto_map`` in config.json, loaded with ``trust_remote_code``) is refused.

``inspect_folder`` does every check that needs no tensor data (architecture, files, shapes, memory) and says
what is wrong in one sentence; ``load_folder_weights`` then returns float32 weights in the loader's layout
(``explainer.core.gguf_loader``), converted by ``explainer.core.hf_layout``.
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
from explainer.core.gguf_loader import LlamaConfig, check_config, check_finite, stored_layer_count
from explainer.core.hf_layout import ARCHITECTURES, SUPPORTED_TEXT, expected_shapes, read_hf_config, to_layout

log = logging.getLogger(__name__)
Progress = Callable[[str, float], None]

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_DTYPES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8}


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
    check_config(cfg, name, stored_layer_count(tensors), "folder")
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


def _check_shapes(cfg: LlamaConfig, tensors: dict[str, TensorEntry], tied: bool, name: str) -> None:
    for key, shape in expected_shapes(cfg, tied).items():
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
    for key in expected_shapes(folder.config, folder.tied):
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
                    check_finite(loaded[key], full, f.name)
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
