"""Two texts: a clean and a corrupted version of one prompt, compared side by side and traced by activation
patching ("where in the network is 'France' carried to the last token?").

Both texts are analysed on the model's thread (with the window's analysis settings and knocked-out heads) when
the view is shown with texts or settings it has not run yet (a scene opening it, a knock-out changed), and when
"Compare and patch" is pressed (or Enter in a field). The patching grid
(``core.patching.patch``) fills row by row while it runs, with a progress bar and Cancel; the window never
waits for it. Texts of different token lengths: the sentence that says both counts, instead of a grid.
"""

from __future__ import annotations

import html
import logging
import threading

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QGridLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from explainer.runtime.jobs import CANCELLED
from explainer.ui import theme as th
from explainer.ui.panels.base import Panel
from explainer.ui.panels.next_token import token_label
from explainer.ui.panels.why_compare import CompareView, next_distributions
from explainer.ui.panels.why_patch import PatchHeatmap, pair_label

log = logging.getLogger(__name__)
DEFAULT_CLEAN, DEFAULT_CORRUPT = "The capital of France is", "The capital of Italy is"
TABS = ("compare", "patching")


class TwoTextsPanel(Panel):
    title = "Two texts: compare and patch"
    explanation = (
        "A <b>clean</b> text and a <b>corrupted</b> one that differ in a word. <b>Compare</b>: their next-token "
        "probabilities, each token's surprisal and one head's attention, side by side. <b>Patching</b>: each cell "
        "runs the corrupted text again with the clean run's residual stream pasted in after one layer at one "
        "position, and shows P(the clean answer): bright cells are where the difference is carried."
    )
    details = (
        "Activation patching needs two texts of the same token length. Row l, column p: the corrupted run with the "
        "hidden state after layer l at position p replaced by the clean run's; the colour is the probability of "
        "the clean run's top next token at the end. Early layers usually carry it at the changed word, late "
        "layers at the last token: the path the information takes. Knocked-out heads stay knocked out here too."
    )

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.window = None  # set by attach(); the jobs and analysis settings come from it
        self.patching = None  # core Patching once finished
        self.clean_labels: list[str] = []
        self.corrupt_labels: list[str] = []
        self._job = None
        self._compare_job = None
        self._ran_for: tuple | None = None  # (clean, corrupt, settings) of the last run
        self._stop = threading.Event()  # Cancel of the run in progress (also before its job handle exists)
        fields = QGridLayout()
        self.clean_edit, self.corrupt_edit = QLineEdit(DEFAULT_CLEAN), QLineEdit(DEFAULT_CORRUPT)
        self.clean_edit.setToolTip("The clean text: its top next token is the answer patching looks for")
        self.corrupt_edit.setToolTip("The corrupted text: the same prompt with one word changed")
        self.run_button = QPushButton("Compare and patch")
        self.run_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.use_editor = QPushButton("Clean = editor's text")
        self.use_editor.setToolTip("Copy the editor's text into the clean field")
        fields.addWidget(QLabel("Clean:"), 0, 0)
        fields.addWidget(self.clean_edit, 0, 1)
        fields.addWidget(self.use_editor, 0, 2)
        fields.addWidget(QLabel("Corrupted:"), 1, 0)
        fields.addWidget(self.corrupt_edit, 1, 1)
        fields.addWidget(self.run_button, 1, 2)
        self.body.addLayout(fields)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.compare = CompareView()
        patch_page = QWidget()
        pl = QVBoxLayout(patch_page)
        pl.setContentsMargins(0, 4, 0, 0)
        prog = QGridLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.status = QLabel("Press “Compare and patch”.")
        self.status.setTextFormat(Qt.RichText)
        self.status.setWordWrap(True)
        prog.addWidget(self.progress, 0, 0)
        prog.addWidget(self.cancel_button, 0, 1)
        prog.addWidget(self.status, 1, 0, 1, 2)
        self._show_running(False)  # the bar and Cancel are there while a run is (the grid gets their room after)
        pl.addLayout(prog)
        self.heatmap = PatchHeatmap()
        pl.addWidget(self.heatmap, 1)
        self.readout = QLabel(" ")
        self.readout.setTextFormat(Qt.RichText)
        pl.addWidget(self.readout)
        self.tabs.addTab(self.compare, "Compare")
        self.tabs.addTab(patch_page, "Where is it carried? (patching)")
        self.body.addWidget(self.tabs, 1)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.clean_edit.returnPressed.connect(self.run)
        self.corrupt_edit.returnPressed.connect(self.run)
        self.use_editor.clicked.connect(self._on_use_editor_clicked)
        self.heatmap.cellHovered.connect(self._on_heatmap_hovered)

    # --- wiring -----------------------------------------------------------------------------------------------
    def attach(self, window) -> None:
        self.window = window
        window.view.headChanged.connect(self.compare.set_head)
        self.compare.set_head(window.view.layer, window.view.head)

    def set_theme(self, theme: th.Theme) -> None:
        super().set_theme(theme)
        self.compare.set_theme(theme)
        self.heatmap.set_theme(theme)
        self.heatmap._draw()

    def set_result(self, result) -> None:
        """The view is on screen with the newest analysis: run the two texts if they (or the settings, e.g. the
        knocked-out heads) changed since the last run."""
        super().set_result(result)
        self._run_if_due()

    def _run_if_due(self) -> None:
        """Run if the texts or settings changed since the last run, once the window shows the newest analysis
        (a run started while a newer text waits would take the model's thread before it)."""
        w = self.window
        if w is not None and self.result is not None and not w.controller.busy and self._ran_for != self._run_key():
            self.run()

    def hideEvent(self, event) -> None:
        """Another view took the screen: a run in progress stops (patching holds the model's thread for many
        seconds, and the next view's analysis would wait behind it); the view runs again when shown."""
        if not event.spontaneous() and self.busy:
            self.cancel()
            self._ran_for = None
        super().hideEvent(event)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._run_if_due()

    def _run_key(self) -> tuple:
        return (self.clean_edit.text(), self.corrupt_edit.text(), self.window.controller.settings)

    @property
    def busy(self) -> bool:
        """A run is in progress (the comparison or the patching)."""
        return any(job is not None and not job.finished for job in (self._compare_job, self._job))

    # --- running ----------------------------------------------------------------------------------------------
    def run(self) -> None:
        """Analyse both texts (Compare), then fill the patching grid; a run in progress is cancelled first."""
        w = self.window
        if w is None or w.controller.model is None:
            self.status.setText("The model is not loaded yet.")
            return
        self.cancel()
        self._ran_for = self._run_key()
        self._stop = stop = threading.Event()
        from explainer.core.errors import Cancelled

        s = w.controller.settings
        clean, corrupt = self.clean_edit.text(), self.corrupt_edit.text()
        opts = dict(start_token=s.start_token, max_tokens=s.max_tokens, parse_specials=s.parse_specials)
        ablated = tuple(s.ablated)

        def compare(engine, job):
            kw = dict(opts, top_k=s.top_k, **({"ablated": ablated} if ablated else {}))
            pair = engine.analyze(clean, **kw), engine.analyze(corrupt, **kw)
            return pair, next_distributions(*pair)  # (here: the window's thread only draws)

        def patching(engine, job):
            from explainer.core.patching import patch  # (torch: imported in the model's thread, not the window's)

            def report(message, fraction, item=None):
                if stop.is_set():
                    raise Cancelled()
                job.report(message, fraction, item)

            clean_tokens = engine.tokens_for(clean, **opts)[1]
            corrupt_tokens = engine.tokens_for(corrupt, **opts)[1]
            # the start token named as every panel names it (⟨start⟩), not by its vocabulary text
            report("start", 0.0, ("tokens", [t.label for t in clean_tokens], [t.label for t in corrupt_tokens]))
            return patch(
                engine,
                [t.id for t in clean_tokens],
                [t.id for t in corrupt_tokens],
                ablated=ablated,
                progress=report,
                cancelled=lambda: stop.is_set() or job.cancelled(),
                on_layer=lambda layer, row: report("", -1.0, ("row", layer, row)),
            )

        self.patching = None
        self.heatmap.start(0, [], 1.0)  # never the previous texts' grid under the new ones
        self.progress.setValue(0)
        self.status.setText("Comparing the two texts…")
        self.readout.setText(" ")
        self._show_running(True)
        self._compare_job = w.jobs.start(compare, self._on_compare_done)
        self._job = w.jobs.start(patching, self._on_patch_done, self._on_patch_progress)

    def _show_running(self, running: bool) -> None:
        self.cancel_button.setEnabled(running)
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)

    def cancel(self) -> None:
        self._stop.set()
        for job in (self._compare_job, self._job):
            if job is not None and not job.finished:
                job.cancel()

    def _on_compare_done(self, pair, error: str) -> None:
        if error:
            if error != CANCELLED:
                self.status.setText(f"<span style='color:{th.HIGHLIGHT}'>{html.escape(error)}</span>")
            return
        tok = self.window.controller.tokenizer
        self.compare.decode = tok.token_bytes if tok is not None else None
        (clean, corrupt), probs = pair
        self.compare.set_pair(clean, corrupt, probs)

    def _on_patch_progress(self, message: str, fraction: float, item) -> None:
        if isinstance(item, tuple) and item[0] == "tokens":
            self.clean_labels, self.corrupt_labels = item[1], item[2]
            if len(item[1]) == len(item[2]):
                n_layers = self.window.controller.model.info.n_layers
                self.heatmap.start(n_layers, [pair_label(a, b) for a, b in zip(item[1], item[2])], 1e-6)
            self.status.setText("Patching: running the clean and corrupted texts…")
        elif isinstance(item, tuple) and item[0] == "row":
            self.heatmap.set_row(item[1], item[2])
        if fraction >= 0:
            self.progress.setValue(int(1000 * fraction))
            if message and message != "start":
                self.status.setText(
                    f"{html.escape(message)} ({self.heatmap.rows_filled} of {len(self.heatmap.grid)} layers done)"
                )

    def _on_patch_done(self, result, error: str) -> None:
        self._show_running(False)
        if error == CANCELLED:
            self.status.setText(
                f"Cancelled: {self.heatmap.rows_filled} of {len(self.heatmap.grid)} layers were done (shown)."
            )
            return
        if error:
            self.heatmap.start(0, [], 1.0)
            self.status.setText(f"<span style='color:{th.HIGHLIGHT}'>{html.escape(error)}</span>")
            return
        self.patching = result
        self.heatmap.set_grid(result.prob)
        self.progress.setValue(1000)
        target = self._target_label()
        layer, pos = np.unravel_index(int(np.argmax(result.prob)), result.prob.shape)
        self.status.setText(
            f"P(“{html.escape(target)}”): clean {100 * result.clean_prob:.1f} %, corrupted "
            f"{100 * result.corrupt_prob:.1f} %. Colour: 0 (dark) to {100 * self.heatmap.vmax:.1f} % (bright). "
            f"Highest after layer {layer + 1} at “{html.escape(self.heatmap.labels[pos])}”: "
            f"{100 * result.prob[layer, pos]:.1f} %."
        )

    def _target_label(self) -> str:
        tok = self.window.controller.tokenizer if self.window else None
        if self.patching is None:
            return ""
        return token_label(tok.token_bytes(self.patching.target)) if tok is not None else f"#{self.patching.target}"

    def _on_heatmap_hovered(self, layer: int, pos: int) -> None:
        g = self.heatmap.grid
        if layer < 0 or np.isnan(g[layer, pos]):
            self.readout.setText(" ")
            return
        target = self._target_label() or "the clean answer"
        self.readout.setText(
            f"After layer <b>{layer + 1}</b>, position {pos} (“{html.escape(self.heatmap.labels[pos])}”) patched: "
            f"P(“{html.escape(target)}”) = <b>{100 * g[layer, pos]:.2f} %</b>"
        )

    def _on_use_editor_clicked(self) -> None:
        if self.window is not None:
            self.clean_edit.setText(self.window.editor.toPlainText())

    # --- scenes and export --------------------------------------------------------------------------------------
    def scene_state(self) -> dict:
        return {
            "clean": self.clean_edit.text(),
            "corrupt": self.corrupt_edit.text(),
            "tab": TABS[self.tabs.currentIndex()],
        }

    def apply_scene_state(self, state: dict) -> None:
        for key, edit in (("clean", self.clean_edit), ("corrupt", self.corrupt_edit)):
            if isinstance(state.get(key), str):
                edit.setText(state[key])  # run when the view is shown
        if state.get("tab") in TABS:
            self.tabs.setCurrentIndex(TABS.index(state["tab"]))

    def export_plot(self) -> QWidget:
        return self.heatmap if self.tabs.currentIndex() == 1 else self.compare

    def export_data(self) -> dict:
        if self.tabs.currentIndex() == 0:
            return self.compare.export_data()
        p = self.patching
        if p is None:
            return {"rows": []}
        return {
            "matrix": np.asarray(p.prob),
            "row_labels": [f"layer {i + 1}" for i in range(p.prob.shape[0])],
            "col_labels": self.heatmap.labels,
            "clean": self.clean_edit.text(),
            "corrupt": self.corrupt_edit.text(),
            "clean_tokens": self.clean_labels,
            "corrupt_tokens": self.corrupt_labels,
            "target": {"id": int(p.target), "text": self._target_label()},
            "clean_prob": p.clean_prob,
            "corrupt_prob": p.corrupt_prob,
            "ablated": [[la + 1, h + 1] for la, h in p.ablated],
        }

    def caption_extra(self) -> str:
        if self.tabs.currentIndex() == 1:
            return f"activation patching: clean “{self.clean_edit.text()}”, corrupted “{self.corrupt_edit.text()}”"
        return f"compare: “{self.clean_edit.text()}” vs “{self.corrupt_edit.text()}”"
