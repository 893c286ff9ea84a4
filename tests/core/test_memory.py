"""Reading weight files ahead of their use: what is read, what is skipped, and that nothing needs torch."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from explainer.core.backends import memory


@pytest.mark.parametrize("advise", [True, False], ids=["advised", "read"])
def test_read_into_cache_covers_every_byte_of_each_file_and_skips_one_it_cannot_open(
    tmp_path, caplog, monkeypatch, advise
):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"x" * (memory.CHUNK + 123))  # more than one chunk
    b.write_bytes(b"y" * 10)
    ranges = []
    if not advise:
        monkeypatch.delattr(os, "posix_fadvise", raising=False)  # (as on Windows and macOS)
    elif hasattr(os, "posix_fadvise"):
        real = os.posix_fadvise
        monkeypatch.setattr(
            os, "posix_fadvise", lambda fd, start, n, how: ranges.append((start, n)) or real(fd, start, n, how)
        )
    with caplog.at_level(logging.WARNING, logger=memory.log.name):
        n = memory.read_into_cache([str(a), str(tmp_path / "gone.bin"), str(b)])
    assert n == memory.CHUNK + 133
    assert "gone.bin" in caplog.text
    if advise and hasattr(os, "posix_fadvise"):
        assert ranges == [(0, memory.CHUNK), (memory.CHUNK, 123), (0, 10)]


def test_mapped_files_names_each_file_of_a_weight_cache_once(tmp_path):
    weights = {"w1": np.ones((4, 64), np.float32), "w2": np.arange(128, dtype=np.float32)}
    path = tmp_path / "w.safetensors"
    memory.write_safetensors(path, weights)
    mapped = memory.map_safetensors(path)
    assert memory.mapped_files(mapped) == [str(path)]
    assert memory.mapped_files({**mapped, "in memory": np.zeros(3, np.float32)}) == [str(path)]
    assert memory.mapped_files({"in memory": np.zeros(3, np.float32)}) == []


def test_prefetch_reads_in_the_background_and_does_nothing_without_files(tmp_path, monkeypatch):
    read = []
    monkeypatch.setattr(memory, "read_into_cache", lambda paths, pause_s=0.0: read.append((paths, pause_s)))
    assert memory.prefetch([]) is None
    t = memory.prefetch([str(tmp_path / "f")])
    t.join(10)
    assert not t.is_alive() and t.daemon and read == [([str(tmp_path / "f")], 0.01)]


def test_torch_libraries_are_found_without_importing_torch(monkeypatch):
    import torch  # noqa: F401  (imported: nothing of it is left to read)

    assert memory.torch_libraries() == []
    monkeypatch.delitem(sys.modules, "torch")
    libs = [Path(p) for p in memory.torch_libraries()]
    assert "torch" not in sys.modules
    assert libs and all(p.parent.name == "lib" and p.parent.parent.name == "torch" for p in libs)
    sizes = [p.stat().st_size for p in libs]
    assert sizes == sorted(sizes, reverse=True)
