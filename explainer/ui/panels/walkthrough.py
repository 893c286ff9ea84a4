"""Attention walk-through panel: one head's computation for one query token, with the model's own numbers.

Steps (``core.walkthrough``): normalise the residual, project to query / key / value, rotate by position (RoPE;
a model with learned positions, GPT-2, has them in the residual already),
score every key (q·k, ÷ √d_k), mask the future, softmax, and sum the values. The table lists every key the
query can see with its numbers and a bar for the softmax weight; later keys are summarised as masked.
``set_head(layer, head)`` (0-based) picks the head; the query follows ``select_position`` (default: last token).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from explainer.core.walkthrough import Walkthrough, walkthrough
from explainer.ui import theme as th
from explainer.ui.panels import _teach as tc
from explainer.ui.panels.base import Panel, vertical_scroll

COLUMNS = ("key token", "q·k", "÷ √d", "after mask", "softmax weight")
N_DIMS_SHOWN = 6


class WalkthroughPanel(Panel):
    title = "Attention step by step"
    explanation_template = (
        "One attention head, worked through for one token (the <i>query</i>) with the model's real numbers. "
        "Each token's vector is normalised and multiplied by three learned matrices: a <b>query</b> q (what "
        "this token is looking for), a <b>key</b> k per token (what it offers) and a <b>value</b> v per token "
        "(what it passes on). The score of each key is q·k, divided by √d<sub>k</sub> (d<sub>k</sub> = {dk}) to "
        "keep the numbers moderate. Tokens after the query are masked (−∞): the model only looks left. Softmax "
        "turns the scores into weights that sum to 1, and the head's output is the weighted sum of the values. "
        "Click a token elsewhere to make it the query."
    )
    explanation = explanation_template.format(dk=64)
    headSelected = Signal(int, int)  # (layer, head), 0-based, when changed here

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.layer = 0
        self.head = 0
        self.walk: Walkthrough | None = None

        bar = QHBoxLayout()
        self.layer_spin = QSpinBox(prefix="Layer ", minimum=1, maximum=1)
        self.head_spin = QSpinBox(prefix="Head ", minimum=1, maximum=1)
        self.query_box = QComboBox()
        self.query_box.setMinimumContentsLength(14)
        self.query_box.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        for w in (self.layer_spin, self.head_spin, QLabel("Query token:"), self.query_box):
            bar.addWidget(w)
        bar.addStretch(1)
        self.body.addLayout(bar)

        self.steps = QLabel()
        self.steps.setWordWrap(True)
        self.steps.setTextFormat(Qt.RichText)
        self.table = QTableWidget(0, len(COLUMNS))
        tc.style_table(self.table)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        hh = self.table.horizontalHeader()
        for c in range(1, len(COLUMNS) - 1):
            hh.setSectionResizeMode(c, QHeaderView.ResizeToContents)
        hh.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.Stretch)
        hh.setMinimumSectionSize(64)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.table.setMinimumWidth(520)
        self.bars = tc.BarDelegate(th.ACCENTS[0], self.table)
        self.table.setItemDelegateForColumn(len(COLUMNS) - 1, self.bars)
        self.rope = QLabel()
        self.rope.setWordWrap(True)
        self.rope.setTextFormat(Qt.RichText)
        self.output = QLabel()
        self.output.setWordWrap(True)
        self.output.setTextFormat(Qt.RichText)
        side = QWidget()
        sl = QVBoxLayout(side)
        sl.setContentsMargins(4, 0, 0, 0)
        sl.setSpacing(12)
        for w in (self.steps, self.rope, self.output):
            sl.addWidget(w)
        sl.addStretch(1)
        scroll = vertical_scroll(side)
        scroll.setMinimumWidth(290)
        split = QSplitter(Qt.Horizontal)
        split.addWidget(self.table)
        split.addWidget(scroll)
        split.setStretchFactor(0, 5)
        split.setStretchFactor(1, 4)
        split.setChildrenCollapsible(False)
        self.body.addWidget(split, 1)

        self.layer_spin.valueChanged.connect(self._on_spin_changed)
        self.head_spin.valueChanged.connect(self._on_spin_changed)
        self.query_box.activated.connect(self._on_query_chosen)
        self.table.cellClicked.connect(self._on_row_clicked)

    # --- API --------------------------------------------------------------------------------------------------------
    def set_head(self, layer: int, head: int) -> None:
        """Show head ``head`` (0-based) of layer ``layer`` (0-based)."""
        self.layer, self.head = int(layer), int(head)
        self.refresh()

    select_head = set_head  # the attention panel's name for the same thing

    @property
    def query(self) -> int:
        return self.focus_position

    def select_position(self, position: int) -> None:
        super().select_position(position)
        self.refresh()

    def displayed_weights(self) -> np.ndarray:
        """The softmax weights shown in the table, keys 0..query (what the tests compare with the model)."""
        return np.array([self.table.item(r, 4).data(Qt.UserRole) for r in range(self.query + 1)], np.float64)

    def set_theme(self, theme: th.Theme) -> None:
        self.bars.colour = th.ACCENTS[5] if theme.is_dark else th.ACCENTS[0]
        super().set_theme(theme)

    # --- drawing ----------------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        r = self.result
        if r is None or r.n_tokens == 0:
            self.walk = None
            self.table.setRowCount(0)
            self.steps.setText("<i>Waiting for the model…</i>")
            self.rope.setText("")
            self.output.setText("")
            return
        info = r.model
        self._help.setText(self.explanation_template.format(dk=info.d_head))
        self.layer = min(self.layer, info.n_layers - 1)
        self.head = min(self.head, info.n_heads - 1)
        self._sync_controls()
        if r.weights is None:
            self.walk = None
            self.table.setRowCount(0)
            self.steps.setText("This result carries no model weights, so the steps cannot be recomputed.")
            self.rope.setText("")
            self.output.setText("")
            return
        self.walk = w = walkthrough(r, self.layer, self.head, self.query)
        self._fill_table(w)
        self._fill_text(w)

    def _sync_controls(self) -> None:
        r, info = self.result, self.result.model
        widgets = (self.layer_spin, self.head_spin, self.query_box)
        for x in widgets:
            x.blockSignals(True)
        self.layer_spin.setMaximum(info.n_layers)
        self.head_spin.setMaximum(info.n_heads)
        self.layer_spin.setValue(self.layer + 1)
        self.head_spin.setValue(self.head + 1)
        labels = [f"{i}: {tc.position_label(r, i)}" for i in range(r.n_tokens)]
        if [self.query_box.itemText(i) for i in range(self.query_box.count())] != labels:
            self.query_box.clear()
            self.query_box.addItems(labels)
        self.query_box.setCurrentIndex(self.query)
        for x in widgets:
            x.blockSignals(False)

    def _fill_table(self, w: Walkthrough) -> None:
        r, q = self.result, w.query
        later = r.n_tokens - 1 - q
        self.table.setRowCount(q + 1 + (1 if later else 0))
        best = int(np.argmax(w.weights))
        bold = QFont(self.table.font())
        bold.setBold(True)
        muted = QColor(self.theme.muted)
        right = Qt.AlignRight | Qt.AlignVCenter
        labels = []
        for k in range(q + 1):
            labels.append(str(k))
            cells = [
                tc.position_label(r, k) + ("  ← query" if k == q else ""),
                tc.num(w.scores[k]),
                tc.num(w.scaled[k]),
                tc.num(w.masked[k]),
                f"{w.weights[k]:.3f}",
            ]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c > 0:
                    item.setTextAlignment(right)
                if k == best:
                    item.setFont(bold)
                self.table.setItem(k, c, item)
            self.table.item(k, 4).setData(tc.BAR_ROLE, float(w.weights[k]))
            self.table.item(k, 4).setData(Qt.UserRole, float(w.weights[k]))
            self.table.item(k, 3).setForeground(muted)
            self.table.item(k, 3).setToolTip("unchanged: this key is at or before the query, so it is not masked")
        if later:
            labels.append(f"{q + 1}–{r.n_tokens - 1}" if later > 1 else str(q + 1))
            cells = [f"{later} later token{'s' if later > 1 else ''} (future)", "", "", "−∞", "0  (masked)"]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setForeground(muted)
                if c > 0:
                    item.setTextAlignment(right)
                self.table.setItem(q + 1, c, item)
            self.table.item(q + 1, 0).setToolTip(
                "The causal mask: a GPT-style model may not look at tokens after the "
                "query, so their scores become −∞ and their weights 0."
            )
        self.table.setVerticalHeaderLabels(labels)
        self.table.resizeColumnToContents(0)
        self.table.setColumnWidth(0, min(self.table.columnWidth(0), 200))
        self.table.scrollToItem(self.table.item(q, 0))

    def _fill_text(self, w: Walkthrough) -> None:
        r, info = self.result, self.result.model
        group = info.n_heads // info.n_kv_heads
        shares = f"query heads {w.kv_head * group + 1}–{(w.kv_head + 1) * group}" if group > 1 else "only this head"
        qtok = tc.esc(tc.position_label(r, w.query))
        top = int(np.argmax(w.weights))
        rotary = w.inv_freq.size > 0
        norm = "LayerNorm: subtract the mean, divide by the spread" if info.norm == "layer" else "RMSNorm"
        bias = " + b" if "bq" in r.weights.layer(w.layer) else ""  # Qwen2 and GPT-2 add a bias
        self.steps.setText(
            f"<b>Layer {w.layer + 1}, head {w.head + 1}, query “{qtok}” (position {w.query})</b><br>"
            f"1. Normalise each token's {info.d_model}-number vector entering the layer ({norm}).<br>"
            f"2. q = W<sub>Q</sub>·x{bias}: {w.d_head} numbers for the query. k = W<sub>K</sub>·x{bias} and "
            f"v = W<sub>V</sub>·x{bias} for every token, from key/value head {w.kv_head + 1} (shared by {shares}).<br>"
            + (
                "3. Rotate q and each k by their positions (below).<br>"
                if rotary
                else "3. Nothing rotates: the position is already in x (below).<br>"
            )
            + f"4. Score = q·k, divided by √{w.d_head} = {w.scale:g}; later tokens masked to −∞.<br>"
            f"5. Softmax → weights summing to 1. The largest here: <b>{w.weights[top]:.2f}</b> on "
            f"“{tc.esc(tc.position_label(r, top))}” (position {top})."
        )
        pos = w.query
        if not rotary:
            self.rope.setText(
                "<b>Word order: learned positions.</b> This model does not rotate q and k. Before the first layer, "
                f"a learned position vector (row {pos} of a table of {info.context_length:,} rows, trained like "
                "the word embeddings) is added to each token's embedding, so where a token stands is part of its "
                "vector x from the start, and q·k can depend on both tokens' positions, not only on their distance. "
                f"The table ends at position {info.context_length - 1:,}: this model cannot read longer texts. "
                f"q: {_vec(w.q, 3)}, length ‖q‖ = {tc.num(np.linalg.norm(w.q))}."
            )
            return self._fill_output(w)
        slow = w.angle(pos)[-1]
        self.rope.setText(
            "<b>Word order: rotary positions (RoPE).</b> No position vector is added. Before the dot product, q and "
            f"every k are rotated: their {w.d_head} numbers form {w.d_head // 2} pairs, each turned by an angle "
            "proportional to the token's position (some pairs turn fast, some slowly). As both are rotated, q·k "
            "depends on how far apart the two tokens are, not on where they are. "
            f"At position {pos} the fastest pair has turned {tc.num(w.angle(pos)[0], 1)} rad, the slowest "
            f"{slow:.2g} rad; the length stays ‖q‖ = {tc.num(np.linalg.norm(w.q))}. "
            f"q before: {_vec(w.q_pre, 3)}, after: {_vec(w.q, 3)}."
        )
        self._fill_output(w)

    def _fill_output(self, w: Walkthrough) -> None:
        info = self.result.model
        self.output.setText(
            f"<b>Output</b> = Σ weight × v: {w.d_head} numbers, length {tc.num(np.linalg.norm(w.output))}. "
            f"First {N_DIMS_SHOWN}: {_vec(w.output, N_DIMS_SHOWN)}. Next, W<sub>O</sub> mixes the {info.n_heads} "
            f"heads' outputs back into the {info.d_model}-number residual stream."
        )

    # --- slots ------------------------------------------------------------------------------------------------------
    def _on_spin_changed(self, _value: int) -> None:
        self.layer, self.head = self.layer_spin.value() - 1, self.head_spin.value() - 1
        self.refresh()
        self.headSelected.emit(self.layer, self.head)

    def _on_query_chosen(self, index: int) -> None:
        self.selected_position = index
        self.refresh()
        self.tokenSelected.emit(index)

    def _on_row_clicked(self, row: int, _col: int) -> None:
        if 0 <= row <= self.query:
            self.tokenHovered.emit(row)

    # --- scenes and export -----------------------------------------------------------------------------------
    def scene_state(self) -> dict:
        return {"layer": self.layer, "head": self.head}

    def apply_scene_state(self, state: dict) -> None:
        layer, head = state.get("layer", self.layer), state.get("head", self.head)
        if all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (layer, head)):
            self.set_head(layer, head)

    def export_data(self) -> dict:
        w, r = self.walk, self.result
        if w is None:
            return {"rows": []}
        rows = [
            {
                "key_position": k,
                "key_token_text": r.tokens[k].text,
                "key_token_label": tc.position_label(r, k),
                "q_dot_k": float(w.scores[k]),
                "scaled": float(w.scaled[k]),
                "weight": float(w.weights[k]),
            }
            for k in range(w.query + 1)
        ]
        return {
            "rows": rows,
            "layer": w.layer + 1,
            "head": w.head + 1,
            "query_position": w.query,
            "query_token_text": r.tokens[w.query].text,
            "query_token_label": tc.position_label(r, w.query),
            "output": w.output,
        }

    def caption_extra(self) -> str:
        r, q = self.result, self.query
        tok = f", query “{tc.position_label(r, q)}”" if q >= 0 else ""
        return f"attention step by step, layer {self.layer + 1}, head {self.head + 1}{tok}"


def _vec(v: np.ndarray, n: int) -> str:
    return "[" + ", ".join(tc.num(x) for x in v[:n]) + (", …]" if v.size > n else "]")


if __name__ == "__main__":
    from explainer.ui.panels._run_alone import run_alone

    raise SystemExit(run_alone(WalkthroughPanel, "The cat sat on the mat because the cat was tired."))
