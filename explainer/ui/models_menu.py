"""Choosing a model in the File menu: open a model folder, the models opened recently, the models already on this
computer (complete snapshots in the Hugging Face cache, found without any network) and the bundled model.

Installed by one call, ``install(window, settings)``; it adds its items after File › Open model…. A model that
cannot be opened says why in one sentence and the current model keeps answering (the controller's rule).
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, QSettings
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

from explainer.ui import file_dialogs

log = logging.getLogger(__name__)
RECENT_KEY = "models/recent"
MAX_RECENT = 8


def add_recent(paths: list[str], path: str) -> list[str]:
    """``path`` first, no duplicates, at most MAX_RECENT."""
    return ([path] + [p for p in paths if p != path])[:MAX_RECENT]


class ModelsMenu(QObject):
    def __init__(self, window, settings: QSettings | None = None):
        super().__init__(window)
        self.main = window
        self.settings = settings
        menu: QMenu = window.file_menu
        actions = menu.actions()
        opener = next((i for i, a in enumerate(actions) if a.text().startswith("&Open model")), len(actions) - 1)
        before = actions[opener + 1] if opener + 1 < len(actions) else None  # the new items go right after it
        self.folder_action = QAction("Open model &folder…", menu)
        self.folder_action.setToolTip("A Hugging Face model folder: config.json, *.safetensors and tokenizer.json")
        self.folder_action.triggered.connect(self.open_folder_dialog)
        self.recent_menu = QMenu("&Recent models", menu)
        self.local_menu = QMenu("&Models on this computer", menu)
        self.bundled_action = QAction("&Bundled model (SmolLM2-135M-Instruct)", menu)
        self.bundled_action.triggered.connect(self.open_bundled)
        for a in (self.folder_action, self.recent_menu.menuAction(), self.local_menu.menuAction(), self.bundled_action):
            menu.insertAction(before, a)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self.local_menu.aboutToShow.connect(self._fill_local)
        window.controller.modelLoaded.connect(self._on_controller_model_loaded)

    # --- the lists ----------------------------------------------------------------------------------------------
    def recent(self) -> list[str]:
        if self.settings is None:
            return []
        value = self.settings.value(RECENT_KEY, [])
        if isinstance(value, str):  # QSettings returns a one-element list as a string on some platforms
            value = [value]
        return [str(v) for v in (value or []) if v]

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        paths = [p for p in self.recent() if Path(p).exists()]
        for p in paths:
            a = self.recent_menu.addAction(_short(p), lambda p=p: self.main.open_model(p))
            a.setToolTip(p)
        if not paths:
            self.recent_menu.addAction("(none yet)").setEnabled(False)

    def _fill_local(self) -> None:
        from explainer.core.local_models import cached_models, hf_cache_dir

        self.local_menu.clear()
        found = cached_models()
        for m in found:
            a = self.local_menu.addAction(m.label, lambda p=str(m.path): self.main.open_model(p))
            a.setToolTip(str(m.path))
        if not found:
            a = self.local_menu.addAction(f"(no Llama, Qwen2 or GPT-2 models in {hf_cache_dir()})")
            a.setEnabled(False)

    # --- opening ------------------------------------------------------------------------------------------------
    def open_folder_dialog(self) -> None:
        path = file_dialogs.open_folder(self.main, "model folder", "Open a Hugging Face model folder")
        if path:
            self.main.open_model(path)

    def open_bundled(self) -> None:
        from explainer.runtime.controller import engine_factory

        w = self.main
        w.controller.load_model(engine_factory(None, device=w.device, backend=w.backend))

    def _on_controller_model_loaded(self, _info) -> None:
        opts = getattr(self.main.controller.factory, "options", None) or {}
        path = opts.get("model_path")
        if path and self.settings is not None:
            self.settings.setValue(RECENT_KEY, add_recent(self.recent(), str(Path(path).expanduser().resolve())))


def _short(path: str) -> str:
    """A folder or file name with its parent, for a menu: ``models/tiny-gpt2``."""
    p = Path(path)
    if p.parent.name == "snapshots":  # a Hugging Face cache snapshot: its repository's name
        return p.parent.parent.name.removeprefix("models--").replace("--", "/")
    return f"{p.parent.name}/{p.name}" if p.parent.name else p.name


def install(window, settings: QSettings | None = None) -> ModelsMenu:
    window.models_menu = menu = ModelsMenu(window, settings)
    return menu
