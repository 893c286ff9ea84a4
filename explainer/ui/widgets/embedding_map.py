"""A fixed 2-D map of token vectors: a faint reference cloud, labelled token points, an optional path.

The view range is set from the layer's reference data (``Axes.bounds``) and never follows the text, so points
do not jump while typing; it fills the whole plot area (the two axes are scaled separately). Points outside the
range are pinned to its edge and drawn as open diamonds. Mouse pan/zoom is off: the map is fixed. Hovering or
clicking a point emits its position.

Labels are placed greedily so that none overlaps another (``_place_labels``): the hovered / selected token's
label first (always shown), then the tokens sharing its id and the marked ones (``set_marked``), then the rest
in text order; each tries a few spots
around its point (right, left, above, below) and takes the first inside the map that overlaps no placed label and
hides no other point; a label with no such spot is left out (hover its point to read it).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtWidgets import QGraphicsItem

from explainer.ui import theme as th
from explainer.ui.widgets.plot_cache import cache, cache_fixed_parts
from explainer.ui.widgets.token_axis import axis_length, show_title, title_fits, without_unit_prefixes
from explainer.ui.widgets.token_points import TokenPoints

MIN_MAP_PX = (160, 150)  # below this the points crowd into each other and no label finds a place
MAX_LABELS = 80  # above this many tokens only the hovered / selected / same-token points are labelled
PICK_PX = 12  # hover / click radius in pixels
POINT_PX, HOT_POINT_PX = 11, 16  # marker sizes
LABEL_GAP_PX = 3  # between a marker's edge and its label's box
# where a label may go around its point, in order of preference: (anchor of the text box, direction from the point)
PLACES = (
    ((0.0, 0.5), (1, 0)),
    ((0.0, 1.0), (1, -1)),
    ((0.0, 0.0), (1, 1)),  # right, above right, below right
    ((1.0, 0.5), (-1, 0)),
    ((1.0, 1.0), (-1, -1)),
    ((1.0, 0.0), (-1, 1)),  # left, above left, below left
    ((0.5, 1.0), (0, -1)),
    ((0.5, 0.0), (0, 1)),
)  # above, below


class EmbeddingMap(pg.PlotWidget):
    pointHovered = Signal(int)  # token position, -1 when none
    pointClicked = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent, enableMenu=False)
        self.setFocusPolicy(Qt.NoFocus)
        self.viewport().setFocusPolicy(Qt.NoFocus)  # a plot is used with the mouse; its panel takes the keys
        self._titles: dict[str, str] = {}  # axis → its full title (set_axes_labels)
        self._label_order: list[tuple[int, bool]] = []  # (token position, must show), see _place_labels
        item = self.getPlotItem()
        without_unit_prefixes(item)
        item.hideButtons()
        item.setMouseEnabled(x=False, y=False)
        for name in ("left", "bottom"):
            item.getAxis(name).setStyle(showValues=False, tickLength=0)
            item.getAxis(name).setTicks([[], []])  # coordinates of a projection carry no meaning of their own
        self.vb = item.getViewBox()  # no aspect lock: the fixed range fills the plot area
        self.vb.sigResized.connect(self._on_view_resized)
        self.cloud = pg.ScatterPlotItem(size=4, pen=None, pxMode=True)
        self.cloud.setZValue(-5)
        # the vocabulary's thousands of dots change with the layer, not with each keystroke: drawn once into a
        # pixmap, which each new picture of the tokens' points only copies (drawn again when the view changes)
        self.cloud.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.path = pg.PlotDataItem(
            pen=pg.mkPen(th.ACCENTS[4], width=2, style=Qt.DashLine),
            symbol="o",
            symbolSize=6,
            symbolBrush=th.ACCENTS[4],
            symbolPen=None,
        )
        self.path.setZValue(-1)
        self.path_labels: list[pg.TextItem] = []
        self.points = TokenPoints()
        self.points.setZValue(5)
        for it in (self.cloud, self.path, self.points):
            self.addItem(it)
        self.labels: dict[int, pg.TextItem] = {}  # token labels by position, made when first shown (_label)
        self._shown: set[int] = set()  # the token labels shown, see _show_label
        self.theme = th.LIGHT
        self.xy = np.zeros((0, 2), np.float32)  # drawn (clamped) coordinates
        self.raw = np.zeros((0, 2), np.float32)  # true coordinates
        self.texts: list[str] = []
        self.special = np.zeros(0, bool)
        self.ids = np.zeros(0, np.int64)
        self.bounds = (-1.0, 1.0, -1.0, 1.0)
        self.hovered = self.selected = -1
        self.marked: tuple[int, ...] = ()  # positions ringed like the selected token's twins (a scene's pair)
        self.named: tuple[int, ...] = ()  # positions always labelled, not ringed (the words a scene's pair sits by)
        self._font = None
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.scene().sigMouseClicked.connect(self._on_mouse_clicked)
        cache_fixed_parts(self)

    def minimumSizeHint(self) -> QSize:
        """Room for a map worth reading (the live area leaves the map out where it cannot give this much)."""
        return QSize(*MIN_MAP_PX)

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
        self._fit_axis_titles()
        for t in [*self.labels.values(), *self.path_labels]:
            t.setFont(font)
        self._place_labels()

    def set_axes_labels(self, x: str, y: str) -> None:
        """Axis titles; where one is longer than its axis, its part in brackets is left out ("axis 2")."""
        self._titles = {"bottom": x, "left": y}
        self._fit_axis_titles()

    def axis_titles(self) -> tuple[str, str]:
        """The titles shown now: (x, y)."""
        item = self.getPlotItem()
        return item.getAxis("bottom").labelText, item.getAxis("left").labelText

    def _fit_axis_titles(self) -> None:
        item = self.getPlotItem()
        for name, full in self._titles.items():
            ax = item.getAxis(name)
            length = axis_length(ax)
            show_title(ax, full if length <= 0 or title_fits(ax, full, length) else full.split(" (")[0])

    def set_bounds(self, bounds: tuple[float, float, float, float]) -> None:
        self.bounds = tuple(float(b) for b in bounds)
        self._apply_bounds()

    def _apply_bounds(self) -> None:
        x0, x1, y0, y1 = self.bounds
        self.vb.setRange(QRectF(x0, y0, x1 - x0, y1 - y0), padding=0.02)
        self.points.set_extent(self.vb.viewRect())
        self._place_labels()

    def _on_view_resized(self, *_args) -> None:
        self._apply_bounds()
        self._fit_axis_titles()

    def set_cloud(self, points: np.ndarray) -> None:
        self.cloud.setData(pos=np.asarray(points, np.float64))

    # --- data ------------------------------------------------------------------------------------------------
    def set_points(self, xy: np.ndarray, texts: list[str], ids: np.ndarray, special: np.ndarray) -> None:
        self.raw = np.asarray(xy, np.float32)
        x0, x1, y0, y1 = self.bounds
        self.xy = np.column_stack([np.clip(self.raw[:, 0], x0, x1), np.clip(self.raw[:, 1], y0, y1)])
        self.texts, self.ids, self.special = list(texts), np.asarray(ids), np.asarray(special, bool)
        n = len(texts)
        for i in [i for i in self._shown if i >= n]:
            self._show_label(i, False)
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
            cache(t.textItem)
            self.addItem(t)
            self.path_labels.append(t)
        self._place_labels()  # the path's numbers are obstacles for the token labels

    def set_hovered(self, position: int) -> None:
        if position != self.hovered:
            self.hovered = position
            self._restyle()

    def set_selected(self, position: int) -> None:
        if position != self.selected:
            self.selected = position
            self._restyle()

    def set_marked(self, positions) -> None:
        """Ring these points and always label them (positions past the end are ignored)."""
        positions = tuple(int(p) for p in positions)
        if positions != self.marked:
            self.marked = positions
            self._restyle()

    def set_named(self, positions) -> None:
        """Always label these points, in the plain colour and without a ring (after the ringed ones)."""
        positions = tuple(int(p) for p in positions)
        if positions != self.named:
            self.named = positions
            self._restyle()

    # --- drawing ---------------------------------------------------------------------------------------------
    def _restyle(self) -> None:
        n = len(self.texts)
        if n == 0:
            self.points.set_points(np.zeros((0, 2)), [])
            self._label_order = []
            return
        focus = [p for p in (self.hovered, self.selected) if 0 <= p < n]
        same = set()
        for p in focus:
            same.update(np.nonzero(self.ids == self.ids[p])[0].tolist())
        same.update(p for p in self.marked if 0 <= p < n)
        x0, x1, y0, y1 = self.bounds
        outside = (self.raw[:, 0] < x0) | (self.raw[:, 0] > x1) | (self.raw[:, 1] < y0) | (self.raw[:, 1] > y1)
        text_col = pg.mkColor(self.theme.text)
        backing = pg.mkColor(self.theme.background)
        backing.setAlpha(190)
        backing = pg.mkBrush(backing)
        base = th.ACCENTS[5] if self.theme.is_dark else th.ACCENTS[0]  # blue / sky blue: contrast on either
        bg = self.theme.background
        hot = np.zeros(n, bool)
        hot[focus] = True
        ring = np.zeros(n, bool)
        ring[list(same)] = True
        ring &= ~hot
        # each point's look from four flags: a code per point, a style per code (a few kinds of points)
        codes = (hot.astype(np.uint8) << 3 | ring << 2 | outside << 1 | self.special).tolist()
        looks = {}
        for code in set(codes):
            h, r, o, sp = bool(code & 8), bool(code & 4), bool(code & 2), bool(code & 1)
            colour = th.HIGHLIGHT if h else (th.SPECIAL if sp else base)
            size = HOT_POINT_PX if h else POINT_PX
            if o:  # pinned to the edge: an open diamond  (symbol, size, fill, outline, outline width)
                looks[code] = ("d", size, bg, colour, 2.0)
            else:
                looks[code] = ("o", size, colour, th.HIGHLIGHT if r else bg, 3.0 if r else 1.0)
        self.points.set_points(self.xy, [looks[code] for code in codes])
        show_all = n <= MAX_LABELS
        seen: set = set()  # a label already drawn at (almost) the same place: identical vectors, e.g. layer 0
        span = max(x1 - x0, y1 - y0) * 1e-4
        self._label_order = []  # (index, must show), in the order labels claim their place
        named = set(self.named)
        # the labels that may show: all of them, or on a crowded map the focus, its twins, the marked and named
        wanted = range(n) if show_all else {*focus, *same, *(p for p in named if 0 <= p < n)}
        for i in [i for i in self._shown if i not in wanted]:
            self._show_label(i, False)
        order = sorted(
            wanted, key=lambda k: (k not in focus and k not in self.marked, k not in same, k not in named, k)
        )
        for i in order:
            t = self._label(i)
            spot = (self.texts[i], round(float(self.xy[i, 0]) / span), round(float(self.xy[i, 1]) / span))
            must = i in focus or i in self.marked or i in named
            if spot in seen and not must:
                self._show_label(i, False)
                continue
            seen.add(spot)
            hot = i in focus or i in same
            look = (self.texts[i] + (" (off the map)" if outside[i] and hot else ""), hot, must, self.theme)
            if getattr(t, "look", None) != look:  # setText / setColor lay the label's text out again: only on change
                t.look = look
                t.setText(look[0])
                t.setColor(pg.mkColor(th.HIGHLIGHT) if hot else text_col)
                t.fill = backing  # the cloud's dots do not show through the letters
                t.setZValue(
                    8 if must or hot else 4
                )  # other labels under the points (they only meet around a hovered one)
            self._label_order.append((i, must))
        self._place_labels()

    def _place_labels(self) -> None:
        """Put each label of ``_label_order`` at the first spot around its point (``PLACES``) that overlaps no
        label placed before it, stays inside the map and covers no other point; hide it when there is no such
        spot, unless it must show (the hovered / selected token), which then takes its best spot anyway."""
        order = [(i, must) for i, must in self._label_order if i < len(self.texts)]
        w, h = self.vb.width(), self.vb.height()
        (vx0, vx1), (vy0, vy1) = self.vb.viewRange()
        if not order or w <= 1 or h <= 1 or vx1 <= vx0 or vy1 <= vy0:
            for i, _must in order:  # not laid out yet: a provisional spot, placed again on the first resize
                self._label(i).setAnchor(PLACES[0][0])
                self._label(i).setPos(float(self.xy[i, 0]), float(self.xy[i, 1]))
                self._show_label(i)
            return
        sx, sy = w / (vx1 - vx0), h / (vy1 - vy0)  # view units → pixels (pixel y grows downwards)
        px = (self.xy[:, 0] - vx0) * sx
        py = (vy1 - self.xy[:, 1]) * sy
        focus = {i for i, must in order if must}
        radius = np.where([k in focus for k in range(len(px))], HOT_POINT_PX, POINT_PX) / 2.0
        marks = np.column_stack([px - radius, py - radius, px + radius, py + radius])  # l, t, r, b
        placed = [self._pixel_box(t, vx0, vy1, sx, sy) for t in self.path_labels if t.isVisible()]
        for i, must in order:
            t = self._label(i)
            br = t.textItem.boundingRect()
            tw, th_ = br.width(), br.height()
            gap = radius[i] + LABEL_GAP_PX
            others = np.ones(len(px), bool)
            others[np.all(np.abs(self.xy - self.xy[i]) < 1e-12, axis=1)] = False  # its own point (and twins)
            taken = np.array(placed, float).reshape(-1, 4)
            best = None  # ((outside the map, points hidden, preference), box, anchor, spot)
            for rank, ((ax, ay), (dx, dy)) in enumerate(PLACES):
                k = 0.75 if dx and dy else 1.0  # diagonal spots: a little closer
                ox, oy = px[i] + dx * gap * k, py[i] + dy * gap * k
                box = (ox - ax * tw, oy - ay * th_, ox - ax * tw + tw, oy - ay * th_ + th_)
                if len(taken) and _overlaps(taken, box).any():
                    continue
                inside = box[0] >= 0 and box[1] >= 0 and box[2] <= w and box[3] <= h
                covered = int(_overlaps(marks[others], box).sum())
                key = (not inside, covered, rank)
                if best is None or key < best[0]:
                    best = (key, box, (ax, ay), (ox, oy))
                if inside and covered == 0:
                    break
            if best is None or ((best[0][0] or best[0][1]) and not must):  # no spot inside that hides no point
                if not must:
                    self._show_label(i, False)
                    continue
                if best is None:  # the focus label shows even where it must overlap
                    ox, oy = px[i] + gap, py[i]
                    best = (None, (ox, oy - th_ / 2, ox + tw, oy + th_ / 2), PLACES[0][0], (ox, oy))
            _key, box, anchor, (ox, oy) = best
            t.setAnchor(anchor)
            t.setPos(vx0 + ox / sx, vy1 - oy / sy)
            self._show_label(i)
            placed.append(box)

    def _label(self, i: int) -> pg.TextItem:
        """Token ``i``'s label, made the first time it is asked for (a crowded map names only a few tokens)."""
        t = self.labels.get(i)
        if t is None:
            t = self.labels[i] = pg.TextItem("", anchor=(0, 1))
            if self._font is not None:
                t.setFont(self._font)
            t.setZValue(6)
            cache(t.textItem)
            t.hide()  # shown by _place_labels
            self.addItem(t)
        return t

    def _show_label(self, i: int, on: bool = True) -> None:
        """Show or hide token ``i``'s label; ``_shown`` remembers which are shown, so that on a crowded map only
        those are visited (not every token's label at every result)."""
        self.labels[i].setVisible(on)
        if on:
            self._shown.add(i)
        else:
            self._shown.discard(i)

    def _pixel_box(self, t: pg.TextItem, vx0: float, vy1: float, sx: float, sy: float) -> tuple:
        """A text item's box in the view box's pixels (left, top, right, bottom)."""
        br = t.textItem.boundingRect()
        ox, oy = (t.pos().x() - vx0) * sx, (vy1 - t.pos().y()) * sy
        left, top = ox - t.anchor[0] * br.width(), oy - t.anchor[1] * br.height()
        return (left, top, left + br.width(), top + br.height())

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


def _overlaps(boxes: np.ndarray, box) -> np.ndarray:
    """Which of ``boxes [k, 4]`` (left, top, right, bottom) intersect ``box``."""
    return (boxes[:, 0] < box[2]) & (box[0] < boxes[:, 2]) & (boxes[:, 1] < box[3]) & (box[1] < boxes[:, 3])
