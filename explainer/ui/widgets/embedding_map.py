"""A fixed 2-D map of token vectors: a faint reference cloud, labelled token points, an optional path.

The view range is set from the layer's reference data (``Axes.bounds``) and never follows the text, so points
do not jump while typing. Points outside the range are pinned to its edge and drawn as open diamonds. Mouse
pan/zoom is off: the map is fixed. Hovering or clicking a point emits its position.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal

from explainer.ui import theme as th

MAX_LABELS = 80  # above this many tokens only the hovered / selected / same-token points are labelled
PICK_PX = 12  # hover / click radius in pixels


class EmbeddingMap(pg.PlotWidget):
    pointHovered = Signal(int)  # token position, -1 when none
    pointClicked = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent, enableMenu=False)
        self.setFocusPolicy(Qt.NoFocus)
        item = self.getPlotItem()
        item.hideButtons()
        item.setMouseEnabled(x=False, y=False)
        for name in ("left", "bottom"):
            item.getAxis(name).setStyle(showValues=False, tickLength=0)
            item.getAxis(name).setTicks([[], []])  # coordinates of a projection carry no meaning of their own
        self.vb = item.getViewBox()
        self.vb.setAspectLocked(True)
        self.vb.sigResized.connect(lambda *_: self._apply_bounds())
        self.cloud = pg.ScatterPlotItem(size=4, pen=None, pxMode=True)
        self.cloud.setZValue(-5)
        self.path = pg.PlotDataItem(pen=pg.mkPen(th.ACCENTS[4], width=2, style=Qt.DashLine), symbol="o",
                                    symbolSize=6, symbolBrush=th.ACCENTS[4], symbolPen=None)
        self.path.setZValue(-1)
        self.path_labels: list[pg.TextItem] = []
        self.points = pg.ScatterPlotItem(pxMode=True)
        self.points.setZValue(5)
        for it in (self.cloud, self.path, self.points):
            self.addItem(it)
        self.labels: list[pg.TextItem] = []
        self.theme = th.LIGHT
        self.xy = np.zeros((0, 2), np.float32)  # drawn (clamped) coordinates
        self.raw = np.zeros((0, 2), np.float32)  # true coordinates
        self.texts: list[str] = []
        self.special = np.zeros(0, bool)
        self.ids = np.zeros(0, np.int64)
        self.bounds = (-1.0, 1.0, -1.0, 1.0)
        self.hovered = self.selected = -1
        self._font = None
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.scene().sigMouseClicked.connect(self._on_mouse_clicked)

    # --- configuration ---------------------------------------------------------------------------------------
    def set_theme(self, theme: th.Theme) -> None:
        self.theme = theme
        self.setBackground(theme.background)
        for name in ("left", "bottom"):
            ax = self.getPlotItem().getAxis(name)
            ax.setPen(theme.muted)
            ax.setTextPen(theme.muted)
        cloud = pg.mkColor(theme.muted)
        cloud.setAlpha(70)
        self.cloud.setBrush(pg.mkBrush(cloud))
        self._restyle()

    def set_font(self, font) -> None:
        self._font = font
        for name in ("left", "bottom"):
            self.getPlotItem().getAxis(name).label.setFont(font)
        for t in self.labels + self.path_labels:
            t.setFont(font)

    def set_axes_labels(self, x: str, y: str) -> None:
        self.getPlotItem().setLabel("bottom", x)
        self.getPlotItem().setLabel("left", y)

    def set_bounds(self, bounds: tuple[float, float, float, float]) -> None:
        self.bounds = tuple(float(b) for b in bounds)
        self._apply_bounds()

    def _apply_bounds(self) -> None:
        x0, x1, y0, y1 = self.bounds
        self.vb.setRange(QRectF(x0, y0, x1 - x0, y1 - y0), padding=0.02)

    def set_cloud(self, points: np.ndarray) -> None:
        self.cloud.setData(pos=np.asarray(points, np.float64))

    # --- data ------------------------------------------------------------------------------------------------
    def set_points(self, xy: np.ndarray, texts: list[str], ids: np.ndarray, special: np.ndarray) -> None:
        self.raw = np.asarray(xy, np.float32)
        x0, x1, y0, y1 = self.bounds
        self.xy = np.column_stack([np.clip(self.raw[:, 0], x0, x1), np.clip(self.raw[:, 1], y0, y1)])
        self.texts, self.ids, self.special = list(texts), np.asarray(ids), np.asarray(special, bool)
        n = len(texts)
        while len(self.labels) < n:
            t = pg.TextItem("", anchor=(0, 1))
            if self._font is not None:
                t.setFont(self._font)
            t.setZValue(6)
            self.addItem(t)
            self.labels.append(t)
        for t in self.labels[n:]:
            t.hide()
        self._restyle()

    def set_path(self, xy: np.ndarray | None, layer_names: list[str] | None = None) -> None:
        """A faint path through ``xy [k, 2]`` (one token across layers), labelled with ``layer_names``."""
        for t in self.path_labels:
            self.removeItem(t)
        self.path_labels = []
        if xy is None or len(xy) == 0:
            self.path.setData([], [])
            return
        self.path.setData(xy[:, 0], xy[:, 1])
        for (x, y), name in zip(xy, layer_names or []):
            if not name:
                continue
            t = pg.TextItem(name, color=th.ACCENTS[4], anchor=(0.5, 1.2))
            if self._font is not None:
                t.setFont(self._font)
            t.setPos(float(x), float(y))
            self.addItem(t)
            self.path_labels.append(t)

    def set_hovered(self, position: int) -> None:
        if position != self.hovered:
            self.hovered = position
            self._restyle()

    def set_selected(self, position: int) -> None:
        if position != self.selected:
            self.selected = position
            self._restyle()

    # --- drawing ---------------------------------------------------------------------------------------------
    def _restyle(self) -> None:
        n = len(self.texts)
        if n == 0:
            self.points.setData([])
            return
        focus = [p for p in (self.hovered, self.selected) if 0 <= p < n]
        same = set()
        for p in focus:
            same.update(np.nonzero(self.ids == self.ids[p])[0].tolist())
        x0, x1, y0, y1 = self.bounds
        outside = (self.raw[:, 0] < x0) | (self.raw[:, 0] > x1) | (self.raw[:, 1] < y0) | (self.raw[:, 1] > y1)
        text_col = pg.mkColor(self.theme.text)
        base = th.ACCENTS[5] if self.theme.is_dark else th.ACCENTS[0]  # blue / sky blue: contrast on either
        spots = []
        for i in range(n):
            hot = i in focus
            colour = th.HIGHLIGHT if hot else (th.SPECIAL if self.special[i] else base)
            pen = pg.mkPen(th.HIGHLIGHT, width=3) if (i in same and not hot) else pg.mkPen(self.theme.background)
            spots.append({"pos": (float(self.xy[i, 0]), float(self.xy[i, 1])), "data": i,
                          "size": 16 if hot else 11, "symbol": "d" if outside[i] else "o",
                          "brush": pg.mkBrush(colour) if not outside[i] else pg.mkBrush(self.theme.background),
                          "pen": pen if not outside[i] else pg.mkPen(colour, width=2)})
        self.points.setData(spots)
        show_all = n <= MAX_LABELS
        seen: set = set()  # a label already drawn at (almost) the same place: identical vectors, e.g. layer 0
        span = max(x1 - x0, y1 - y0) * 1e-4
        for i in range(n):
            t = self.labels[i]
            spot = (self.texts[i], round(float(self.xy[i, 0]) / span), round(float(self.xy[i, 1]) / span))
            if not (show_all or i in focus or i in same) or (spot in seen and i not in focus):
                t.hide()
                continue
            seen.add(spot)
            hot = i in focus or i in same
            t.setText("\u2002" + self.texts[i] + (" (off the map)" if outside[i] and hot else ""))
            t.setColor(pg.mkColor(th.HIGHLIGHT) if hot else text_col)
            t.setZValue(8 if hot else 6)
            t.setPos(float(self.xy[i, 0]), float(self.xy[i, 1]))
            t.show()

    # --- mouse -----------------------------------------------------------------------------------------------
    def point_at(self, scene_pos) -> int:
        if len(self.xy) == 0 or not self.vb.sceneBoundingRect().contains(scene_pos):
            return -1
        p = self.vb.mapSceneToView(scene_pos)
        px, py = self.vb.viewPixelSize()
        d = np.hypot((self.xy[:, 0] - p.x()) / px, (self.xy[:, 1] - p.y()) / py)
        i = int(np.argmin(d))
        return i if d[i] <= PICK_PX else -1

    def _on_mouse_moved(self, pos) -> None:
        i = self.point_at(pos)
        if i != self.hovered:
            self.set_hovered(i)
            self.pointHovered.emit(i)

    def _on_mouse_clicked(self, ev) -> None:
        if ev.button() == Qt.LeftButton:
            i = self.point_at(ev.scenePos())
            if i >= 0:
                self.pointClicked.emit(i)

    def leaveEvent(self, ev):
        if self.hovered != -1:
            self.set_hovered(-1)
            self.pointHovered.emit(-1)
        super().leaveEvent(ev)
