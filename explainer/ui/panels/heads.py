"""Head roles panel: which attention heads act as previous-token, induction, first-token (sink) or
duplicate-token heads, as a table of the top heads per role and a layers × heads badge grid.

Scores come from ``core.heads``: live on the current text (the repeat-based roles only where tokens repeat), or
from the reference test (random words written twice), which runs the model and so is started on a button in a
background thread through ``set_reference_runner(fn)``; ``set_reference_scores`` accepts precomputed scores.
Layers and heads are numbered from 1 on screen; ``headSelected`` uses 0-based indices like the attention panel.
"""

from __future__ import annotations

import math
import threading

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from explainer.core import heads as core_heads
from explainer.core.heads import ROLE_HELP, ROLE_LABELS, ROLES, HeadScores
from explainer.ui import theme as th
from explainer.ui.panels import _teach as tc
from explainer.ui.panels.base import Panel
from explainer.ui.widgets.badge_grid import BadgeGrid

TOP_N = 5
SHORT_LABELS = {
    "induction": "Induction",
    "previous_token": "Previous\ntoken",
    "first_token": "First token\n(sink)",
    "duplicate_token": "Duplicate\ntoken",
}
LIVE, REFERENCE = "live", "reference"


class _Relay(QObject):
    """Carries a background thread's result to the main thread (queued signal)."""

    done = Signal(object, str)


class HeadRolesPanel(Panel):
    title = "Head roles"
    explanation = (
        "Some attention heads do a recognisable job. Each head gets a score from 0 to 1 per role: the share of "
        "its attention that goes where that role looks. <b>Previous token</b>: the token just before. "
        "<b>First token</b>: the start of the text, an “attention sink” where heads park attention when nothing "
        "else is relevant. <b>Duplicate token</b>: earlier copies of the same token. <b>Induction</b>: after "
        "“A B … A”, the token B that followed the earlier A — how a model continues a pattern from the prompt "
        "(in-context learning). Scores come from your text (the last two only where tokens repeat) or from the "
        "reference test: 50 random words written twice. Click a badge to open that head."
    )
    headSelected = Signal(int, int)  # (layer, head), 0-based

    def __init__(self, parent: QWidget | None = None, reference_runner=None):
        super().__init__(parent)
        self.role = "induction"
        self.source = LIVE
        self.reference: HeadScores | None = None
        self._runner = reference_runner
        self._running = False
        self._live: HeadScores | None = None
        self._live_key = None
        self._relay = _Relay()
        self._relay.done.connect(self._on_reference_done)

        bar = QHBoxLayout()
        self.role_box = QComboBox()
        for r in ROLES:
            self.role_box.addItem(ROLE_LABELS[r], r)
        self.source_box = QComboBox()
        self.source_box.addItem("this text", LIVE)
        self.source_box.addItem("reference test (random words ×2)", REFERENCE)
        self.run_button = QPushButton("Run the reference test")
        self.run_button.setToolTip(core_heads.method_text())
        self.status = QLabel()
        self.status.setTextFormat(Qt.RichText)
        for w in (QLabel("Role:"), self.role_box, QLabel("Scores from:"), self.source_box, self.run_button):
            bar.addWidget(w)
        bar.addStretch(1)
        self.body.addLayout(bar)

        self.grid = BadgeGrid()
        self.grid.tooltip_for = self._tooltip
        self.table = QTableWidget(TOP_N, len(ROLES))
        tc.style_table(self.table)
        self.table.setHorizontalHeaderLabels([SHORT_LABELS[r] for r in ROLES])
        self.table.setVerticalHeaderLabels([f"{i + 1}." for i in range(TOP_N)])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.table.setMinimumWidth(400)
        self.table.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Maximum)
        self.table.setSelectionMode(QTableWidget.SingleSelection)
        self.table.setSelectionBehavior(QTableWidget.SelectItems)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.RichText)
        self.role_note = QLabel()
        self.role_note.setWordWrap(True)
        self.role_note.setTextFormat(Qt.RichText)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(QLabel("<b>Top heads per role</b> (layer L, head H: score)"))
        rl.addWidget(self.table)
        rl.addWidget(self.role_note)
        rl.addWidget(self.note)
        rl.addWidget(self.status)
        rl.addStretch(1)
        split = QSplitter(Qt.Horizontal)
        split.addWidget(self.grid)
        split.addWidget(right)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        self.body.addWidget(split, 1)

        self.role_box.currentIndexChanged.connect(self._on_role_changed)
        self.source_box.currentIndexChanged.connect(self._on_source_changed)
        self.run_button.clicked.connect(self.run_reference)
        self.grid.headClicked.connect(self._on_grid_clicked)
        self.table.cellClicked.connect(self._on_table_clicked)

    # --- API ----------------------------------------------------------------------------------------------------
    def set_reference_runner(self, fn) -> None:
        """``fn() -> HeadScores`` (e.g. ``lambda: heads.cached_reference_scores(engine)``); it runs on a background
        thread when the button is pressed."""
        self._runner = fn
        self._update_controls()

    def set_reference_scores(self, scores: HeadScores) -> None:
        self.reference = scores
        self.set_source(REFERENCE)
        self.refresh()

    def set_role(self, role: str) -> None:
        self.role_box.setCurrentIndex(ROLES.index(role))

    def set_source(self, source: str) -> None:
        self.source_box.setCurrentIndex(0 if source == LIVE else 1)

    def select_head(self, layer: int, head: int) -> None:
        self.grid.selected = (layer, head)
        self.grid.update()

    def current_scores(self) -> HeadScores | None:
        if self.source == REFERENCE:
            return self.reference
        r = self.result
        if r is None or r.n_tokens == 0:
            return None
        key = (id(r), r.n_tokens)
        if key != self._live_key:
            self._live, self._live_key = core_heads.scores_from_result(r), key
        return self._live

    def run_reference(self) -> None:
        if self._runner is None or self._running:
            return
        self._running = True
        self._update_controls()
        runner, relay = self._runner, self._relay

        def work():
            try:
                relay.done.emit(runner(), "")
            except Exception as e:  # noqa: BLE001 - shown in the panel
                relay.done.emit(None, f"{type(e).__name__}: {e}")

        threading.Thread(target=work, name="head-roles-reference", daemon=True).start()

    @property
    def running(self) -> bool:
        return self._running

    # --- drawing -------------------------------------------------------------------------------------------------
    def set_theme(self, theme: th.Theme) -> None:
        self.grid.theme = theme
        super().set_theme(theme)

    def refresh(self) -> None:
        self._update_controls()
        scores = self.current_scores()
        self.role_note.setText(f"<b>{ROLE_LABELS[self.role]}</b>: {tc.esc(ROLE_HELP[self.role])}.")
        if scores is None:
            self.grid.set_scores(np.zeros((0, 0)))
            self.table.clearContents()
            self.note.setText(
                "<i>Run the reference test to see its scores.</i>"
                if self.source == REFERENCE
                else "<i>Waiting for the model…</i>"
            )
            return
        self.grid.set_scores(scores.role(self.role))
        self._fill_table(scores)
        self.note.setText(self._note(scores))

    def _fill_table(self, scores: HeadScores) -> None:
        self.table.clearContents()
        bold = QFont(self.table.font())
        bold.setBold(True)
        for c, role in enumerate(ROLES):
            for r, (layer, head, s) in enumerate(scores.top(role, TOP_N)):
                item = QTableWidgetItem(f"L{layer + 1} H{head + 1}  {s:.2f}")
                item.setData(Qt.UserRole, (layer, head))
                item.setBackground(tc.shade(th.ACCENTS[0], 0.45 * s, self.theme.background))
                item.setToolTip(self._tooltip(layer, head))
                if role == self.role:
                    item.setFont(bold)
                self.table.setItem(r, c, item)
            if not scores.top(role, 1):
                item = QTableWidgetItem("needs repeats")
                item.setForeground(QColor(self.theme.muted))
                self.table.setItem(0, c, item)
        header = self.table.horizontalHeader().sizeHint().height()
        h = header + TOP_N * self.table.verticalHeader().defaultSectionSize() + 2 * self.table.frameWidth()
        self.table.setFixedHeight(h)

    def _note(self, scores: HeadScores) -> str:
        s = scores.role(self.role)
        if self.source == REFERENCE:
            n, k = scores.length or core_heads.DEFAULT_LENGTH, len(scores.seeds) or core_heads.DEFAULT_SEEDS
            seeds = f"averaged over {k} random seeds" if k > 1 else "one random seed"
            return (
                f"Reference test: {n} random ordinary words, written twice after the start token, {seeds}. "
                "In the second copy every word has been seen before, so an induction head looks at the word "
                "that came next last time."
            )
        if np.isnan(s).all():
            return (
                "No token repeats in this text, so this role has no score here. Type a sentence twice (or "
                "switch to the reference test) to see induction and duplicate-token heads."
            )
        n = scores.counts.get(self.role, 0)
        what = "tokens" if self.role in ("previous_token", "first_token") else "repeated tokens"
        return f"Scores on this text, averaged over {n} {what}. Short texts give noisy scores."

    def _tooltip(self, layer: int, head: int) -> str:
        scores = self.current_scores()
        if scores is None:
            return ""
        rows = [f"<b>layer {layer + 1}, head {head + 1}</b>"]
        for role in ROLES:
            v = float(scores.role(role)[layer, head])
            rows.append(f"{ROLE_LABELS[role]}: {'—' if math.isnan(v) else f'{v:.2f}'}")
        rows.append("click to open this head")
        return "<br>".join(rows)

    def _update_controls(self) -> None:
        self.run_button.setVisible(self._runner is not None and self.reference is None)
        self.run_button.setEnabled(not self._running)
        self.run_button.setText("Running the reference test…" if self._running else "Run the reference test")

    # --- slots ---------------------------------------------------------------------------------------------------
    def _on_role_changed(self, index: int) -> None:
        self.role = ROLES[index]
        self.refresh()

    def _on_source_changed(self, index: int) -> None:
        self.source = self.source_box.itemData(index)
        if self.source == REFERENCE and self.reference is None:
            self.run_reference()
        self.refresh()

    def _on_reference_done(self, scores, error: str) -> None:
        self._running = False
        if scores is None:
            self.status.setText(f"<span style='color:{th.HIGHLIGHT}'>The reference test failed: {tc.esc(error)}</span>")
        else:
            self.status.setText("")
            self.reference = scores
            self.set_source(REFERENCE)
        self.refresh()

    def _on_grid_clicked(self, layer: int, head: int) -> None:
        self.select_head(layer, head)
        self.headSelected.emit(layer, head)

    def _on_table_clicked(self, row: int, col: int) -> None:
        item = self.table.item(row, col)
        if item is not None and item.data(Qt.UserRole) is not None:
            self.set_role(ROLES[col])
            self._on_grid_clicked(*item.data(Qt.UserRole))

    # --- scenes and export -----------------------------------------------------------------------------------
    def scene_state(self) -> dict:
        return {"role": self.role, "source": self.source}

    def apply_scene_state(self, state: dict) -> None:
        if state.get("role") in ROLES:
            self.set_role(state["role"])
        if state.get("source") in (LIVE, REFERENCE):
            self.set_source(state["source"])

    def export_data(self) -> dict:
        scores = self.current_scores()
        if scores is None:
            return {"matrix": np.zeros((0, 0)), "role": self.role}
        m = scores.role(self.role)
        return {
            "matrix": m,
            "row_labels": [f"layer {i + 1}" for i in range(m.shape[0])],
            "col_labels": [f"head {j + 1}" for j in range(m.shape[1])],
            "role": self.role,
            "source": self.source,
        }

    def caption_extra(self) -> str:
        src = "this text" if self.source == LIVE else "reference test"
        return f"head roles: {ROLE_LABELS[self.role]} ({src})"


def _demo_panel() -> HeadRolesPanel:
    """For ``python -m``: the reference test runs on its own copy of the same model, in the background."""
    import sys

    def runner():
        from explainer.core.engine import Engine, demo_engine

        return core_heads.cached_reference_scores(Engine() if "--real" in sys.argv else demo_engine())

    return HeadRolesPanel(reference_runner=runner)


_demo_panel.__module__ = "explainer.ui.panels.heads"  # the name run_alone shows in its usage line

if __name__ == "__main__":
    from explainer.ui.panels._run_alone import run_alone

    raise SystemExit(
        run_alone(
            _demo_panel,
            "The cat sat on the mat. The cat sat on the mat. Then the dog sat on the cat, and the cat sat on the dog.",
        )
    )
