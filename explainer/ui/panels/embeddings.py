"""Embeddings panel: every token as a point on a fixed 2-D map (PCA), layer by layer.

Run alone: ``python -m explainer.ui.panels.embeddings [--real] [--dark] [--layer N] [--screenshot out.png]``.
The panel needs a ``core.projection.Projector`` (``set_projector``). By default it only uses axes that are in
memory or in the disk cache (``Projector.axes_if_available``) and never runs the model itself: call
``projector.prepare()`` in the model's worker thread, then ``panel.refresh()``. ``fit_missing=True`` fits on
demand on the calling thread (demos, tests).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSlider, QWidget

from explainer.core.projection import nearest_neighbours
from explainer.ui import theme as th
from explainer.ui.panels.base import Panel, token_labels
from explainer.ui.theme import token_font
from explainer.ui.widgets.embedding_map import EmbeddingMap


def explanation_for(d_model: int = 576, learned_positions: bool = False) -> str:
    layer0 = (
        "the input embedding plus the learned vector of its position, so the same word at two positions is two points"
        if learned_positions
        else "the input embedding, the same in every context"
    )
    return (
        f"Each token is a vector of {d_model} numbers, drawn on the two main directions (PCA) of reference data, "
        f"fitted once per layer so points stay still while you type. <b>Layer 0</b>: {layer0}. "
        "<b>After layer N</b>: the vector has taken in context, so one word can move "
        "apart (“bank” of a river vs. a bank account)."
    )


DETAILS = (
    "Before fitting, every vector is scaled to the same overall size (RMS-normalised, as the model does "
    "itself) and each dimension is standardised, because a few dimensions are thousands of times larger than "
    "the rest. Layer 0's axes are fitted on the whole vocabulary, later layers' on a fixed built-in English "
    "text. Two directions keep only a few per cent of the spread: close on the map is not always close in the "
    "full space. The map is stretched to fill the panel, so the two axes have different scales. Grey dots: "
    "reference vectors; open diamonds: tokens outside the map, pinned to its edge; the dashed path (optional): "
    "the selected token after each earlier layer, on this map. Labels that would overlap are left out: hover a "
    "point to read its token."
)


def layer_name(layer: int) -> str:
    return "Layer 0 (input embeddings)" if layer == 0 else f"after layer {layer}"


def short_layer_name(layer: int) -> str:
    return "Layer 0" if layer == 0 else f"after layer {layer}"


class EmbeddingsPanel(Panel):
    title = "Embeddings: a 2-D map of the token vectors"
    explanation = explanation_for()
    details = DETAILS
    layerChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None, projector=None, *, fit_missing: bool = False):
        super().__init__(parent)
        self.projector = projector
        self.fit_missing = fit_missing
        self.layer = 0
        self.highlight: list[int] = []  # positions ringed on the map (a scene's pair of tokens)
        self._coords = np.zeros((0, 2), np.float32)
        self._shown_axes = None
        self._applied = None
        row = QHBoxLayout()
        self.slider = QSlider(Qt.Horizontal, minimum=0, maximum=1, pageStep=5)
        self.slider.setTickPosition(QSlider.TicksBelow)
        self.slider.setTickInterval(5)
        self.layer_label = QLabel(short_layer_name(0))  # the info line below says "(input embeddings)"
        self.layer_label.setMinimumWidth(self.layer_label.fontMetrics().horizontalAdvance(short_layer_name(99)) + 12)
        self.path_box = QCheckBox("Path")
        self.path_box.setToolTip(
            "The path of the selected token: its vector after each earlier layer (numbered), drawn on this "
            "layer's map: how it drifted to where it is now."
        )
        row.addWidget(self.layer_label)
        row.addWidget(self.slider, 1)
        row.addWidget(self.path_box)
        self.body.addLayout(row)
        self.info = QLabel(" ", wordWrap=True)
        self.info.setTextFormat(Qt.RichText)
        self.body.addWidget(self.info)
        self.map = EmbeddingMap()
        self.body.addWidget(self.map, 1)
        self.neighbours = QLabel(" ", wordWrap=True)
        self.neighbours.setTextFormat(Qt.RichText)
        self.body.addWidget(self.neighbours)
        self.slider.valueChanged.connect(self._on_slider_changed)
        self.path_box.toggled.connect(lambda _on: self._update_path())
        self.map.pointHovered.connect(self._on_map_hovered)
        self.map.pointClicked.connect(self._on_map_clicked)
        self._apply_theme()

    # --- public API ------------------------------------------------------------------------------------------
    def set_projector(self, projector, *, fit_missing: bool | None = None) -> None:
        self.projector = projector
        if fit_missing is not None:
            self.fit_missing = fit_missing
        self._shown_axes = None
        self.refresh()

    def set_layer(self, layer: int) -> None:
        """0 = input embeddings, ``l`` = the residual stream after layer ``l``."""
        self.slider.setValue(layer)  # → _on_slider_changed

    def coordinates(self) -> np.ndarray:
        """``[T, 2]`` the true (unclamped) map coordinates of the shown result at the current layer."""
        return self._coords

    # --- Panel protocol --------------------------------------------------------------------------------------
    def refresh(self) -> None:
        self._apply_theme()
        r = self.result
        if r is None:
            return
        n_layers = r.model.n_layers
        if self.slider.maximum() != n_layers:
            self.slider.blockSignals(True)
            self.slider.setMaximum(n_layers)
            self.slider.blockSignals(False)
        self.layer = min(self.layer, n_layers)
        self._help.setText(explanation_for(r.model.d_model, r.model.positions == "learned"))
        axes = self._axes()
        if axes is None:
            self._coords = np.zeros((0, 2), np.float32)
            self.map.set_points(self._coords, [], np.zeros(0, np.int64), np.zeros(0, bool))
            self.map.set_cloud(np.zeros((0, 2)))
            self.map.set_path(None)
            self.info.setText(
                "The map for this layer is being prepared (once per model)…"
                if self.projector is not None
                else "No projection available."
            )
            return
        if axes is not self._shown_axes:  # a new layer: new fixed view, cloud and axis titles
            self._shown_axes = axes
            self.map.set_bounds(axes.bounds)
            self.map.set_cloud(axes.reference)
            ev = axes.explained * 100
            self.map.set_axes_labels(f"axis 1 ({ev[0]:.1f}% of the spread)", f"axis 2 ({ev[1]:.1f}%)")
            what = "the whole vocabulary" if self.layer == 0 else "the built-in reference text"
            self.info.setText(
                f"<b>{layer_name(self.layer)}</b> — axes fitted on {what}; "
                f"together they show {ev.sum():.1f}% of its spread."
            )
        self._coords = axes.project(r.hidden[self.layer])
        self.map.set_points(self._coords, token_labels(r.tokens), r.ids, np.array([t.special for t in r.tokens], bool))
        self.map.set_selected(self.selected_position)
        self.map.set_hovered(self.hovered_position)
        self.map.set_marked(self.highlight)
        self._update_path()
        self._update_neighbours()

    def highlight_token(self, position: int) -> None:
        super().highlight_token(position)
        self.map.set_hovered(position)

    def select_position(self, position: int) -> None:
        super().select_position(position)
        self.map.set_selected(position)
        self._update_path()
        self._update_neighbours()

    # --- internals -------------------------------------------------------------------------------------------
    def _axes(self, layer: int | None = None):
        p = self.projector
        if p is None:
            return None
        layer = self.layer if layer is None else layer
        axes = p.axes_if_available(layer)
        if axes is None and self.fit_missing:
            axes = p.fit_layer(layer)
        return axes

    def _apply_theme(self) -> None:
        key = (self.theme, self.font().pointSizeF())
        if key == self._applied:
            return
        self._applied = key
        self.map.set_theme(self.theme)
        self.map.set_font(token_font(self.font(), th.LABEL_FONT_PT - 1))
        self.neighbours.setStyleSheet(f"color: {self.theme.muted};")

    def _update_path(self) -> None:
        r, pos = self.result, self.selected_position
        axes = self._axes() if r is not None else None
        if not self.path_box.isChecked() or axes is None or not 0 <= pos < r.n_tokens or self.layer == 0:
            self.map.set_path(None)
            return
        xy = axes.project(r.hidden[: self.layer + 1, pos])  # = Projector.trajectory(r, pos, self.layer)
        x0, x1, y0, y1 = self.map.bounds
        xy = np.column_stack([np.clip(xy[:, 0], x0, x1), np.clip(xy[:, 1], y0, y1)])
        names = [str(lay) if lay in (0, self.layer) or lay % 5 == 0 else "" for lay in range(self.layer + 1)]
        self.map.set_path(xy, names)

    def _update_neighbours(self) -> None:
        r, pos = self.result, self.selected_position
        if r is None or self.layer != 0 or not 0 <= pos < r.n_tokens or self.projector is None:
            self.neighbours.setText(
                "Select a token at layer 0 to list its nearest neighbours in the vocabulary."
                if self.layer == 0
                else " "
            )
            return
        label = self.projector.token_label
        nn = nearest_neighbours(self.projector.embedding_table, int(r.ids[pos]), k=8)
        items = [f"{_esc(label(i) or str(i))} ({c:.2f})" for i, c in nn]
        self.neighbours.setText(
            f"Nearest to <b>{_esc(r.tokens[pos].label)}</b> in the input-embedding "
            "table (cosine similarity, all 576 dimensions): " + ", ".join(items)
        )

    def _on_slider_changed(self, value: int) -> None:
        self.layer = value
        self.layer_label.setText(short_layer_name(value))
        self._shown_axes = None
        self.refresh()
        self.layerChanged.emit(value)

    def _on_map_hovered(self, position: int) -> None:
        self.hovered_position = position
        self.tokenHovered.emit(position)

    def _on_map_clicked(self, position: int) -> None:
        self.select_position(position)
        self.tokenSelected.emit(position)

    # --- scenes and export -----------------------------------------------------------------------------------
    def scene_state(self) -> dict:
        state = {"layer": self.layer, "path": self.path_box.isChecked()}
        if self.highlight:
            state["highlight"] = list(self.highlight)
        if self.map.named:
            state["labelled"] = list(self.map.named)
        return state

    def set_highlight(self, positions) -> None:
        """Ring the points of these token positions (e.g. the two "bank" tokens of a scene)."""
        self.highlight = [int(p) for p in positions]
        self.map.set_marked(self.highlight)

    def apply_scene_state(self, state: dict) -> None:
        if isinstance(state.get("path"), bool):
            self.path_box.setChecked(state["path"])
        for key, setter in (("highlight", self.set_highlight), ("labelled", self.map.set_named)):
            marks = state.get(key)
            if isinstance(marks, list) and all(
                isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in marks
            ):
                setter(marks)
        layer = state.get("layer")
        if isinstance(layer, int) and not isinstance(layer, bool) and layer >= 0:
            if self.result is None and layer > self.slider.maximum():  # no model yet: refresh clips it later
                self.slider.blockSignals(True)
                self.slider.setMaximum(layer)
                self.slider.blockSignals(False)
            self.set_layer(min(layer, self.slider.maximum()))

    def export_data(self) -> dict:
        r, xy = self.result, self.coordinates()
        rows = (
            []
            if r is None
            else [
                {
                    "position": i,
                    "token_text": r.tokens[i].text,
                    "token_label": r.tokens[i].label,
                    "id": int(r.ids[i]),
                    "x": float(xy[i, 0]),
                    "y": float(xy[i, 1]),
                }
                for i in range(min(len(xy), r.n_tokens))
            ]
        )
        return {"rows": rows, "layer": self.layer}

    def caption_extra(self) -> str:
        return f"embeddings map, {layer_name(self.layer)}"

    def export_plot(self) -> QWidget:
        """The map alone."""
        return self.map


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - manual demo
    """``_run_alone.run_alone`` with ``--layer`` and the projector the map needs."""
    from explainer.core.projection import Projector
    from explainer.ui.panels import demo_data
    from explainer.ui.panels._run_alone import run_alone

    def make_panel(engine, args):
        projector = Projector(engine)
        projector.prepare()  # standalone: fit (or load from the cache) every layer's axes up front
        return EmbeddingsPanel(projector=projector)

    def start(panel, engine, args):
        panel.set_result(engine.analyze(args.text))
        panel.set_layer(min(max(args.layer, 0), engine.info.n_layers))

    return run_alone(
        EmbeddingsPanel,
        demo_data.DEMO_TEXT,
        argv,
        size="1000x750",
        add_arguments=lambda ap: ap.add_argument(
            "--layer", type=int, default=0, help="0 = input embeddings, l = after layer l"
        ),
        make_panel=make_panel,
        start=start,
    )


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
