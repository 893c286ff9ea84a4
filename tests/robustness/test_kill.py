"""Kill test: text typed into the running app is autosaved within a few seconds; after SIGKILL the next start
shows it again. The app runs as a real process (``python -m explainer --demo``, offscreen) and is driven by the
autosave module's test hooks: ``EXPLAINER_TEST_TYPE`` types key events into the editor, ``EXPLAINER_PRINT_STATE``
prints the restored state as one JSON line and closes the window.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from explainer.ui.main_window import DEFAULT_TEXT

ROOT = Path(__file__).resolve().parents[2]
TYPED = "Lecture 7: attention ✓ 漢字 العربية 👍 " + "\U0001f468\u200d\U0001f469\u200d\U0001f467" + "\nsecond line"
START_TIMEOUT = 180  # seconds: importing torch and Qt on a loaded 2-core machine


def app_env(tmp_path: Path, **extra: str) -> dict:
    env = dict(
        os.environ,
        EXPLAINER_DATA=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    for k in ("EXPLAINER_TEST_TYPE", "EXPLAINER_PRINT_STATE", "EXPLAINER_TEST_TYPE_INTERVAL_MS"):
        env.pop(k, None)
    env.update(extra)
    return env


def start_app(tmp_path: Path, **extra: str) -> tuple[subprocess.Popen, queue.Queue]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "explainer", "--demo", "--size", "1280x720"],
        cwd=ROOT,
        env=app_env(tmp_path, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    lines: queue.Queue = queue.Queue()

    def pump():
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def wait_line(lines: queue.Queue, prefix: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if line.startswith(prefix):
            return line
    raise AssertionError(f"no line starting with {prefix!r} within {timeout} s")


def read_autosave(path: Path) -> dict | None:
    try:
        return json.loads(path.read_bytes())  # must never be half a file
    except FileNotFoundError:
        return None


def restart_and_print_state(tmp_path: Path) -> dict:
    p = subprocess.run(
        [sys.executable, "-m", "explainer", "--demo"],
        cwd=ROOT,
        capture_output=True,
        env=app_env(tmp_path, EXPLAINER_PRINT_STATE="1"),
        timeout=START_TIMEOUT,
    )
    assert p.returncode == 0, p.stderr.decode("utf-8", "replace")[-2000:]
    state_lines = [ln for ln in p.stdout.decode("utf-8").splitlines() if ln.startswith("{")]
    assert len(state_lines) == 1, p.stdout
    return json.loads(state_lines[0])


def kill(proc: subprocess.Popen) -> None:
    proc.kill()  # SIGKILL on POSIX: no close event, no QSettings, no atexit
    proc.wait(timeout=30)
    assert proc.returncode != 0


def test_typed_text_survives_sigkill(tmp_path):
    proc, lines = start_app(tmp_path, EXPLAINER_TEST_TYPE=TYPED)
    path = tmp_path / "data" / "autosave.json"
    try:
        wait_line(lines, "TYPED", START_TIMEOUT)
        typed_at = time.monotonic()
        want = DEFAULT_TEXT + TYPED
        while (read_autosave(path) or {}).get("text") != want:  # saved while the app runs on
            assert time.monotonic() - typed_at < 60, f"never autosaved: {read_autosave(path)}"  # hang guard
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
    finally:
        kill(proc)
    assert not (tmp_path / "config" / "explainer" / "explainer.ini").exists()  # QSettings never saved: killed
    assert read_autosave(path)["text"] == want
    state = restart_and_print_state(tmp_path)
    assert state["text"] == want


@pytest.mark.skipif(os.name != "posix", reason="kill timing semantics")
def test_kill_while_typing_leaves_a_valid_autosave(tmp_path):
    """Killed at a random moment while typing and saving: the file is always whole JSON, its text is a prefix of
    what was typed, and the next start shows exactly that text."""
    long_text = "the quick brown fox jumps over the lazy dog; 漢字 👍 " * 20
    proc, lines = start_app(tmp_path, EXPLAINER_TEST_TYPE=long_text, EXPLAINER_TEST_TYPE_INTERVAL_MS="10")
    path = tmp_path / "data" / "autosave.json"
    full = DEFAULT_TEXT + long_text
    seen = []
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while len(seen) < 3 and time.monotonic() < deadline:  # kill after a few saves, while still typing
            data = read_autosave(path)
            if data is not None and (not seen or data["text"] != seen[-1]):
                seen.append(data["text"])
            assert proc.poll() is None
            time.sleep(0.02)
    finally:
        kill(proc)
    assert seen, "nothing was autosaved"
    for text in seen:
        assert full.startswith(text)
    final = read_autosave(path)["text"]
    assert full.startswith(final) and len(final) > len(DEFAULT_TEXT)
    # a kill during a write may leave a temporary file beside it (removed at the next start), never a torn one
    assert all(p.name == "autosave.json" or p.name.endswith(".tmp") for p in path.parent.iterdir())
    assert restart_and_print_state(tmp_path)["text"] == final
