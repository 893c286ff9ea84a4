"""Where the attention heatmap and the head grid go in the room the attention panel has.

The heatmap's matrix is square (square cells) and as large as the room allows; the head grid, whose cells are at
least ``head_grid.MIN_CELL_PX``, goes beside it (layers as rows) or below it (layers as columns), whichever leaves
the larger matrix, or is left out when it would cost the matrix too much (``GRID_MIN_SIDE``). The group is
centred horizontally. :func:`arrange` is the pure rule; :class:`HeatmapArea` applies it on every resize and once
more when the axes have measured their labels (their size depends on the matrix's).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QRect, QSize, QTimer, Signal
from PySide6.QtWidgets import QSizePolicy, QWidget

from explainer.ui.widgets.attention_heatmap import AttentionHeatmap
from explainer.ui.widgets.head_grid import MIN_CELL_PX, HeadGrid
from explainer.ui.widgets.token_axis import MAX_UPRIGHT

GAP = 10  # between the heatmap and the grid
GRID_MIN_SIDE = 260  # the grid is shown when the matrix keeps at least this side (or all it would have)
MAX_GRID_CELL = 30
PLAN_MARGIN_PX = 2  # column labels planned for a square this much smaller than it (its pixels are whole)
# turned column labels may make the square this much of the one a line of labels leaves, while its cells stay this
# large (a long text keeps its square and thinned labels: its cells are small already)
TURNED_MIN_SHARE, TURNED_MIN_CELL_PX = 0.9, 12
DEFAULT_CHROME = (170.0, 80.0)  # the heatmap's axes, titles and colour bar, before they are measured


@dataclass(frozen=True)
class Arrangement:
    side: int  # the matrix's side in pixels
    grid: str  # "beside", "below" or "none"


def arrange(
    width: float,
    height: float,
    chrome: tuple[float, float],
    beside: tuple[float, float] | None,
    below: tuple[float, float] | None,
) -> Arrangement:
    """The matrix side and the grid's place for a ``width`` × ``height`` room. ``chrome``: the heatmap's pixels
    around the matrix; ``beside`` / ``below``: the size the grid needs at its smallest cells in each place."""
    ex_w, ex_h = chrome
    alone = min(width - ex_w, height - ex_h)
    options = []
    if beside is not None and height >= beside[1]:
        options.append(("beside", min(width - ex_w - GAP - beside[0], height - ex_h)))
    if below is not None and width >= below[0]:
        options.append(("below", min(width - ex_w, height - ex_h - GAP - below[1])))
    if options:
        mode, side = max(options, key=lambda o: o[1])
        if side >= min(GRID_MIN_SIDE, alone):
            return Arrangement(max(0, int(side)), mode)
    return Arrangement(max(0, int(alone)), "none")


class HeatmapArea(QWidget):
    """Holds ``heatmap`` and ``grid`` and places them by :func:`arrange` (no layout manager)."""

    chromeMeasured = Signal()  # the heatmap's axes measured a different size around the matrix

    def __init__(self, heatmap: AttentionHeatmap, grid: HeadGrid, parent: QWidget | None = None):
        super().__init__(parent)
        self.heatmap, self.grid = heatmap, grid
        heatmap.setParent(self)
        grid.setParent(self)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setMinimumSize(160, 140)
        self.arrangement = Arrangement(0, "none")
        self.label_depth = 0.0  # how much deeper than one line the planned column labels make the heatmap
        self._chrome = DEFAULT_CHROME
        self._settling = 0  # re-placements since the last place() (the axes may need a second pass)
        self._placing = self._again = False
        self._again_timer = QTimer(self, singleShot=True, interval=0)  # a second pass once the axes have measured
        self._again_timer.timeout.connect(self._arrange)
        heatmap.vb.sigResized.connect(self._on_heatmap_view_resized)

    def sizeHint(self) -> QSize:
        return QSize(640, 480)

    def minimumSizeHint(self) -> QSize:
        return self.minimumSize()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.place()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.place()

    def hideEvent(self, event) -> None:
        self._again_timer.stop()
        super().hideEvent(event)

    def grid_sizes(self) -> tuple[QSize | None, QSize | None]:
        """The grid's smallest size beside and below the heatmap (None without a model yet)."""
        g = self.grid
        if not (g.n_layers and g.n_heads):
            return None, None
        layers, heads = g.n_layers, g.n_heads
        gw, gh = g.chrome()
        beside = QSize(int(heads * MIN_CELL_PX + gw), int(layers * MIN_CELL_PX + gh))
        below = QSize(int(layers * MIN_CELL_PX + gw), int(heads * MIN_CELL_PX + gh))
        return beside, below

    def place(self) -> None:
        """Arrange the heatmap and the grid in the area's current size: after a resize or for a new matrix, whose
        labels the axes then measure (up to three more passes follow, each once the axes have measured)."""
        self._settling = 0
        self._arrange()

    def _arrange(self) -> None:
        """Arrange once (once more if asked while arranging)."""
        if self._placing:
            self._again = True
            return
        self._placing = True
        try:
            for _ in range(3):
                self._again = False
                self._place()
                if not self._again:
                    break
        finally:
            self._placing = False

    def _place(self) -> None:
        w, h = self.width(), self.height()
        if w <= 0 or h <= 0:
            return
        hm, g = self.heatmap, self.grid
        ax = hm.bottom_axis
        measured = hm.chrome()
        if measured is not None:  # with one line of column labels (the axis measured as deep as it is laid out)
            deeper = max(0.0, ax.geometry().height() - ax._extent("flat", ax.full_labels))
            minimal = (measured[0], measured[1] - deeper)
            if minimal != self._chrome:
                self._chrome = minimal
                self.chromeMeasured.emit()
        beside, below = self.grid_sizes()
        sizes = (
            (beside.width(), beside.height()) if beside else None,
            (below.width(), below.height()) if below else None,
        )
        plan, extra, a = self._plan(w, h, sizes)
        ax.set_plan(plan, a.side)
        self.arrangement, self.label_depth = a, extra
        ex_w, ex_h = self._chrome[0], self._chrome[1] + extra
        if a.grid != "none":
            g.set_shape(g.n_layers, g.n_heads, transposed=a.grid == "below")
        grid_rect = self._grid_rect(a, w, h, ex_w, ex_h)
        below_grid = grid_rect.height() + GAP if a.grid == "below" else 0
        spare = h - (a.side + ex_h) - below_grid  # height the square leaves: turned column labels may use it
        hm.set_label_room(spare)
        hm_size = QSize(int(a.side + ex_w), int(a.side + ex_h + min(hm.label_extra(), max(0, spare))))
        if a.grid == "beside":
            total = hm_size.width() + GAP + grid_rect.width()
            x0 = max(0, (w - total) // 2)
            hm_rect = QRect(x0, 0, hm_size.width(), hm_size.height())
            grid_rect.moveTo(hm_rect.right() + 1 + GAP, 0)
        else:
            x0 = max(0, (w - hm_size.width()) // 2)
            hm_rect = QRect(x0, 0, hm_size.width(), hm_size.height())
            if a.grid == "below":
                x = x0 + (hm_size.width() - grid_rect.width()) // 2
                grid_rect.moveTo(max(0, min(x, w - grid_rect.width())), hm_rect.bottom() + 1 + GAP)
        if hm.geometry() != hm_rect:
            hm.setGeometry(hm_rect)
        g.setVisible(a.grid != "none")
        if a.grid != "none" and g.geometry() != grid_rect:
            g.setGeometry(grid_rect)

    def _plan(self, w: int, h: int, sizes) -> tuple[str, float, Arrangement]:
        """How the column labels are laid out, how much deeper than one line that makes the heatmap, and the
        arrangement for it: every label upright on one, then two rows, else turned into the room the square leaves,
        else upright on three rows, else turned below a square made smaller for them (``TURNED_MIN_SHARE``,
        ``TURNED_MIN_CELL_PX``), else turned-or-thinned (the axis' choice). Each is tried at the square its own
        depth leaves, so the labels fit the square they get and the choice stands once made."""
        ax = self.heatmap.bottom_axis
        full = ax.full_labels
        ex_w, ex_h = self._chrome
        flat = ax._extent("flat", full)
        upright = 0 < len(full) <= MAX_UPRIGHT

        def upright_plan(mode: str):
            extra = ax._extent(mode, full) - flat
            a = arrange(w, h, (ex_w, ex_h + extra), *sizes)
            return (mode, extra, a) if ax.fits_upright(mode, a.side - PLAN_MARGIN_PX) else None

        for mode in ("flat", "stagger") if upright else ():
            if (found := upright_plan(mode)) is not None:
                return found
        one_line = arrange(w, h, (ex_w, ex_h), *sizes)
        grid = self._grid_rect(one_line, w, h, ex_w, ex_h)
        spare = h - (one_line.side + ex_h) - (grid.height() + GAP if one_line.grid == "below" else 0)
        turned_depth = ax._extent("rotated", full) - flat if full else 0.0  # beyond one line of labels
        if full and turned_depth <= spare:
            return "turn-or-thin", 0.0, one_line  # turned, in the room the square leaves
        if upright and (found := upright_plan("stagger3")) is not None:
            return found
        if full:  # turned, the labels name many more columns than thinned upright ones ("0: (start)", "10: ·I")
            turned = arrange(w, h, (ex_w, ex_h + turned_depth), *sizes)
            keeps_grid = turned.grid != "none" or one_line.grid == "none"
            least = max(TURNED_MIN_SHARE * one_line.side, TURNED_MIN_CELL_PX * len(full))
            if keeps_grid and turned.side >= least:
                return "turn-or-thin", 0.0, turned  # a smaller square, and room below it for them
        return "turn-or-thin", 0.0, one_line

    def _grid_rect(self, a: Arrangement, w: int, h: int, ex_w: float, ex_h: float) -> QRect:
        """The head grid's size (at the origin) for arrangement ``a`` of a heatmap with ``ex_w`` × ``ex_h`` around
        its matrix: its cells as large as the room beside or below allows (an empty rectangle: no grid). Measured
        with the grid's axes as they are (turning it, when ``a`` puts it elsewhere, changes them by a few pixels)."""
        g = self.grid
        if a.grid == "none":
            return QRect()
        columns, rows = (g.n_layers, g.n_heads) if a.grid == "below" else (g.n_heads, g.n_layers)
        gw, gh = g.chrome()
        if a.grid == "beside":
            room_w, room_h = w - (a.side + ex_w) - GAP, h
        else:
            room_w, room_h = w, h - (a.side + ex_h) - GAP
        cell = min((room_w - gw) / max(1, columns), (room_h - gh) / max(1, rows), MAX_GRID_CELL)
        size = g.size_for_cell(max(MIN_CELL_PX, cell), columns, rows)
        return QRect(0, 0, size.width(), size.height())

    def _on_heatmap_view_resized(self, *_args) -> None:
        """The axes measured their labels for the new size: place again if the matrix came out not square."""
        measured = self.heatmap.chrome()
        if measured is None or self._settling >= 3:
            return
        vb = self.heatmap.vb.sceneBoundingRect()
        if abs(vb.width() - vb.height()) > 1.5 or measured != self._chrome:
            self._settling += 1
            self._again_timer.start()
