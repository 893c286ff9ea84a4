"""Open a model from where it lives: the bundled SmolLM2 GGUF, any Llama GGUF file, or a Hugging Face model folder
(Llama, Qwen2, GPT-2). Returns one ``ModelSource``: the config, float32 weights in the loader's layout, the
model's own tokenizer and its start-of-text token. Every problem a user can cause is a ModelFileError with one
sentence.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from explainer.core.errors import ModelFileError
from explainer.core.gguf_loader import LlamaConfig
from explainer.core.start_token import StartToken, choose_start_token

if TYPE_CHECKING:
    from explainer.core.hf_tokenizer import HFTokenizer
    from explainer.core.tokenizers import Tokenizer

log = logging.getLogger(__name__)
Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class ModelSource:
    cfg: LlamaConfig
    weights: dict  # float32 numpy arrays in the loader's layout
    path: Path  # the GGUF file or the model folder
    kind: str  # "gguf" or "folder"
    identity: str  # names these exact weights (cache keys): "gguf-<sha256>" or "folder-<digest>"
    tokenizer: Tokenizer | HFTokenizer  # the GGUF's vocabulary, or a folder's own tokenizer.json
    start: StartToken

    @property
    def gguf_path(self) -> Path | None:
        return self.path if self.kind == "gguf" else None


def _log_progress(msg: str, frac: float) -> None:
    log.info("%s (%.0f%%)", msg, 100 * frac)


def open_model(path: str | Path | None = None, progress: Progress | None = None) -> ModelSource:
    """The model at ``path`` (None: the bundled SmolLM2-135M-Instruct)."""
    from explainer.core.hf_folder import looks_like_model_folder

    progress = progress or _log_progress
    if path is None:
        from explainer.core.bundled import bundled_model_path
        from explainer.core.paths import Manifest

        manifest = Manifest.load()
        src = _open_gguf(bundled_model_path(progress), progress, manifest.sha256)
        return dataclasses.replace(src, cfg=dataclasses.replace(src.cfg, name=manifest.display_name))
    if not str(path).strip():
        raise ModelFileError("The model path is empty; give a .gguf file or a Hugging Face model folder.")
    p = Path(path).expanduser()
    if p.name == "config.json" and p.is_file():  # a folder's config.json, picked in a file dialog
        p = p.parent
    if p.is_dir() and looks_like_model_folder(p):
        return _open_folder(p, progress)
    if p.is_dir():
        raise ModelFileError(
            f"{p} is a folder without config.json; give a Hugging Face model folder (config.json, "
            f"*.safetensors, tokenizer.json) or a .gguf file."
        )
    return _open_gguf(p, progress)


def _open_gguf(path: Path, progress: Progress, expected_sha256: str | None = None) -> ModelSource:
    from explainer.core.gguf_loader import load_weights
    from explainer.core.tokenizers import get_tokenizer

    cfg, weights, sha = load_weights(path, progress, expected_sha256)
    tokenizer = get_tokenizer("smollm2", gguf_path=path)
    return ModelSource(cfg, weights, Path(path), "gguf", f"gguf-{sha}", tokenizer, gguf_start_token(cfg, tokenizer))


def gguf_start_token(cfg: LlamaConfig, tokenizer) -> StartToken:
    """The start-of-text token of a GGUF model (its ``tokenizer.ggml.bos_token_id`` / ``add_bos_token``)."""
    bos = cfg.bos_token_id if 0 <= cfg.bos_token_id < tokenizer.vocab_size else None
    return choose_start_token(
        tokenizer_adds=bos if cfg.add_bos else None,
        bos_id=bos,
        lookup=tokenizer.special_ids.get,
        text_of=lambda i: tokenizer.token_bytes(i).decode("utf-8", "replace"),
    )


def _open_folder(path: Path, progress: Progress) -> ModelSource:
    from explainer.core.hf_folder import inspect_folder, load_folder_weights
    from explainer.core.hf_tokenizer import HFTokenizer, read_tokenizer_config, token_text

    progress("Checking the model folder", 0.0)
    folder = inspect_folder(path)
    cfg = folder.config
    tokenizer = HFTokenizer(folder.tokenizer_json, cfg.name)
    if tokenizer.vocab_size > cfg.vocab_size:
        raise ModelFileError(
            f"The tokenizer of {cfg.name} has {tokenizer.vocab_size:,} tokens but the model only "
            f"{cfg.vocab_size:,} embeddings; the folder mixes two models."
        )
    tc = read_tokenizer_config(folder.path)
    bos = cfg.bos_token_id if cfg.bos_token_id >= 0 else None
    bos_text = token_text(tc.get("bos_token"))
    if bos is None and bos_text is not None:
        bos = tokenizer.token_id(bos_text)
    adds = tokenizer.adds_start_token()
    if isinstance(tc.get("add_bos_token"), bool):  # the tokenizer's own setting wins over its post-processor
        adds = (adds if adds is not None else bos) if tc["add_bos_token"] else None
    cfg = dataclasses.replace(cfg, bos_token_id=-1 if bos is None else bos, add_bos=adds is not None)

    def text_of(i: int) -> str:
        return tokenizer.token_bytes(i).decode("utf-8", "replace")

    start = choose_start_token(tokenizer_adds=adds, bos_id=bos, lookup=tokenizer.token_id, text_of=text_of)
    weights = load_folder_weights(folder, progress)
    progress("Model ready", 1.0)
    return ModelSource(cfg, weights, folder.path, "folder", _folder_identity(folder), tokenizer, start)


def _folder_identity(folder) -> str:
    """A digest of the folder's weight files (path, size, modification time) and its config."""
    h = hashlib.sha256(repr(sorted(folder.raw_config.items(), key=str)).encode())
    for f in sorted({e.file for e in folder.tensors.values()}):
        st = f.stat()
        h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return f"folder-{h.hexdigest()[:24]}"
