"""Nothing lost: the editor text, the scene and the analysis settings are saved every few seconds (only when
something changed) and when the window closes, and restored at the next start, also after a crash or a kill.

The file is ``<data folder>/autosave.json``; the data folder is ``$EXPLAINER_DATA`` or platformdirs'
``user_data_dir("explainer")``. It is written atomically (a temporary file in the same folder, fsync,
``os.replace``, fsync of the folder) on a background thread, so a slow disk never stalls typing and a kill at any
moment leaves either the old or the new file, never half of one::

    {"format": 1, "text": "...", "scene": {"theme": "dark", "view": "attention", "panels": {...}, ...},
     "settings": {"start_token": true, "max_tokens": 512, ...}}

``scene`` is the window's ``state()`` (``ui.window_state``: the same dict scenes and the window's settings use),
given back through ``restore()``; an older file's scene (``{"theme", "selected_position", "attention": {...},
"tokens": {...}}``) is read too, and a bad value is skipped, never an error. Window geometry, splitters and the
"What am I seeing?" switch stay with the window's QSettings (saved on close).

:func:`attach` also installs the test hooks of :mod:`explainer.ui.automation` when their environment variables
are set (the kill test types into a running app and reads the restored state back).

Several windows at once (two app instances): each claims its own file, ``autosave.json`` for the first,
``autosave-2.json`` … for the others, with a ``QLockFile`` in the temporary folder that the owner's exit (or
death: a lock whose process is gone is stale) releases; so two windows never overwrite each other's text, and
the next start of one instance gets back the text of the first slot that is free.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QLockFile, QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication

from explainer.core.paths import atomic_write

log = logging.getLogger(__name__)

DATA_ENV = "EXPLAINER_DATA"
FILE_NAME = "autosave.json"
FORMAT = 1
INTERVAL_MS = 3000


def data_dir() -> Path:
    """The per-user data folder (``$EXPLAINER_DATA`` overrides it); not created here."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("explainer", appauthor=False))


def autosave_path() -> Path:
    return data_dir() / FILE_NAME


MAX_SLOTS = 8


def _lock_dir() -> Path:
    import tempfile

    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"explainer-locks-{user}"


def claim_slot(base: Path | None = None) -> tuple[Path, QLockFile | None]:
    """The autosave file of this window and the lock that reserves it (None: locking is impossible here,
    then the first file is shared as before)."""
    import hashlib

    base = Path(base) if base is not None else autosave_path()
    try:
        folder = _lock_dir()
        folder.mkdir(parents=True, exist_ok=True)
        key = hashlib.sha256(str(base.expanduser().absolute()).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    except OSError as e:
        log.warning("autosave: no lock folder (%s); sharing %s", e, base.name)
        return base, None
    for n in range(1, MAX_SLOTS + 1):
        lock = QLockFile(str(folder / f"{key}-{n}.lock"))
        lock.setStaleLockTime(0)  # only a lock whose process is gone is stale, however old
        if lock.tryLock(0):
            return (base if n == 1 else base.with_name(f"{base.stem}-{n}{base.suffix}")), lock
    log.warning("autosave: %d windows are open; this one shares %s", MAX_SLOTS, base.name)
    return base, None


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: readers (and a crash) see the old file or the new one, never a mix."""
    atomic_write(path, data)


def load(path: Path | None = None) -> dict | None:
    """The saved state, or None when there is none or it cannot be used (a damaged file is left alone)."""
    path = path or autosave_path()
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        log.warning("ignoring the autosave file %s (%s)", path, e)
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        log.warning("ignoring the autosave file %s (unknown format)", path)
        return None
    return data


# --- scene: what the window shows ------------------------------------------------------------------------------
def _try(fn: Callable[[], Any], default: Any = None) -> Any:
    try:
        return fn()
    except Exception:  # noqa: BLE001 - a part the window does not have (yet) is simply not saved
        return default


def scene_state(window: Any) -> dict:
    """The window's state (``window.state()``, JSON-able); {} when it cannot be had."""
    return _try(window.state, {}) or {}


def apply_scene(window: Any, scene: dict) -> None:
    """Show a saved state (``window.restore``: this version's or an older one's; bad values are skipped). The
    window applies positions, layer and head again once the text is analysed."""
    if isinstance(scene, dict):
        _try(lambda: window.restore(scene))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def settings_state(window: Any) -> dict:
    s = _try(lambda: window.controller.settings)
    return dataclasses.asdict(s) if dataclasses.is_dataclass(s) else {}


def apply_settings(window: Any, saved: dict) -> None:
    """Put saved analysis settings back into the controller: known fields with the right type only."""
    controller = getattr(window, "controller", None)
    current = getattr(controller, "settings", None)
    if not isinstance(saved, dict) or not dataclasses.is_dataclass(current):
        return
    changes = {}
    for f in dataclasses.fields(current):
        v, old = saved.get(f.name), getattr(current, f.name)
        if isinstance(old, bool):
            ok = isinstance(v, bool)
        elif isinstance(old, int):
            # never above what the window starts with: it has no control that raises these, and a hand-edited
            # limit of 10**9 tokens could ask for more memory than there is, at every start
            ok = _is_int(v) and 1 <= v <= old
        else:
            ok = type(v) is type(old)
        if ok and v != old:
            changes[f.name] = v
    if changes:
        controller.settings = dataclasses.replace(current, **changes)


# --- the autosaver -----------------------------------------------------------------------------------------------
class Autosaver(QObject):
    """Saves the window's text, scene and settings every ``interval_ms`` when changed, and when it closes."""

    saved = Signal(str)  # the path, after a write succeeded
    saveFailed = Signal(str)  # one sentence, after a write failed (the next tick tries again)

    def __init__(self, window: Any, path: Path | None = None, interval_ms: int = INTERVAL_MS):
        super().__init__(window)
        self.window = window
        self._slot_lock: QLockFile | None = None
        if path is not None:
            self.path = Path(path)
        else:
            self.path, self._slot_lock = claim_slot()
        self.last_error: str | None = None
        self.writes = 0  # successful writes (for tests)
        self._lock = threading.Lock()
        self._submitted: bytes | None = None  # the newest payload handed to the writer
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False
        self._text: str | None = None  # cached editor text; None when it changed since
        window.editor.textChanged.connect(self._on_editor_changed)
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.save_if_changed)
        self.timer.start()
        window.installEventFilter(self)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.close)

    # --- what is saved ------------------------------------------------------------------------------------------
    def snapshot(self) -> dict:
        if self._text is None:
            self._text = self.window.editor.toPlainText()
        return {
            "format": FORMAT,
            "text": self._text,
            "scene": scene_state(self.window),
            "settings": settings_state(self.window),
        }

    @staticmethod
    def encode(state: dict) -> bytes:
        # ensure_ascii: text with lone surrogates (possible in a QString) still makes valid UTF-8 JSON
        return json.dumps(state, ensure_ascii=True, separators=(",", ":"), sort_keys=True).encode("ascii")

    # --- saving ---------------------------------------------------------------------------------------------------
    def save_if_changed(self, wait: bool = False) -> bool:
        """Write the state if it differs from the last one written (or being written); True if it was handed
        to the writer. ``wait`` blocks until it is on disk."""
        if self._closed:
            return False
        try:
            payload = self.encode(self.snapshot())
        except Exception as e:
            log.exception("could not collect the state to autosave")
            self.last_error = f"The autosave failed ({type(e).__name__})."
            return False
        with self._lock:
            if payload == self._submitted:
                return False
            self._submitted = payload
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="explainer-autosave")
        future = self._pool.submit(self._write, payload)
        if wait:
            future.result()
        return True

    def _write(self, payload: bytes) -> None:  # writer thread
        try:
            write_atomic(self.path, payload)
        except Exception as e:  # noqa: BLE001 - disk full, read-only folder, a file where the folder should be…
            msg = f"The text could not be saved to {self.path} ({getattr(e, 'strerror', None) or e})."
            if msg != self.last_error:  # once, not every few seconds while the disk stays full
                log.warning("%s", msg)
            with self._lock:
                if self._submitted == payload:
                    self._submitted = None  # try again at the next tick
            self.last_error = msg
            self._emit(self.saveFailed, msg)
            return
        self.writes += 1
        self.last_error = None
        self._emit(self.saved, str(self.path))

    def _emit(self, signal, arg) -> None:
        try:
            signal.emit(arg)  # queued to the receivers' thread
        except RuntimeError:  # the autosaver was deleted while a write was in flight
            pass

    def close(self) -> None:
        """Save now (waiting for the disk) and stop; called when the window closes or the app quits."""
        if self._closed:
            return
        self.timer.stop()
        try:
            self.save_if_changed(wait=True)
        except Exception:
            log.exception("the last autosave failed")
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._slot_lock is not None:  # the file is complete: the next window may take it over
            self._slot_lock.unlock()
            self._slot_lock = None

    # --- restoring -------------------------------------------------------------------------------------------------
    def restore(self, restore_text: bool = True, state: dict | None = None) -> bool:
        """Put the saved state back (text only when ``restore_text``); False when there was none."""
        state = load(self.path) if state is None else state
        if state is None:
            return False
        text = state.get("text")
        if restore_text and isinstance(text, str):
            _try(lambda: self.window.set_text(text))
        apply_settings(self.window, state.get("settings"))
        apply_scene(self.window, state.get("scene"))
        if restore_text and isinstance(text, str):
            with self._lock:  # what is on disk is what is shown: no need to write it again
                self._submitted = self.encode(self.snapshot())
        return True

    # --- Qt plumbing ---------------------------------------------------------------------------------------------
    def _on_editor_changed(self) -> None:
        self._text = None

    def eventFilter(self, obj, event) -> bool:
        if obj is self.window and event.type() == QEvent.Close:
            self.close()
        return False


def remove_stale_temporaries(path: Path, older_than_s: float = 60.0) -> None:
    """Temporary files left by a kill in the middle of a write (old enough not to be another instance's)."""
    now = time.time()
    try:
        for p in path.parent.glob(path.name + ".*.tmp"):
            try:
                if now - p.stat().st_mtime > older_than_s:
                    p.unlink()
            except OSError:
                pass
    except OSError:
        pass


def attach(window: Any, *, restore_text: bool = True) -> Autosaver:
    """Make an :class:`Autosaver` for ``window`` (which has an ``editor``), restore the saved state and install
    the test hooks named in the environment. Never raises for a bad or unwritable data folder."""
    saver = Autosaver(window)
    remove_stale_temporaries(saver.path)
    try:
        saver.restore(restore_text=restore_text)
    except Exception:
        log.exception("could not restore the autosave")
    from explainer.ui import automation

    automation.install_from_environment(window, saver)
    return saver
