"""sha256 of big files, remembered per file version; a cancelled background export leaves nothing behind."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time

import pytest

from explainer.core import paths


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLAINER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(paths, "_memo", None)  # forget the table of the session's cache folder
    return tmp_path / "cache"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_settled_file_is_read_once(cache, tmp_path, monkeypatch):
    f = tmp_path / "model.bin"
    f.write_bytes(b"weights" * 1000)
    monkeypatch.setattr(paths, "_MEMO_MIN_AGE_S", 0.0)
    assert paths.sha256_file(f) == digest(b"weights" * 1000)
    table = json.loads((cache / paths.HASH_MEMO_FILE).read_text())
    assert table[str(f.resolve())][4] == digest(b"weights" * 1000)

    def no_reading(*a, **k):
        raise AssertionError("the file was read again")

    monkeypatch.setattr(paths, "_sha256_read", no_reading)
    monkeypatch.setattr(paths, "_memo", None)  # a new process: the table comes from the cache folder
    assert paths.sha256_file(f) == digest(b"weights" * 1000)


def test_a_changed_file_is_hashed_again_even_with_the_same_size_and_mtime(cache, tmp_path, monkeypatch):
    import os

    f = tmp_path / "model.bin"
    f.write_bytes(b"A" * 4096)
    monkeypatch.setattr(paths, "_MEMO_MIN_AGE_S", 0.0)
    before = os.stat(f)
    assert paths.sha256_file(f) == digest(b"A" * 4096)
    time.sleep(0.05)  # past the file system's timestamp tick
    with open(f, "r+b") as fh:  # one byte flipped in place, and the modification time put back
        fh.seek(100)
        fh.write(b"B")
    os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(f).st_size == before.st_size and os.stat(f).st_mtime_ns == before.st_mtime_ns
    expected = digest(b"A" * 100 + b"B" + b"A" * 3995)
    assert paths.sha256_file(f) == expected  # the ctime moved: nothing but a change sets it


def test_a_file_written_just_now_is_not_remembered(cache, tmp_path):
    f = tmp_path / "fresh.bin"
    f.write_bytes(b"new")
    assert paths.sha256_file(f) == digest(b"new")
    memo = cache / paths.HASH_MEMO_FILE
    assert not memo.exists() or str(f.resolve()) not in json.loads(memo.read_text())


def test_a_damaged_memo_file_is_ignored(cache, tmp_path, monkeypatch):
    cache.mkdir(parents=True, exist_ok=True)
    (cache / paths.HASH_MEMO_FILE).write_bytes(b"\x00{not json")
    f = tmp_path / "model.bin"
    f.write_bytes(b"x" * 10)
    assert paths.sha256_file(f) == digest(b"x" * 10)


@pytest.mark.slow
def test_cancelled_background_export_stops_and_leaves_no_partial_file(cache, bundled_gguf):
    from explainer.core.backends import ExportJob

    job = ExportJob(bundled_gguf, "gguf-cancel-test")
    time.sleep(3.0)  # the child is loading or exporting by now
    assert not job.done()
    job.cancel()
    assert job.done()
    if os.name == "posix":  # ended by SIGTERM (its handler exits 143), not killed after cancel's wait
        assert job.proc.returncode in (143, -signal.SIGTERM), job.proc.returncode
    assert not [p.name for p in (cache / "onnx").glob("*") if p.suffix in (".tmp", ".onnx")]


def test_older_formats_of_a_cache_entry_are_removed_and_nothing_else(tmp_path):
    names = [
        "abc-v1.safetensors",  # older formats of this entry: removed
        "abc-v1.json",
        "abc-v2-layers.data",
        "abc-v3.safetensors",  # the current format, a newer one, a half-written current one: kept
        "abc-v3.safetensors.x1y2.tmp",
        "abc-v12.json",
        "abd-v1.json",  # another entry, other names
        "abc-vx.json",
        "abc-v1x.json",
        "xabc-v1.json",
    ]
    for n in names:
        (tmp_path / n).write_bytes(b"x")
    (tmp_path / "abc-v1.d").mkdir()  # not a file
    gone = paths.remove_older_formats(tmp_path, "abc", "v", 3)
    assert sorted(gone) == ["abc-v1.json", "abc-v1.safetensors", "abc-v2-layers.data"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(set(names) - set(gone) | {"abc-v1.d"})
    assert paths.remove_older_formats(tmp_path / "missing", "abc", "v", 3) == []


def test_a_file_being_written_is_known_and_a_stopping_process_removes_it(tmp_path):
    """A process ended by a signal exits at once (unwinding through native code can abort it): it removes the
    temporary files atomic_write is writing, and only those; a finished or failed write leaves none behind."""
    dst = tmp_path / "out.bin"
    other = tmp_path / "out.bin.keep.tmp"  # someone else's file with a similar name stays
    other.write_bytes(b"x")
    seen = []

    def writer(p):
        p.write_bytes(b"partial")
        seen.append(p)
        assert p in paths._WRITING
        assert paths.remove_partial_files() == [p]
        assert not p.exists() and p not in paths._WRITING
        raise KeyboardInterrupt  # (stands in for the exit that follows)

    with pytest.raises(KeyboardInterrupt):
        paths.atomic_write(dst, writer)
    assert seen and not dst.exists() and other.exists()
    assert sorted(f.name for f in tmp_path.iterdir()) == [other.name]
    paths.atomic_write(dst, b"whole")
    assert dst.read_bytes() == b"whole" and not paths._WRITING and paths.remove_partial_files() == []


def test_the_weight_cache_keeps_the_models_used_last_within_its_budget(cache, tmp_path, bundled_gguf):
    """Every model file opened leaves its decoded weights (the model's size in float32) in the cache: the entries
    used least recently go once the rest exceed the budget; the newest stays even alone over it; a cache hit counts
    as a use."""
    import dataclasses

    from explainer.core import gguf_loader as gl
    from explainer.core.engine import TINY_CONFIG
    from explainer.core.llama import random_weights
    from tests.gguf_factory import write_tiny_llama

    d = cache / "weights"
    d.mkdir(parents=True)
    now = time.time()
    for i, size in enumerate([400, 300, 200, 100]):  # "a" used most recently, "d" longest ago
        stem = f"{'abcd'[i] * 24}-v{gl.CACHE_FORMAT}"
        (d / f"{stem}.safetensors").write_bytes(b"\0" * size)
        (d / f"{stem}.json").write_text("{}")
        os.utime(d / f"{stem}.json", (now - 100 * (i + 1), now - 100 * (i + 1)))
    kept = lambda: sorted(p.name[0] for p in d.glob("*.json"))  # noqa: E731
    assert gl.prune_weight_cache(budget=10_000) == [] and kept() == ["a", "b", "c", "d"]
    gone = gl.prune_weight_cache(budget=750)  # a + b = 700 fit, c does not: c and d go (least recently used)
    assert kept() == ["a", "b"] and set(gone) == {
        f"{x * 24}-v{gl.CACHE_FORMAT}.{e}" for x in "cd" for e in ("json", "safetensors")
    }
    gl.prune_weight_cache(budget=10)
    assert kept() == ["a"]  # the newest, even alone over the budget

    cfg = dataclasses.replace(TINY_CONFIG, n_layers=1)
    path = write_tiny_llama(tmp_path / "tiny.gguf", cfg, random_weights(cfg, seed=1), bundled_gguf)
    gl.load_weights(path)  # decoded and cached: now the newest; with the default budget "a" stays
    assert len(kept()) == 2 and "a" in kept()
    os.utime(d / f"{'a' * 24}-v{gl.CACHE_FORMAT}.json", (now - 1000, now - 1000))
    gl.load_weights(path)  # a cache hit marks the entry as used
    newest = max(d.glob("*.json"), key=lambda p: p.stat().st_mtime)
    assert newest.name[0] != "a" and newest.stat().st_mtime > now - 5


@pytest.mark.parametrize("damage", ["file_instead", "sub_folder_is_a_file", "device", "read_only"])
def test_an_unusable_cache_folder_gives_a_temporary_one_and_the_same_numbers(
    tmp_path, monkeypatch, capsys, caplog, bundled_gguf, damage
):
    """A cache is only a speed-up: with a file where the cache folder (or its weights folder) should be, a device
    as the folder or a folder that cannot be written, the run keeps its cache in a temporary folder (one warning,
    which processes started from here share) and its numbers are those of a run with a usable cache."""
    from explainer.cli import main
    from explainer.core.engine import TINY_CONFIG
    from explainer.core.llama import random_weights
    from tests.gguf_factory import write_tiny_llama

    model = write_tiny_llama(tmp_path / "tiny.gguf", TINY_CONFIG, random_weights(TINY_CONFIG, seed=3), bundled_gguf)
    argv = ["analyze", "--model", str(model), "--json", "--backend", "torch", "The cat sat"]
    monkeypatch.setenv("EXPLAINER_CACHE", str(tmp_path / "good"))
    monkeypatch.setattr(paths, "_memo", None)
    assert main(argv) == 0
    good = json.loads(capsys.readouterr().out)
    cache = tmp_path / "bad"
    if damage == "file_instead":
        cache.write_text("not a folder")
    elif damage == "sub_folder_is_a_file":
        cache.mkdir()
        (cache / "weights").write_text("not a folder")
    elif damage == "device":
        cache = os.devnull
    else:
        cache.mkdir()
        real_access = os.access  # (root may write anywhere: the check is told the folder is read-only)
        monkeypatch.setattr(
            paths.os, "access", lambda p, mode: not str(p).startswith(str(cache)) and real_access(p, mode)
        )
    monkeypatch.setenv("EXPLAINER_CACHE", str(cache))
    monkeypatch.setattr(paths, "_memo", None)
    with caplog.at_level("WARNING", logger="explainer.core.paths"):
        assert main(argv) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == good
    warnings = [r.getMessage() for r in caplog.records if r.name == "explainer.core.paths"]
    assert len(warnings) == 1 and "cannot be used" in warnings[0] and "the same results" in warnings[0], warnings
    temporary = os.environ["EXPLAINER_CACHE"]
    assert temporary != str(cache) and "explainer-cache-" in temporary and os.path.isdir(temporary)
    assert list((paths.Path(temporary) / "weights").glob("*.safetensors"))  # the cache still works, there


@pytest.mark.skipif(os.name != "posix", reason="named pipes")
def test_a_pipe_or_a_folder_in_place_of_a_cache_file_neither_waits_nor_stays(cache, tmp_path, bundled_gguf):
    """Cache records and files are opened only as regular files (a named pipe without a writer would wait
    forever); a folder where a cache file belongs is replaced by the file (inside the cache folder only)."""
    import subprocess
    import sys

    cache.mkdir()
    os.mkfifo(cache / paths.HASH_MEMO_FILE)
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(OSError, match="not a regular file"):
        paths.read_regular_text(tmp_path / "pipe")
    with pytest.raises(OSError, match="not a regular file"):
        paths.open_regular(tmp_path)
    code = (
        "from explainer.core import paths; import pathlib; "
        f"print(paths.sha256_file(pathlib.Path({str(bundled_gguf)!r}))[:12])"
    )
    env = {**os.environ, "EXPLAINER_CACHE": str(cache)}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and len(run.stdout.strip()) == 12, run.stderr
    entry = cache / "weights" / "entry.json"
    (entry / "inside").mkdir(parents=True)
    paths.atomic_write(entry, b"{}")
    assert entry.is_file() and entry.read_bytes() == b"{}"
    outside = tmp_path / "user-folder"
    outside.mkdir()
    with pytest.raises(OSError):  # never a folder outside the cache
        paths.atomic_write(outside, b"{}")
    assert outside.is_dir()
