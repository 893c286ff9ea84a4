"""Models already on this computer, found without any network: complete snapshots of supported architectures in the
Hugging Face cache folder (``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ``~/.cache/huggingface/hub``).

A snapshot counts as complete when its config.json names a supported architecture, it has tokenizer.json, and
every safetensors file it needs (the index's shards, or the single file) is there with its data (the cache
keeps files as links into ``blobs/``, made once a download has finished; a link to a missing blob is not
complete).
Only the small JSON files are read.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from explainer.core.hf_layout import ARCHITECTURES

ARCH_LABELS = {"llama": "Llama", "qwen2": "Qwen2", "gpt2": "GPT-2"}


@dataclass(frozen=True)
class LocalModel:
    name: str  # "org/name" as on the Hub
    path: Path  # the snapshot folder
    arch: str  # "llama", "qwen2" or "gpt2"
    size: int  # bytes of weights

    @property
    def label(self) -> str:
        return f"{self.name} ({ARCH_LABELS.get(self.arch, self.arch)}, {self.size / 1e6:,.0f} MB)"


def hf_cache_dir() -> Path:
    """Where the Hugging Face libraries keep downloaded models (the same rules as ``huggingface_hub``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def cached_models(cache: Path | None = None) -> list[LocalModel]:
    """Complete snapshots of supported models in the Hugging Face cache, sorted by name."""
    root = hf_cache_dir() if cache is None else Path(cache)
    try:
        repos = [d for d in root.iterdir() if d.name.startswith("models--") and d.is_dir()]
    except OSError:
        return []
    out = []
    for repo in repos:
        snap = _snapshot(repo)
        found = _complete_model(snap) if snap is not None else None
        if snap is not None and found is not None:
            name = repo.name.removeprefix("models--").replace("--", "/")
            out.append(LocalModel(name, snap, *found))
    return sorted(out, key=lambda m: m.name.lower())


def _snapshot(repo: Path) -> Path | None:
    snaps = repo / "snapshots"
    try:
        ref = (repo / "refs" / "main").read_text(encoding="utf-8").strip()
        if (snaps / ref).is_dir():
            return snaps / ref
    except OSError:
        pass
    try:
        found = [s for s in snaps.iterdir() if s.is_dir()]
    except OSError:
        return None
    return max(found, key=lambda s: s.stat().st_mtime) if found else None


def _read(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _complete_model(snap: Path) -> tuple[str, int] | None:
    """(architecture, weight bytes) when ``snap`` is a complete supported model, else None."""
    cfg = _read(snap / "config.json")
    if cfg is None or cfg.get("auto_map") or not (snap / "tokenizer.json").is_file():
        return None
    archs = cfg.get("architectures") or []
    arch = next((ARCHITECTURES[a] for a in archs if a in ARCHITECTURES), None) if isinstance(archs, list) else None
    if arch is None:
        return None
    index = _read(snap / "model.safetensors.index.json")
    if index is not None:
        names = sorted(set((index.get("weight_map") or {}).values()))
    else:
        names = ["model.safetensors"]
    size = 0
    for n in names:
        f = snap / n
        try:
            size += f.stat().st_size  # follows the cache's link: fails when its blob is missing
        except OSError:
            return None
    return (arch, size) if names else None
