"""Attention panel: the query × key weights of one head (heatmap or lines) and a layers × heads grid.

Run alone on demo data: ``python -m explainer.ui.panels.attention [--real] [--dark] [--screenshot out.png]``.
Layers and heads are numbered from 1 on screen (layer 12 here feeds "after layer 12" in the embeddings
panel); the API (``select_head``, ``headSelected``) uses 0-based indices like ``result.attention``.

The heatmap keeps square cells and the grid shows one number per head (``attention_data.MEASURES``: the weight
from the query to the key, on the first or the previous token, or a role score on this text), for the selected
query and key, or for the cell under the pointer while it is over the heatmap. Hovering a head in the grid shows
its map in a small preview. In a window, layer, head, head average, first-token hiding and the selected key
belong to the window's ``ViewState``: the panel requests changes (``headSelected``, ``averageToggled``,
``hideFirstToggled``, ``keySelected``) and follows the state's signals.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QScrollArea,
    QSpinBox,
    QTabWidget,
    QToolButton,
    QWidget,
)

from explainer.core.types import readonly
from explainer.ui.panels import attention_data as ad
from explainer.ui.panels.attention_texts import DETAILS, HINTS, SINK_NOTE, explanation_for
from explainer.ui.panels.base import Panel, token_labels
from explainer.ui.theme import token_font
from explainer.ui.widgets.attention_heatmap import AttentionHeatmap
from explainer.ui.widgets.attention_lines import AttentionLines
from explainer.ui.widgets.head_grid import HeadGrid, HeadPreview
from explainer.ui.widgets.heatmap_area import HeatmapArea
from explainer.ui.widgets.labels import FullTextLabel


class AttentionPanel(Panel):
    title = "Attention"
    explanation = explanation_for()
    details = DETAILS
    headSelected = Signal(int, int)  # (layer, head), 0-based: a head (or, with the average, a layer) was picked
    averageToggled = Signal(bool)
    hideFirstToggled = Signal(bool)
    keySelected = Signal(int)  # the key column of a clicked cell

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFocusPolicy(Qt.StrongFocus)
        self.layer = self.head = 0
        self.key = -1  # the selected key (-1: the query's previous token)
        self.measure = ad.MEASURES[0][0]
        self._hover_cell = (-1, -1)
        self._labels: list[str] = []
        self._drawn = readonly(np.zeros((0, 0), np.float32))
        self._lines_due: tuple | None = None  # (matrix, labels) for the lines view once its tab is shown
        self._applied_theme = None
        self._placed_for: tuple | None = None  # what the heatmap area was last placed for by a new result
        # title row: Heatmap | Lines
        self.view_buttons = QButtonGroup(self)
        for i, (name, tip) in enumerate((("Heatmap", HINTS[0]), ("Lines", HINTS[1]))):
            b = QToolButton(text=name, checkable=True, checked=i == 0, focusPolicy=Qt.TabFocus, toolTip=tip)
            self.view_buttons.addButton(b, i)
            self.add_header_widget(b)
        # controls
        row = QHBoxLayout()
        # the controls take the focus from Tab (a click leaves it on the panel, whose arrow keys pick layer and head)
        self.layer_spin = QSpinBox(prefix="Layer ", minimum=1, maximum=1, focusPolicy=Qt.StrongFocus)
        self.head_spin = QSpinBox(prefix="Head ", minimum=1, maximum=1, focusPolicy=Qt.StrongFocus)
        self.average_box = QCheckBox("Average of heads", focusPolicy=Qt.TabFocus)
        self.sink_box = QCheckBox("Hide first token (attention sink)", focusPolicy=Qt.TabFocus, toolTip=SINK_NOTE)
        for w in (self.layer_spin, self.head_spin, self.average_box, self.sink_box):
            row.addWidget(w)
        row.addStretch(1)
        self.body.addLayout(row)
        # one line: the head shown, or what is under the pointer; the grid's number on the right
        info_row = QHBoxLayout()
        self.info = FullTextLabel()
        self.status = self.info  # the hover read-out shares the line
        self.measure_box = QComboBox(focusPolicy=Qt.TabFocus)
        for key, label, tip in ad.MEASURES:
            self.measure_box.addItem(f"Grid: {label}", key)
            self.measure_box.setItemData(self.measure_box.count() - 1, tip, Qt.ToolTipRole)
        self.measure_box.setToolTip("The number each square of the head grid shows, as a colour from 0 to 1")
        info_row.addWidget(self.info, 1)
        info_row.addWidget(self.measure_box)
        self.body.addLayout(info_row)
        # views
        self.tabs = QTabWidget()
        self.tabs.tabBar().hide()  # switched by the Heatmap / Lines buttons in the title row
        self.tabs.setFocusPolicy(Qt.NoFocus)  # its hidden tab bar would hold the Tab key
        self.tabs.setDocumentMode(True)
        self.heatmap = AttentionHeatmap()
        self.grid = HeadGrid()
        self.area = HeatmapArea(self.heatmap, self.grid)
        self.preview = HeadPreview(self)
        self.lines = AttentionLines()
        scroll = QScrollArea(widgetResizable=True, focusPolicy=Qt.NoFocus)
        scroll.setWidget(self.lines)
        self.tabs.addTab(self.area, "Heatmap")
        self.tabs.addTab(scroll, "Lines")
        self.body.addWidget(self.tabs, 1)
        # wiring
        self.view_buttons.idClicked.connect(self.tabs.setCurrentIndex)
        self.tabs.currentChanged.connect(lambda i: self.view_buttons.button(i).setChecked(True))
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.layer_spin.valueChanged.connect(lambda v: self._on_controls_changed())
        self.head_spin.valueChanged.connect(lambda v: self._on_controls_changed())
        self.average_box.toggled.connect(self._on_average_toggled)
        self.sink_box.toggled.connect(self._on_sink_toggled)
        self.measure_box.currentIndexChanged.connect(self._on_measure_changed)
        self.grid.headClicked.connect(self._on_grid_clicked)
        self.grid.headHovered.connect(self._on_grid_hovered)
        self.heatmap.cellHovered.connect(self._on_heatmap_hovered)
        self.heatmap.cellClicked.connect(self._on_heatmap_clicked)
        self.lines.tokenHovered.connect(self.tokenHovered)
        self.lines.tokenSelected.connect(self.tokenSelected)
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
        self.show_head(layer, head)
        self.set_average(False)
        self.headSelected.emit(self.layer, self.head)

    def show_head(self, layer: int, head: int) -> None:
        """Show head ``head`` of layer ``layer`` (clipped to the model once there is a result); emits nothing."""
        n_layers, n_heads = self._shape()
        self.layer = int(np.clip(layer, 0, n_layers - 1)) if n_layers else max(0, int(layer))
        self.head = int(np.clip(head, 0, n_heads - 1)) if n_heads else max(0, int(head))
        self._sync_controls()
        self._update_head()

    def set_average(self, on: bool) -> None:
        self.average_box.setChecked(on)

    def set_hide_first(self, on: bool) -> None:
        self.sink_box.setChecked(on)

    def set_key(self, key: int) -> None:
        self.key = key
        self._update_grid()

    def set_measure(self, key: str) -> None:
        i = self.measure_box.findData(key)
        if i >= 0:
            self.measure_box.setCurrentIndex(i)

    def current_matrix(self) -> np.ndarray:
        """``[T, T]`` exactly what the heatmap draws: the selected head (or the mean over the layer's heads),
        with column 0 NaN and rows renormalised over keys 1..q when the first token is hidden (row 0 is then
        NaN). The causal upper triangle holds the model's zeros (drawn as empty)."""
        return self._drawn

    def grid_query_key(self) -> tuple[int, int]:
        """The (query, key) the grid's number is about: the hovered cell, else the selected query (or the last
        token) and the selected key (or the token before the query)."""
        if self._hover_cell[0] >= 0:
            return self._hover_cell
        q = self.focus_position
        return q, (self.key if 0 <= self.key <= q else q - 1)

    def bind_state(self, state) -> None:
        super().bind_state(state)
        state.headChanged.connect(self.show_head)
        state.averageChanged.connect(self.set_average)
        state.hideFirstChanged.connect(self.set_hide_first)
        state.keyChanged.connect(self.set_key)
        self.headSelected.connect(state.set_head)
        self.averageToggled.connect(state.set_average)
        self.hideFirstToggled.connect(state.set_hide_first)
        self.keySelected.connect(state.set_key)

    # --- Panel protocol --------------------------------------------------------------------------------------
    def refresh(self) -> None:
        self._apply_theme()
        r = self.result
        if r is None:
            return
        n_layers, n_heads = self._shape()
        self._help.setText(explanation_for(r.model))
        self.grid.set_shape(n_layers, n_heads)
        placed_for = (n_layers, n_heads, r.n_tokens, self.area.size(), self._applied_theme)
        if placed_for != self._placed_for:  # (the same tokens but the last: as placed, the axes fit it themselves)
            self._placed_for = placed_for
            self.area.place()
        self.layer = min(self.layer, n_layers - 1)
        self.head = min(self.head, n_heads - 1)
        self._sync_controls()
        self._labels = token_labels(r.tokens)  # the start token as every panel names it (⟨start⟩)
        self._update_head()

    def highlight_token(self, position: int) -> None:
        super().highlight_token(position)
        self.heatmap.show_token(position)
        self.lines.set_external(position)

    def select_position(self, position: int) -> None:
        super().select_position(position)
        self.heatmap.show_selected(position)
        self.heatmap.set_focus_row(position)
        self.lines.selected = position
        self.lines.update()
        self._update_grid()

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
        self.grid.set_backdrop(self.theme.grid)
        self.grid.set_axis_style(token_font(self.font(), 11), self.theme.text, self.theme.muted)
        self.grid.set_colormap(pg.colormap.get(self.theme.colormap))
        self.lines.set_theme(self.theme)
        self.lines.setFont(token_font(self.font(), 12))
        self.area.place()

    def _sync_controls(self) -> None:
        n_layers, n_heads = self._shape()
        widgets = (self.layer_spin, self.head_spin)
        for w in widgets:
            w.blockSignals(True)
        for spin, top, value in (
            (self.layer_spin, max(1, n_layers, self.layer + 1), self.layer + 1),
            (self.head_spin, max(1, n_heads, self.head + 1), self.head + 1),
        ):
            if spin.maximum() != top:  # a new range lays the panel out again: only when it changes
                spin.setMaximum(top)
            if spin.value() != value:
                spin.setValue(value)
        self.head_spin.setEnabled(not self.average)
        for w in widgets:
            w.blockSignals(False)

    def _update_head(self) -> None:
        r = self.result
        if r is None:
            return
        if r.n_tokens == 0:
            self._drawn = readonly(np.zeros((0, 0), np.float32))
            self.heatmap.set_matrix(self._drawn, [])
            self._set_lines(self._drawn, [])
            self.info.setText("No tokens yet: type some text.")
            self.grid.set_values(np.full(self._shape(), np.nan, np.float32))
            return
        if self.average:
            base = r.attention.layer(self.layer).mean(axis=0)
        else:
            base = r.attention.head(self.layer, self.head)
        self._drawn = readonly(ad.display_matrix(base, self.hide_first))
        self.heatmap.set_matrix(self._drawn, self._labels)
        self.heatmap.show_token(self.hovered_position)
        self.heatmap.show_selected(self.selected_position)
        self.heatmap.set_focus_row(self.selected_position)
        self._set_lines(self._drawn, self._labels)
        self.grid.set_selected(self.layer, None if self.average else self.head)
        self.info.setText(self._head_text())
        self._update_grid()

    def _set_lines(self, matrix: np.ndarray, labels: list[str]) -> None:
        """The lines view draws ``matrix``: now when its tab is shown, else once it is (its labels and sizes cost a
        little at every keystroke otherwise)."""
        self._lines_due = (matrix, labels)
        if self.tabs.currentIndex() == 1:
            self._on_tab_changed(1)

    def _on_tab_changed(self, index: int) -> None:
        if index == 1 and self._lines_due is not None:
            self.lines.set_data(*self._lines_due)
            self._lines_due = None

    def _head_text(self) -> str:
        info = self.result.model
        if self.average:
            what = f"Layer {self.layer + 1}, average of its {info.n_heads} heads"
        else:
            group = info.n_heads // max(1, info.n_kv_heads)
            kv = self.head // max(1, group)
            first, last = kv * group + 1, kv * group + group
            what = f"Layer {self.layer + 1}, head {self.head + 1} — " + (
                f"shares its keys and values with heads {first}–{last} (key/value head {kv + 1} of {info.n_kv_heads})"
                if group > 1
                else "its own keys and values (every head has them in this model)"
            )
        return what + ("; first token hidden, rows renormalised" if self.hide_first else "")

    def _update_grid(self) -> None:
        r = self.result
        if r is None or r.n_tokens == 0:
            return
        if self.measure in ad.ROLE_MEASURES:
            from explainer.core.heads import scores_from_result

            if getattr(self, "_roles_for", None) is not r:
                self._roles_for, self._roles = r, scores_from_result(r)
            values = getattr(self._roles, self.measure)
        else:
            q, k = self.grid_query_key()
            values = ad.head_values(r.attention, self.measure, q, k, self.hide_first)
        self.grid.set_values(values)

    def _on_controls_changed(self) -> None:
        self.layer = self.layer_spin.value() - 1
        self.head = self.head_spin.value() - 1
        self._update_head()
        self.headSelected.emit(self.layer, self.head)

    def _on_average_toggled(self, on: bool) -> None:
        self.head_spin.setEnabled(not on)
        self._update_head()
        self.averageToggled.emit(on)

    def _on_sink_toggled(self, on: bool) -> None:
        self._update_head()
        self.hideFirstToggled.emit(on)

    def _on_measure_changed(self, index: int) -> None:
        self.measure = self.measure_box.itemData(index)
        self._update_grid()

    def _on_grid_clicked(self, layer: int, head: int) -> None:
        self.setFocus(Qt.MouseFocusReason)
        self.preview.hide()
        self.select_head(layer, head)

    def _on_grid_hovered(self, layer: int, head: int) -> None:
        r = self.result
        if layer < 0 or r is None or r.n_tokens == 0:
            self.preview.hide()
            self.info.setText(self._head_text() if r is not None and r.n_tokens else "")
            return
        m = ad.display_matrix(r.attention.head(layer, head), self.hide_first)
        v = self.grid.value(layer, head)
        label = self.measure_box.currentText().removeprefix("Grid: ")
        number = "no value" if np.isnan(v) else f"{v:.3f}"
        text = f"Layer {layer + 1}, head {head + 1}: {label} {number}. Click to show it."
        self.info.setText(text)
        cmap = pg.colormap.get(self.theme.colormap)
        self.preview.show_map(
            ad.preview(m), cmap, f"<b>Layer {layer + 1}, head {head + 1}</b>", self.theme, QCursor.pos()
        )

    def _on_heatmap_hovered(self, q: int, k: int) -> None:
        if q < 0 or self.result is None:
            self._hover_cell = (-1, -1)
            self.info.setText(self._head_text() if self.result is not None and self.result.n_tokens else "")
            self._update_grid()
            self.tokenHovered.emit(-1)
            return
        self._hover_cell = (q, k) if k <= q else (-1, -1)
        lab = self._labels
        if k > q:
            text = f"{lab[q]} (token {q}) cannot look at {lab[k]} (token {k}): later tokens are masked."
        elif np.isnan(self._drawn[q, k]):
            text = f"{lab[q]} (token {q}) → first token: hidden (attention sink)."
        else:
            text = f"{lab[q]} (token {q}) looks at {lab[k]} (token {k}) with weight {self._drawn[q, k]:.3f}"
        self.info.setText(text)
        self._update_grid()
        self.tokenHovered.emit(q)

    def _on_heatmap_clicked(self, q: int, k: int) -> None:
        self.setFocus(Qt.MouseFocusReason)
        self.tokenSelected.emit(q)
        if k <= q:
            self.key = k
            self.keySelected.emit(k)
        self._update_grid()

    def keyPressEvent(self, ev) -> None:
        n_layers, n_heads = self._shape()
        key = ev.key()
        if n_layers and key in (Qt.Key_Up, Qt.Key_Down):
            self.layer = int(np.clip(self.layer + (1 if key == Qt.Key_Down else -1), 0, n_layers - 1))
        elif n_heads and key in (Qt.Key_Left, Qt.Key_Right) and not self.average:
            self.head = int(np.clip(self.head + (1 if key == Qt.Key_Right else -1), 0, n_heads - 1))
        else:
            return super().keyPressEvent(ev)
        self._sync_controls()
        self._update_head()
        self.headSelected.emit(self.layer, self.head)
        ev.accept()

    # --- scenes and export -----------------------------------------------------------------------------------
    def scene_state(self) -> dict:
        """The panel's own controls; layer, head, average, first-token hiding and the key are the window's view
        state (saved in the same place of a scene)."""
        return {"tab": self.tabs.currentIndex(), "grid": self.measure}

    def apply_scene_state(self, state: dict) -> None:
        tab = state.get("tab")
        if isinstance(tab, int) and not isinstance(tab, bool) and 0 <= tab < self.tabs.count():
            self.tabs.setCurrentIndex(tab)
        if isinstance(state.get("grid"), str):
            self.set_measure(state["grid"])

    def export_data(self) -> dict:
        """The matrix shown (rows: queries, columns: keys), the tokens by their label as on screen and by their own
        text (the start token: its special token's text)."""
        tokens = self.result.tokens if self.result is not None else []
        labels = [t.label for t in tokens]
        return {
            "matrix": np.asarray(self.current_matrix()),
            "row_labels": labels,
            "col_labels": labels,
            "token_texts": [t.text for t in tokens],
            "token_ids": [int(t.id) for t in tokens],
            "layer": self.layer + 1,
            "head": "average" if self.average else self.head + 1,
            "first_token_hidden": self.hide_first,
        }

    def export_plot(self) -> QWidget:
        """The picture alone: the heatmap (with its head grid) or, on the Lines tab, all the lines."""
        return self.lines if self.tabs.currentIndex() == 1 else self.heatmap

    def caption_extra(self) -> str:
        what = f"attention, layer {self.layer + 1}, " + (
            "average of heads" if self.average else f"head {self.head + 1}"
        )
        return what + (", first token hidden" if self.hide_first else "")


if __name__ == "__main__":  # pragma: no cover - manual demo
    from explainer.ui.panels._run_alone import run_alone
    from explainer.ui.panels.demo_data import DEMO_TEXT

    raise SystemExit(run_alone(AttentionPanel, DEMO_TEXT))
