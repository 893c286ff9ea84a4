"""Attention panel: the query × key weights of one head (heatmap and lines) and a grid of every head.

Run alone on demo data: ``python -m explainer.ui.panels.attention [--real] [--dark] [--screenshot out.png]``.
Layers and heads are numbered from 1 on screen (layer 12 here feeds "after layer 12" in the embeddings
panel); the API (``select_head``, ``headSelected``) uses 0-based indices like ``result.attention``.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QScrollArea, QSpinBox, QSplitter, QTabWidget, QWidget

from explainer.core.types import readonly
from explainer.ui.panels import attention_data as ad
from explainer.ui.panels.base import Panel
from explainer.ui.widgets.attention_heatmap import AttentionHeatmap
from explainer.ui.widgets.attention_lines import AttentionLines
from explainer.ui.widgets.head_grid import HeadGrid

SINK_NOTE = (
    "Most heads park most of their attention on the first token when they have nothing better to do; "
    "hiding it and renormalising shows what else they look at."
)
HINTS = (
    "Hover over a square to read its weight; click it to select the query token. Scroll to zoom, "
    "double-click to see everything.",
    "Hover over a token to see only its lines: on the left, what it looks at; on the right, who looks at it.",
)
THUMB_PIXELS = 32  # thumbnails are max-pooled to at most this many cells per side


def explanation_for(info=None) -> str:
    h, kv, dk = (info.n_heads, info.n_kv_heads, info.d_head) if info else (9, 3, 64)
    return (
        "Row = the token that is looking (<i>query</i>), column = the token it looks at (<i>key</i>); colour = "
        f"attention weight, softmax(QK<sup>T</sup>/√d<sub>k</sub>), d<sub>k</sub> = {dk}. Every row sums to 1. "
        "The upper triangle is empty: this GPT-style model only looks left (causal mask), unlike BERT. "
        "Click any of the layers × heads in the grid (↑↓ layer, ←→ head)."
    )


DETAILS = (
    "Each head computes, for every token, a query q (what it is looking for) and a key k (what it offers); the "
    "weight of key j for query i is softmax over j of q<sub>i</sub>·k<sub>j</sub>/√d<sub>k</sub>, and the "
    "head's output is the weighted sum of the value vectors. Groups of query heads share one key/value head "
    "(grouped-query attention). Word order enters through positions: Llama-style models (SmolLM2, Qwen2) "
    "rotate queries and keys by an angle proportional to their position before the dot product; GPT-2 adds a "
    "learned position vector to each input embedding. Each grid pixel shows the strongest weight in its block "
    "of the head's matrix."
)


class AttentionPanel(Panel):
    title = "Attention"
    explanation = explanation_for()
    details = DETAILS
    headSelected = Signal(int, int)  # (layer, head), 0-based

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFocusPolicy(Qt.StrongFocus)
        self.layer = 0
        self.head = 0
        self._drawn = readonly(np.zeros((0, 0), np.float32))
        self._thumbs_key = None
        self._mosaics: dict = {}
        self._pooler = ad.ThumbnailPooler(THUMB_PIXELS)
        self._applied_theme = None
        # controls
        row = QHBoxLayout()
        self.layer_spin = QSpinBox(prefix="Layer ", minimum=1, maximum=1, focusPolicy=Qt.ClickFocus)
        self.head_spin = QSpinBox(prefix="Head ", minimum=1, maximum=1, focusPolicy=Qt.ClickFocus)
        self.average_box = QCheckBox("Average of heads", focusPolicy=Qt.NoFocus)
        self.sink_box = QCheckBox("Hide first token (attention sink)", focusPolicy=Qt.NoFocus)
        for w in (self.layer_spin, self.head_spin, self.average_box, self.sink_box):
            row.addWidget(w)
        row.addStretch(1)
        self.body.addLayout(row)
        self.sink_note = QLabel(SINK_NOTE, wordWrap=True)
        self.sink_note.setObjectName("panelNote")
        self.body.addWidget(self.sink_note)
        self.info = QLabel(" ")
        self.info.setTextFormat(Qt.RichText)
        self.body.addWidget(self.info)
        # views
        self.tabs = QTabWidget()
        self.tabs.tabBar().setFocusPolicy(Qt.NoFocus)
        self.heatmap = AttentionHeatmap()
        self.grid = HeadGrid()
        split = QSplitter(Qt.Horizontal)
        split.addWidget(self.heatmap)
        split.addWidget(self.grid)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([700, 260])
        self.lines = AttentionLines()
        scroll = QScrollArea(widgetResizable=True, focusPolicy=Qt.NoFocus)
        scroll.setWidget(self.lines)
        self.tabs.addTab(split, "Heatmap")
        self.tabs.addTab(scroll, "Lines")
        self.body.addWidget(self.tabs, 1)
        self.status = QLabel(HINTS[0])
        self.status.setTextFormat(Qt.RichText)
        self.body.addWidget(self.status)
        # wiring
        self.layer_spin.valueChanged.connect(lambda v: self._on_controls_changed())
        self.head_spin.valueChanged.connect(lambda v: self._on_controls_changed())
        self.average_box.toggled.connect(lambda on: self._on_controls_changed())
        self.sink_box.toggled.connect(self._on_sink_toggled)
        self.grid.headClicked.connect(self._on_grid_clicked)
        self.heatmap.cellHovered.connect(self._on_heatmap_hovered)
        self.heatmap.cellClicked.connect(self._on_heatmap_clicked)
        self.lines.tokenHovered.connect(self._on_lines_hovered)
        self.lines.tokenSelected.connect(self.tokenSelected)
        self.tabs.currentChanged.connect(lambda i: self.status.setText(HINTS[i]))
        self._apply_theme()

    # --- public API ------------------------------------------------------------------------------------------
    @property
    def average(self) -> bool:
        return self.average_box.isChecked()

    @property
    def hide_first(self) -> bool:
        return self.sink_box.isChecked()

    def select_head(self, layer: int, head: int) -> None:
        """Show one head (0-based indices) and emit ``headSelected``; turns the head average off."""
        n_layers, n_heads = self._shape()
        self.layer = int(np.clip(layer, 0, max(0, n_layers - 1)))
        self.head = int(np.clip(head, 0, max(0, n_heads - 1)))
        self._sync_controls(average=False)
        self._update_head()
        self.headSelected.emit(self.layer, self.head)

    def set_average(self, on: bool) -> None:
        self.average_box.setChecked(on)

    def set_hide_first(self, on: bool) -> None:
        self.sink_box.setChecked(on)

    def current_matrix(self) -> np.ndarray:
        """``[T, T]`` exactly what the heatmap draws: the selected head (or the mean over the layer's heads),
        with column 0 NaN and rows renormalised over keys 1..q when the first token is hidden (row 0 is then
        NaN). The causal upper triangle holds the model's zeros (drawn as empty)."""
        return self._drawn

    # --- Panel protocol --------------------------------------------------------------------------------------
    def refresh(self) -> None:
        self._apply_theme()
        r = self.result
        if r is None:
            return
        n_layers, n_heads = self._shape()
        self._help.setText(explanation_for(r.model))
        self.grid.set_shape(n_layers, n_heads)
        self.layer = min(self.layer, n_layers - 1)
        self.head = min(self.head, n_heads - 1)
        self._sync_controls(average=self.average)
        self._labels = ["(start)" if t.added else t.display for t in r.tokens]
        self._update_thumbnails()
        self._update_head()

    def highlight_token(self, position: int) -> None:
        super().highlight_token(position)
        self.heatmap.show_token(position)
        self.lines.set_external(position)

    def select_position(self, position: int) -> None:
        super().select_position(position)
        self.heatmap.show_selected(position)
        self.lines.selected = position
        self.lines.update()

    # --- internals -------------------------------------------------------------------------------------------
    def _shape(self) -> tuple[int, int]:
        if self.result is None:
            return (0, 0)
        return self.result.attention.n_layers, self.result.attention.n_heads

    def _apply_theme(self) -> None:
        if self._applied_theme == (self.theme, self.font().pointSizeF()):
            return
        self._applied_theme = (self.theme, self.font().pointSizeF())
        self.heatmap.set_theme(self.theme)
        self.heatmap.set_font(token_font(self.font(), 12))
        self.grid.setBackground(self.theme.background)
        self.grid.set_axis_style(token_font(self.font(), 11), self.theme.text, self.theme.muted)
        self.grid.set_colormap(pg.colormap.get(self.theme.colormap))
        self.lines.set_theme(self.theme)
        self.lines.setFont(token_font(self.font(), 12))
        self.sink_note.setStyleSheet(f"color: {self.theme.muted};")

    def _sync_controls(self, average: bool) -> None:
        n_layers, n_heads = self._shape()
        widgets = (self.layer_spin, self.head_spin, self.average_box)
        for w in widgets:
            w.blockSignals(True)
        self.layer_spin.setMaximum(max(1, n_layers))
        self.head_spin.setMaximum(max(1, n_heads))
        self.layer_spin.setValue(self.layer + 1)
        self.head_spin.setValue(self.head + 1)
        self.average_box.setChecked(average)
        self.head_spin.setEnabled(not average)
        for w in widgets:
            w.blockSignals(False)

    def _update_thumbnails(self) -> None:
        r = self.result
        key = (id(r.attention), r.attention.n_tokens, self.hide_first)
        if key == self._thumbs_key:
            return
        self._thumbs_key = key
        cache = self._mosaics if self._mosaics.get("attention") is r.attention else {"attention": r.attention}
        self._mosaics = cache  # both sink states of the current result, so toggling back is instant
        if self.hide_first not in cache:
            cache[self.hide_first] = ad.mosaic(self._pooler(r.attention, self.hide_first))
        self.grid.set_mosaic(cache[self.hide_first])

    def _update_head(self) -> None:
        r = self.result
        if r is None:
            return
        if r.n_tokens == 0:
            self._drawn = readonly(np.zeros((0, 0), np.float32))
            self.heatmap.set_matrix(self._drawn, [])
            self.lines.set_data(self._drawn, [])
            self.info.setText("No tokens yet: type some text.")
            return
        if self.average:
            base = r.attention.layer(self.layer).mean(axis=0)
        else:
            base = r.attention.head(self.layer, self.head)
        self._drawn = readonly(ad.display_matrix(base, self.hide_first))
        self.heatmap.set_matrix(self._drawn, self._labels)
        self.heatmap.show_token(self.hovered_position)
        self.heatmap.show_selected(self.selected_position)
        self.lines.set_data(self._drawn, self._labels)
        self.grid.set_selected(self.layer, None if self.average else self.head)
        info = r.model
        if self.average:
            what = f"<b>Layer {self.layer + 1}, average of its {info.n_heads} heads</b>"
        else:
            group = info.n_heads // max(1, info.n_kv_heads)
            kv = self.head // max(1, group)
            first, last = kv * group + 1, kv * group + group
            what = f"<b>Layer {self.layer + 1}, head {self.head + 1}</b> — " + (
                f"shares its keys and values with heads {first}–{last} (key/value head {kv + 1} of {info.n_kv_heads})"
                if group > 1
                else "its own keys and values (every head has them in this model)"
            )
        if self.hide_first:
            what += "; first token hidden, rows renormalised"
        self.info.setText(what)

    def _on_controls_changed(self) -> None:
        self.layer = self.layer_spin.value() - 1
        self.head = self.head_spin.value() - 1
        self.head_spin.setEnabled(not self.average)
        self._update_head()
        if not self.average:
            self.headSelected.emit(self.layer, self.head)

    def _on_sink_toggled(self, _on: bool) -> None:
        if self.result is not None:
            self._update_thumbnails()
            self._update_head()

    def _on_grid_clicked(self, layer: int, head: int) -> None:
        self.setFocus(Qt.MouseFocusReason)
        self.select_head(layer, head)

    def _on_heatmap_hovered(self, q: int, k: int) -> None:
        if q < 0 or self.result is None:
            self.status.setText(HINTS[0])
            self.tokenHovered.emit(-1)
            return
        lab = self._labels
        if k > q:
            text = (
                f"<b>{_esc(lab[q])}</b> (token {q}) cannot look at <b>{_esc(lab[k])}</b> (token {k}): "
                "later tokens are masked."
            )
        elif np.isnan(self._drawn[q, k]):
            text = f"<b>{_esc(lab[q])}</b> (token {q}) → first token: hidden (attention sink)."
        else:
            text = (
                f"<b>{_esc(lab[q])}</b> (token {q}) looks at <b>{_esc(lab[k])}</b> (token {k}) "
                f"with weight <b>{self._drawn[q, k]:.3f}</b>"
            )
        self.status.setText(text)
        self.tokenHovered.emit(q)

    def _on_heatmap_clicked(self, q: int, _k: int) -> None:
        self.setFocus(Qt.MouseFocusReason)
        self.tokenSelected.emit(q)

    def _on_lines_hovered(self, position: int) -> None:
        self.tokenHovered.emit(position)

    def keyPressEvent(self, ev) -> None:
        n_layers, n_heads = self._shape()
        key = ev.key()
        if n_layers and key in (Qt.Key_Up, Qt.Key_Down):
            self.layer = int(np.clip(self.layer + (1 if key == Qt.Key_Down else -1), 0, n_layers - 1))
        elif n_heads and key in (Qt.Key_Left, Qt.Key_Right) and not self.average:
            self.head = int(np.clip(self.head + (1 if key == Qt.Key_Right else -1), 0, n_heads - 1))
        else:
            return super().keyPressEvent(ev)
        self._sync_controls(self.average)
        self._update_head()
        if not self.average:
            self.headSelected.emit(self.layer, self.head)
        ev.accept()

    # --- scenes and export -----------------------------------------------------------------------------------
    def scene_state(self) -> dict:
        return {
            "layer": self.layer,
            "head": self.head,
            "average": self.average,
            "hide_sink": self.hide_first,
            "tab": self.tabs.currentIndex(),
        }

    def apply_scene_state(self, state: dict) -> None:
        if isinstance(state.get("average"), bool):
            self.set_average(state["average"])
        if isinstance(state.get("hide_sink"), bool):
            self.set_hide_first(state["hide_sink"])
        tab = state.get("tab")
        if isinstance(tab, int) and not isinstance(tab, bool) and 0 <= tab < self.tabs.count():
            self.tabs.setCurrentIndex(tab)
        layer, head = state.get("layer"), state.get("head")
        if isinstance(layer, int) and not isinstance(layer, bool) and layer >= 0:
            self.layer = layer  # clipped to the model by refresh
        if isinstance(head, int) and not isinstance(head, bool) and head >= 0:
            self.head = head
        if self.result is not None:
            self.refresh()

    def export_data(self) -> dict:
        labels = [t.display for t in self.result.tokens] if self.result is not None else []
        return {
            "matrix": np.asarray(self.current_matrix()),
            "row_labels": labels,
            "col_labels": labels,
            "layer": self.layer + 1,
            "head": "average" if self.average else self.head + 1,
            "first_token_hidden": self.hide_first,
        }

    def caption_extra(self) -> str:
        what = f"attention, layer {self.layer + 1}, " + (
            "average of heads" if self.average else f"head {self.head + 1}"
        )
        return what + (", first token hidden" if self.hide_first else "")


def token_font(base, min_pt: float):
    """``base`` at ``min_pt`` points or more: token labels must be readable on a projector."""
    from PySide6.QtGui import QFont

    f = QFont(base)
    if f.pointSizeF() < min_pt:
        f.setPointSizeF(min_pt)
    return f


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


if __name__ == "__main__":  # pragma: no cover - manual demo
    from explainer.ui.panels._run_alone import run_alone
    from explainer.ui.panels.demo_data import DEMO_TEXT

    raise SystemExit(run_alone(AttentionPanel, DEMO_TEXT))
