"""How the text is analysed, in the View menu: special-token parsing, the start-of-text token and the backend.

- "Read <|…|> as special tokens": typed ``<|im_start|>`` becomes the single special token (a chat), else it is
  plain text cut into ordinary tokens.
- "Add a start-of-text token": the model's own start token before the text (SmolLM2's ``<|endoftext|>``, id 0;
  each model's is named in the menu, see ``core.start_token``), which the model predicts much better with; a chat
  starts with ``<|im_start|>`` instead.
- Backend ▸ torch / ONNX Runtime / ONNX Runtime on the file's 4-bit weights / auto: reopens the same model on
  the worker thread with that backend (the status bar names the backend each result came from; when one is not
  available the engine says why and keeps torch).

A small label in the status bar says when either setting differs from the default, so a lecturer who sent a chat
to the editor knows why ordinary text now analyses differently.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QLabel, QMenu

BACKENDS = (
    ("torch", "torch"),
    ("onnx", "ONNX Runtime (float32)"),
    ("stored", "ONNX Runtime on the file's 4-bit weights"),
    ("auto", "auto (the fastest that runs here)"),
)


def set_text_and_settings(
    window,
    text: str,
    *,
    parse_specials: bool | None = None,
    start_token: bool | None = None,
    ablated: tuple[tuple[int, int], ...] | None = None,
) -> None:
    """Put ``text`` in the editor and analyse it with these settings (None: unchanged), in one request."""
    c = window.controller
    changes = {
        k: v
        for k, v in (("parse_specials", parse_specials), ("start_token", start_token), ("ablated", ablated))
        if v is not None and getattr(c.settings, k) != v
    }
    if changes:
        c.settings = dataclasses.replace(c.settings, **changes)  # the text change below submits with them
    if window.editor.toPlainText() != text:
        window.set_text(text)
    elif changes:
        c.submit(text)


class AnalysisMenu(QObject):
    def __init__(self, window, menu: QMenu):
        super().__init__(window)
        self.main = window
        self.specials = menu.addAction("Read <|…|> as special tokens")
        self.specials.setCheckable(True)
        self.specials.setToolTip(
            "On: a typed <|im_start|> or <|im_end|> is one special token, as in a chat. Off: it is ordinary text."
        )
        self.start = menu.addAction("Add a start-of-text token")
        self.start.setCheckable(True)
        self.start.setToolTip(
            "Put <|endoftext|> (id 0) before the text: the model predicts the first words much "
            "better with it. A chat starts with <|im_start|> instead."
        )
        self.backend_menu = menu.addMenu("&Backend")
        group = QActionGroup(self)
        self.backend_actions: dict[str, QAction] = {}
        for name, label in BACKENDS:
            a = self.backend_menu.addAction(label)
            a.setCheckable(True)
            a.setData(name)
            group.addAction(a)
            self.backend_actions[name] = a
        self.label = QLabel()
        self.label.setContentsMargins(10, 0, 10, 0)
        self.label.setToolTip("Analysis settings that differ from the default (View menu)")
        window.statusBar().insertPermanentWidget(0, self.label)
        self.requested_backend: str | None = None
        self._sync()
        self.specials.toggled.connect(self._on_specials_toggled)
        self.start.toggled.connect(self._on_start_toggled)
        group.triggered.connect(lambda a: self.switch_backend(a.data()))
        # bound methods, not lambdas: the controller outlives the window, and a lambda it holds would keep the
        # window (and every result its views hold) alive
        window.resultShown.connect(self._on_window_result_shown)
        window.controller.modelLoaded.connect(self._on_controller_model_loaded)
        window.controller.modelLoadFailed.connect(self._on_controller_load_failed)

    def _sync(self) -> None:
        s = self.main.controller.settings
        for action, on in ((self.specials, s.parse_specials), (self.start, s.start_token)):
            action.blockSignals(True)
            action.setChecked(on)
            action.blockSignals(False)
        notes = (["special tokens parsed"] if s.parse_specials else []) + ([] if s.start_token else ["no start token"])
        self.label.setText(" · ".join(notes))
        self.label.setVisible(bool(notes))
        b = self.main.backend if self.main.backend in self.backend_actions else "torch"
        self.backend_actions[b].setChecked(True)

    def _on_window_result_shown(self, _result) -> None:
        self._sync()

    def _on_controller_load_failed(self, _message: str) -> None:
        self._sync()

    def _on_specials_toggled(self, on: bool) -> None:
        self.main.controller.set_settings(parse_specials=on)
        self._sync()

    def _on_start_toggled(self, on: bool) -> None:
        self.main.controller.set_settings(start_token=on)
        self._sync()

    # --- backend ------------------------------------------------------------------------------------------------
    def switch_backend(self, name: str) -> bool:
        """Reopen the current model with backend ``name`` ("torch", "onnx", "stored", "auto"); False (and a status
        message) when this model cannot be reopened."""
        from explainer.runtime.controller import engine_factory

        w = self.main
        opts = getattr(w.controller.factory, "options", None)
        if name == w.backend and opts is not None and opts.get("backend") == name:
            return True
        if opts is None or opts.get("demo"):
            why = "the demo model runs on torch only" if opts else "this model was not opened from a file"
            w.statusBar().showMessage(f"The backend cannot be changed: {why}.", 8000)
            self._sync()
            return False
        w.backend = self.requested_backend = name
        w.controller.load_model(engine_factory(opts["model_path"], device=opts["device"], backend=name))
        w.statusBar().showMessage(f"Restarting the model with {dict(BACKENDS)[name]}…", 8000)
        self._sync()
        return True

    def describe_start_token(self, info) -> None:
        """Name the loaded model's own start-of-text token in the menu (it differs between models)."""
        start = getattr(info, "start", None)
        if start is None:
            return
        if start.id is None:
            self.start.setText("Add a start-of-text token (this model has none)")
        else:
            self.start.setText(f"Add a start-of-text token: {start.label}")
        self.start.setEnabled(start.id is not None)
        self.start.setToolTip(start.description)

    def _on_controller_model_loaded(self, info) -> None:
        """Say which backend the model runs on after a switch, and the engine's notice whenever a backend fell
        back (e.g. ONNX Runtime missing: torch instead)."""
        self.describe_start_token(info)
        self._sync()
        wanted, self.requested_backend = self.requested_backend, None
        m, jobs = self.main.controller.model, getattr(self.main, "jobs", None)
        if m is None:
            return

        def report(notice, error) -> None:
            if notice and not error:
                self.main.statusBar().showMessage(str(notice), 15000)
            elif wanted is not None:
                label = dict(BACKENDS).get(m.backend, m.backend)
                self.main.statusBar().showMessage(f"The model now runs with {label}.", 10000)

        if getattr(m, "notice", None) is not None or jobs is None:  # the worker may pass it on itself
            report(getattr(m, "notice", None), "")
        else:
            jobs.call(_engine_notice, report)


def _engine_notice(engine):
    return getattr(engine, "notice", None)
