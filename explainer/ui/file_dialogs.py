"""File dialogs that start in the folder used last, not in the folder the app was started from.

Each kind of file ("model", "model folder", "scene", "export", "screenshot") remembers its own folder in the window's QSettings
(``folders/<kind>``); a kind not used yet starts in the folder used last for any kind, else in ``fallback`` (the
lecture scenes' folder for "Open scene"), else in the user's documents folder. A folder that no longer exists is
skipped. When a dialog closes, the keyboard focus is back where it was (``keyboard.focus_kept``).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QFileDialog

from explainer.ui.keyboard import focus_kept


def _settings():
    from explainer.ui.window_settings import app_settings

    return app_settings()


def start_folder(kind: str, fallback: str | Path | None = None) -> str:
    """The folder a dialog for ``kind`` starts in."""
    s = _settings()
    documents = QStandardPaths.writableLocation(QStandardPaths.DocumentsLocation)
    for candidate in (s.value(f"folders/{kind}"), s.value("folders/last"), fallback, documents, Path.home()):
        if candidate and Path(str(candidate)).is_dir():
            return str(candidate)
    return ""


def remember(kind: str, path: str | Path) -> None:
    """``path`` was chosen for ``kind``: its folder is where the next dialog for it starts."""
    folder = str(Path(path).expanduser().absolute().parent)
    s = _settings()
    s.setValue(f"folders/{kind}", folder)
    s.setValue("folders/last", folder)
    s.sync()


def open_file(parent, kind: str, caption: str, filters: str, fallback: str | Path | None = None) -> str:
    """A file to open ("" when cancelled)."""
    with focus_kept(parent):
        path, _ = QFileDialog.getOpenFileName(parent, caption, start_folder(kind, fallback), filters)
    if path:
        remember(kind, path)
    return path


def open_folder(parent, kind: str, caption: str) -> str:
    """A folder to open ("" when cancelled); the next dialog for ``kind`` starts beside it, where its siblings are."""
    with focus_kept(parent):
        path = QFileDialog.getExistingDirectory(parent, caption, start_folder(kind))
    if path:
        remember(kind, path)
    return path


def save_file(parent, kind: str, caption: str, name: str, filters: str) -> tuple[str, str]:
    """A file to write, suggested as ``name`` in the start folder, and the filter chosen (("", "") when cancelled)."""
    folder = start_folder(kind)
    suggestion = str(Path(folder) / name) if folder else name
    with focus_kept(parent):
        path, chosen = QFileDialog.getSaveFileName(parent, caption, suggestion, filters)
    if path:
        remember(kind, path)
    return path, chosen
