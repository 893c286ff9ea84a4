"""A pyqtgraph axis whose ticks are token labels at integer cells (cell ``i`` spans ``[i, i+1)``).

Labels are abbreviated to ``max_chars`` and thinned so they never overlap (every k-th token, k chosen from the
pixel size of a cell and the height of the labels' letters; zooming in shows them all). Emphasised and named labels
are shown between the k-th ones; a k-th label they would touch gives way.

A horizontal (bottom/top) axis lays its labels out in one of these ways, chosen by ``fit_to_length`` from the
axis' length in pixels, the first that fits: ``"flat"`` (one row of upright labels, when every label fits its
column), ``"stagger"`` (upright labels on two alternating rows), ``"rotated"`` (turned by 90°, thinned when the
columns are narrower than a line; only when the axis may be that deep: the room a square matrix leaves below it),
``"stagger3"`` (upright on three alternating rows) or ``"sparse"`` (one row of upright labels with their index,
every k-th token). On alternating rows a label may be wider than its share of columns when the labels beside it
on its row leave room (then at least an "m" apart). Labels are never shortened: "·ca…" reads worse from the back
of a room than fewer whole words.
"""

from __future__ import annotations

import itertools
import math

import pyqtgraph as pg
from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem

LABEL_GAP_PX = 3  # at least this much empty space between the letters of two neighbouring labels
STEPS = (2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 10**9)  # label every k-th token, k from here
MAX_UPRIGHT = 40  # with more labels than this a horizontal axis turns or thins them
UPRIGHT_ROWS = {"flat": 1, "stagger": 2, "stagger3": 3}  # the layouts of upright labels, every one shown: rows
PLAN_SLACK_PX = 4  # a plan (set_plan) holds for lengths this close to the one it was made for (whole pixels)


TITLE_MARGIN_PX = 8  # an axis title's text item adds this much around its letters


def axis_length(ax: pg.AxisItem) -> float:
    """How long ``ax`` is along its direction, in pixels (0 before it is laid out)."""
    g = ax.geometry()
    return g.width() if ax.orientation in ("bottom", "top") else g.height()


def title_fits(ax: pg.AxisItem, title: str, length: float) -> bool:
    """Whether ``title`` fits along an axis ``length`` pixels long, in the axis title's font."""
    return QFontMetricsF(ax.label.font()).horizontalAdvance(title) + TITLE_MARGIN_PX <= length


def show_title(ax: pg.AxisItem, title: str) -> None:
    """Show ``title`` on ``ax`` (nothing to do when it already shows), centred along the axis."""
    if ax.labelText != title or not ax.label.isVisible():
        ax.setLabel(title)
        ax.resizeEvent()  # centre the new title along the axis


def without_unit_prefixes(plot: pg.PlotItem) -> None:
    """Turn off the SI unit prefix of all four axes of ``plot``, shown or hidden: the views here have no units,
    and an axis with the prefix on writes its title anew at every change of range (hidden axes too)."""
    for name in ("left", "bottom", "top", "right"):
        plot.getAxis(name).enableAutoSIPrefix(False)


_METRICS: dict[tuple[str, str], tuple[int, int, int]] = {}  # (font key, text) -> advance, ink top, ink bottom


def text_metrics(font: QFont, texts: list[str], key: str | None = None) -> list[tuple[int, int, int]]:
    """Per text, in ``font``: its advance and its letters' top and bottom (``QFontMetrics.tightBoundingRect``).
    Remembered: the axes measure every label at every result, and the labels of a growing text repeat.
    ``key``: ``font.key()``, where the caller knows it already (asking the font costs more than the lookup)."""
    key = font.key() if key is None else key
    if len(_METRICS) > 200_000:
        _METRICS.clear()
    get = _METRICS.get
    out = [get((key, s)) for s in texts]
    if None in out:
        fm = QFontMetrics(font)
        for i, s in enumerate(texts):
            if out[i] is None:
                r = fm.tightBoundingRect(s)
                out[i] = _METRICS[(key, s)] = (fm.horizontalAdvance(s), r.top(), r.bottom())
    return out


_PAINTED = object()  # in place of pyqtgraph's recorded picture: the axis is drawn and current (see paint)


def _rect_key(box) -> tuple:
    """A laid-out label's place as a comparable tuple (a rotated label's box is ``(x, y, rect)``)."""
    if isinstance(box, tuple):
        x, y, r = box
        return (x, y, r.x(), r.y(), r.width(), r.height())
    return (box.x(), box.y(), box.width(), box.height())


def abbreviate(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def _sparse_step(widths: list[int], px: float, gap: float) -> int:
    """Label every k-th token of a text whose "index: label" texts are ``widths`` pixels wide, ``px`` pixels per
    token: the smallest k of 1, 2, 5, 10, 20 … at which the labels of tokens 0, k, 2k … stand ``gap`` pixels apart,
    each centred on its token (the first and the last pushed inside the axis). Decided over the whole text, whatever
    part is in view: zooming in only adds labels, and panning never changes k."""
    if not widths:
        return 1
    px = max(px, 1e-9)
    end = len(widths) * px
    least = (min(widths) + gap) / px  # no step below this fits even the narrowest two
    for step in (1, *STEPS):
        if step < least:
            continue
        right = -math.inf
        for i in range(0, len(widths), step):
            w = widths[i]
            left = min(max((i + 0.5) * px - w / 2, 0.0), end - w)
            if left < right + gap:
                break
            right = left + w
        else:
            return step
    return STEPS[-1]


def _apart(laid_out: list, ranks: list[set[int]], horizontal: bool, gap: float) -> list:
    """The labels of ``laid_out`` (in index order) that keep ``gap`` pixels between their letters along the axis:
    those in ``ranks[0]`` first, then those in ``ranks[1]`` …, then the rest, each in index order and kept when it
    touches none already kept. Returned in index order."""

    def along(ink: QRectF) -> tuple[float, float]:
        return (ink.left(), ink.right()) if horizontal else (ink.top(), ink.bottom())

    kept: list = []
    spans: list[tuple[float, float]] = []
    placed: set[int] = set()
    for rank in [*ranks, None]:
        for item in laid_out:
            idx = item[0]
            if idx in placed or (rank is not None and idx not in rank):
                continue
            a, b = along(item[2])
            if all(b + gap <= c + 0.01 or a + 0.01 >= d + gap for c, d in spans):  # (rounding: k-th ones stay)
                kept.append(item)
                spans.append((a, b))
                placed.add(idx)
    return sorted(kept, key=lambda item: item[0])


class TokenAxis(pg.AxisItem):
    def __init__(self, orientation: str, *, max_chars: int = 12, **kw):
        super().__init__(orientation, **kw)
        self.full_labels: list[str] = []  # the labels at their longest (``max_chars``)
        self.labels: list[str] = []  # as drawn: shortened further when the axis has little room (fit_to_length)
        self.max_chars = max_chars
        self.horizontal = orientation in ("bottom", "top")
        self.mode = "sparse" if self.horizontal else "flat"  # see the module docstring
        self.setStyle(tickLength=4, autoExpandTextSpace=False, hideOverlappingLabels=False)
        self.enableAutoSIPrefix(False)  # token positions have no units: the title stays as set at every new range
        # drawn once into a pixmap, shown again as long as nothing on it changed (many keystrokes change no label
        # that is shown: the one-character longer last token of a thinned axis)
        self.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.emphasis: set[int] = set()  # indices drawn bold in the highlight colour
        self.named: tuple[int, ...] = ()  # labelled even on a thinned axis (plain unless emphasised), first ones first
        self.emphasis_colour = "#D55E00"
        self._ink: tuple[float, float] | None = None  # the labels' letters, from / to, relative to a line's centre
        self._fit_args: tuple[float, float] | None = None  # what fit_to_length was last given
        self._indexed: tuple | None = None  # (labels, bold font key, "index: label" texts, widths): _indexed_widths
        self._step_memo: tuple | None = None  # (widths, px per token, gap, step): see label_step
        self._spans: dict = {}  # see _span
        self._drawn: tuple = ()  # what the picture shows, see _as_drawn
        self._drawn_memo: tuple | None = None  # (layout, what else it was for, _as_drawn of it)
        self._texts: tuple | None = None  # (layout, fonts and emphasis, the labels' places), see _text_places
        self._font_cache: tuple | None = None  # see _font_set
        self._laid: tuple = (None, [])  # the last layout and what it was computed for, see _layout
        self.plan: str | None = None  # see set_plan (None: the axis chooses from its length alone)
        self._plan_length = 0.0  # the length the plan was made for

    @property
    def rotated(self) -> bool:
        return self.mode == "rotated"

    # --- public ---------------------------------------------------------------------------------------------
    def set_labels(self, labels: list[str]) -> None:
        m = self.max_chars
        full = [s if len(s) <= m else s[: m - 1] + "…" for s in labels]  # abbreviate(), without a call per label
        if full == self.full_labels:
            return  # the same tokens: the axis as drawn stays
        if self._took_unshown(full):
            return
        self.full_labels = self.labels = full  # never changed in place: fit_to_length puts a new list
        self._changed(keep_same=True)

    def _took_unshown(self, full: list[str]) -> bool:
        """Take ``full`` without laying the axis out again when it differs from the labels shown now only where
        no label is drawn (the last token of a long text, typed on, between two labelled ones) and the changed
        labels neither set nor reach the widest or the tallest label. Then the axis looks exactly as before."""
        old = self.full_labels
        state, laid_out = self._laid
        if len(full) != len(old) or self.labels is not old or state is None or state[0] is not old:
            return False
        if self.horizontal and len(full) <= MAX_UPRIGHT:
            return False  # whether the labels fit upright depends on each one's width
        changed = [i for i, (a, b) in enumerate(zip(old, full)) if a != b]
        shown = {idx for idx, _box, _ink, _text in laid_out}
        if len(changed) > 8 or any(i in shown for i in changed):
            return False
        lists = [(False, old, full), (True, old, full)]
        if not all(self._span_kept(bold, before, after, changed) for bold, before, after in lists):
            return False
        sparse = self.horizontal and self.mode == "sparse"
        if sparse:  # every k-th label, k from the widths of the labels at multiples of k: k must stay
            before = self._indexed_widths()
            texts, widths = list(self._indexed[2]), list(before)
            for i in changed:
                texts[i] = f"{i}: {full[i]}"
            _font, bold_font, _key, bold_key = self._font_set()
            for i, (w, _t, _b) in zip(changed, text_metrics(bold_font, [texts[i] for i in changed], bold_key)):
                widths[i] = w
            (x0, x1, *_rest), (_x, _y, width, _h) = state[1], state[2]
            gap = self._sparse_gap()
            for px in (width / max(x1 - x0, 1e-9), (width + 2) / max(x1 - x0, 1e-9)):  # the labels', the ticks'
                if _sparse_step(before, px, gap) != _sparse_step(widths, px, gap):
                    return False
            self._indexed = (full, bold_key, texts, widths)
        self.full_labels = self.labels = full
        self._laid = ((full, *state[1:]), laid_out)
        return True

    def _span_kept(self, bold: bool, before: list[str], after: list[str], changed: list[int]) -> bool:
        """Whether ``after`` (``before`` with the labels at ``changed`` replaced) has the span ``before`` has:
        known from those labels alone when none of the replaced ones reached the span's edge, else measured."""
        plain, bold_face, plain_key, bold_key = self._font_set()
        font, key = (bold_face, bold_key) if bold else (plain, plain_key)
        adv, top, bottom = span = self._span(bold, before)
        gone = text_metrics(font, [before[i] for i in changed], key)
        come = text_metrics(font, [after[i] for i in changed], key)
        if all(a < adv and t > top and b < bottom for a, t, b in gone) and all(
            a <= adv and t >= top and b <= bottom for a, t, b in come
        ):
            self._remember_span(key, after, span)
            return True
        return self._span(bold, after) == span

    def set_font(self, font) -> None:
        self.setStyle(tickFont=font)
        self._changed()

    def set_emphasis(self, indices) -> None:
        """Draw these labels bold in the highlight colour; a thinned axis shows them too (between its k-th ones,
        leaving out a neighbour they would touch)."""
        new = {i for i in indices if i >= 0}
        if new != self.emphasis:
            self.emphasis = new
            self.picture = None
            self.update()

    def set_named(self, indices) -> None:
        """Show these labels even where the axis is thinned (in the plain style), as an emphasised one is shown;
        where two of them would touch, the one given first is shown."""
        new = tuple(dict.fromkeys(i for i in indices if i >= 0))
        if new != self.named:
            self.named = new
            self.picture = None
            self.update()

    def fit_to_length(self, length: float, max_extent: float = 0.0) -> None:
        """The plot area is ``length`` pixels along this axis (showing every cell) and a horizontal axis may turn
        its labels if that makes it at most ``max_extent`` pixels deep (across it, title included): choose how it
        lays out its labels and set the axis' depth."""
        self._fit_args = (float(length), float(max_extent))
        if self.horizontal:
            mode, labels = self._choose_layout(float(length), float(max_extent))
            if (mode, labels) != (self.mode, self.labels):
                self.mode, self.labels = mode, labels
                self._ink = None
                self.picture = None
                self.update()
        self._fit_extent()

    def set_plan(self, plan: str | None, length: float = 0.0) -> None:
        """What the widget sizing the plot decided from the room each layout would leave a plot ``length`` pixels
        long: an upright mode (``UPRIGHT_ROWS``; taken while it fits the length given), ``"turn-or-thin"`` (turned
        labels where the axis may be that deep, else every k-th one) or None (the axis chooses from the length
        alone, as it also does at another length: an export's)."""
        if (plan, float(length)) != (self.plan, self._plan_length):
            self.plan, self._plan_length = plan, float(length)
            if self._fit_args is not None:
                self.fit_to_length(*self._fit_args)

    def fits_upright(self, mode: str, length: float) -> bool:
        """Whether every label fits upright on the rows of ``mode`` along ``length`` pixels."""
        full, n = self.full_labels, len(self.full_labels)
        return 0 < n <= MAX_UPRIGHT and length > 0 and self._upright_fits(full, length / n, UPRIGHT_ROWS[mode])

    def _choose_layout(self, length: float, max_extent: float) -> tuple[str, list[str]]:
        """Every label upright on one row, or on two rows, else turned if the axis may be that deep, else upright
        on three rows, else every k-th label upright."""
        full, n = self.full_labels, len(self.full_labels)
        planned = self.plan is not None and abs(length - self._plan_length) <= PLAN_SLACK_PX
        if planned and self.plan in UPRIGHT_ROWS and self.fits_upright(self.plan, length):
            return self.plan, full
        if planned:  # turned or thinned (also a planned upright layout that no longer fits)
            return ("rotated" if n and self._extent("rotated", full) <= max_extent else "sparse"), full
        px = length / max(n, 1)
        upright = 0 < n <= MAX_UPRIGHT and px > 0
        for mode in ("flat", "stagger"):
            if upright and self._upright_fits(full, px, UPRIGHT_ROWS[mode]):
                return mode, full
        if n and self._extent("rotated", full) <= max_extent:
            return "rotated", full
        if upright:
            # three rows make the axis deeper, and a square matrix limited by its height smaller: they must fit the
            # length left then (measured from the depth now, so the choice stands once it is made)
            now = self._extent(self.mode if self.mode in UPRIGHT_ROWS or self.mode == "sparse" else "flat", full)
            left = length - max(0.0, self._extent("stagger3", full) - now)
            if self._upright_fits(full, left / n, UPRIGHT_ROWS["stagger3"]):
                return "stagger3", full
        return "sparse", full

    def label_spacing(self) -> float:
        """Pixels between two neighbouring labels' centres (across the text) so their letters never touch."""
        top, bottom = self._ink_band()
        return bottom - top + LABEL_GAP_PX

    def label_step(self, px_per_cell: float) -> int:
        """Label every k-th token: 1, 2, 5, 10, 20, 25, 50 … so the labelled positions read as a pattern."""
        if self.mode in UPRIGHT_ROWS and self.horizontal:
            return 1  # chosen only when every label fits
        if self.horizontal and self.mode == "sparse":  # (asked by the layout and by the ticks of every drawing)
            widths, gap = self._indexed_widths(), self._sparse_gap()
            memo = self._step_memo
            if memo is None or memo[0] is not widths or memo[1:3] != (px_per_cell, gap):
                memo = self._step_memo = (widths, px_per_cell, gap, _sparse_step(widths, px_per_cell, gap))
            return memo[3]
        step = max(1, math.ceil(self.label_spacing() / max(px_per_cell, 1e-9)))
        return step if step == 1 else min(s for s in STEPS if s >= step)

    def _sparse_gap(self) -> float:
        """Between two "index: label" texts on one row: the width of an "m" (three pixels read as one run)."""
        _font, bold, _key, bold_key = self._font_set()
        return max(float(LABEL_GAP_PX), text_metrics(bold, ["m"], bold_key)[0][0])

    def _indexed_widths(self) -> list[int]:
        """Each token's "index: label" advance in bold (an emphasised label is drawn bold), as a sparse axis draws
        its labels: measured once per labels and font (asked at every drawing)."""
        _font, bold, _key, bold_key = self._font_set()
        cached = self._indexed
        if cached is None or cached[0] is not self.labels or cached[1] != bold_key:
            texts = [f"{i}: {s}" for i, s in enumerate(self.labels)]
            cached = self._indexed = (
                self.labels,
                bold_key,
                texts,
                [w for w, _t, _b in text_metrics(bold, texts, bold_key)],
            )
        return cached[3]

    def _span(self, bold: bool, labels: list[str]) -> tuple[int, int, int]:
        """Over ``labels`` in the tick font (``bold``: its bold face): the widest advance and how far up and down
        the letters reach. The axis asks this several times per result: remembered per list of labels (never
        changed in place) and font."""
        plain, bold_face, plain_key, bold_key = self._font_set()
        font, key = (bold_face, bold_key) if bold else (plain, plain_key)
        entry = self._spans.get((key, id(labels)))
        if entry is not None and entry[0] is labels:
            return entry[1]
        m = text_metrics(font, labels, key)
        adv, top, bottom = zip(*m) if m else ((0,), (0,), (0,))
        span = (max(adv), min(top), max(bottom))
        self._remember_span(key, labels, span)
        return span

    def _remember_span(self, key: str, labels: list[str], span: tuple[int, int, int]) -> None:
        if len(self._spans) >= 16:
            self._spans.clear()
        self._spans[(key, id(labels))] = (labels, span)  # (the list kept: its id is not reused meanwhile)

    def label_rects(self) -> dict[int, QRectF]:
        """Where each shown label's letters are drawn (axis coordinates; an upright box around the text, turned
        for the axis' current range and size: ``{token index: rect}``."""
        return {idx: ink for idx, _box, ink, _text in self._layout()}

    # --- layout ---------------------------------------------------------------------------------------------
    def _changed(self, keep_same: bool = False) -> None:
        """Lay the axis out again and draw it again; ``keep_same``: not drawn again when it would show what its
        picture shows (new tokens whose shown labels are those already drawn, in the same places)."""
        self._ink = None
        if self._fit_args is not None:
            self.fit_to_length(*self._fit_args)
        else:
            self._fit_extent()
        if keep_same and self.picture is not None and self._as_drawn(self._layout()) == self._drawn:
            return  # (a change of size or range has already reset ``picture``)
        self.picture = None
        self.update()

    def _as_drawn(self, laid_out) -> tuple:
        """Everything a picture with the labels ``laid_out`` shows: the axis' size, range and layout mode, and
        each shown label's index, text, place and emphasis (the ticks follow from the labelled indices).
        Remembered for the last layout (asked for by a new result and again by its drawing)."""
        g = self.geometry()
        head = ((g.width(), g.height()), tuple(self.range), self.mode)
        shown = frozenset(self.emphasis)
        memo = self._drawn_memo
        if memo is not None and memo[0] is laid_out and memo[1] == (head, shown):
            return memo[2]
        drawn = (*head, tuple((idx, text, idx in shown, _rect_key(box)) for idx, box, _ink, text in laid_out))
        self._drawn_memo = (laid_out, (head, shown), drawn)
        return drawn

    def _font_set(self) -> tuple[QFont, QFont, str, str]:
        """(tick font, its bold face, their keys), remembered while the tick font stays the same."""
        source = self.style["tickFont"] or self.font()
        cached = self._font_cache
        if cached is None or cached[0] != source:
            bold = QFont(source)
            bold.setBold(True)
            cached = self._font_cache = (QFont(source), QFont(source), bold, source.key(), bold.key())
        return cached[1:]

    def _fonts(self) -> tuple[QFont, QFont]:
        font, bold, _key, _bold_key = self._font_set()
        return font, bold

    def _ink_band(self) -> tuple[float, float]:
        """From where to where the letters of any label reach, relative to the centre of its line box."""
        if self._ink is None:
            _font, bold, _key, bold_key = self._font_set()  # bold (emphasised) letters are the largest
            fm = QFontMetrics(bold)
            _adv, top, bottom = text_metrics(bold, ["0123456789: "], bold_key)[0]  # the index of a thinned label
            top, bottom = min(0, top), max(0, bottom + 1)
            if self.labels:
                _adv, t, b = self._span(True, self.labels)
                top, bottom = min(top, t), max(bottom, b + 1)
            base = fm.ascent() - fm.height() / 2  # the baseline, from the centre of a line box
            self._ink = (base + top, base + bottom)
        return self._ink

    def _upright_fits(self, labels: list[str], px: float, rows: int) -> bool:
        """Every label upright, centred on its column, on ``rows`` alternating rows: no two on a row touch. On one
        row each label fits its column; on more a label may be wider than ``rows`` columns, and then it keeps an
        "m" from the labels beside it on its row (a few pixels would read as one phrase)."""
        end = px * len(labels)
        last = [(-math.inf, True)] * rows  # per row: where its last label ends, whether that one kept to its columns
        _font, bold, _key, bold_key = self._font_set()
        wide_gap = self._sparse_gap()
        for i, (w, _t, _b) in enumerate(text_metrics(bold, labels, bold_key)):
            own = w + LABEL_GAP_PX <= px * rows
            if (rows == 1 and not own) or w > end:
                return False
            left = min(max(px * (i + 0.5) - w / 2, 0.0), end - w)  # edge labels are pushed inside the axis
            right, kept = last[i % rows]
            if left < right + (LABEL_GAP_PX if own and kept else wide_gap):
                return False
            last[i % rows] = (left + w, own)
        return True

    def _extent(self, mode: str, labels: list[str]) -> float:
        """How deep the axis must be (across it) for ``labels`` laid out as ``mode``, title included."""
        fm = QFontMetrics(self._fonts()[0])
        offset = max(0, self.style["tickLength"]) + 3
        if self.horizontal and mode != "rotated":
            extent = offset + fm.height() * UPRIGHT_ROWS.get(mode, 1) + 4
        else:
            widest = self._span(False, labels)[0] if labels else fm.horizontalAdvance("00")
            cells = self._fit_args[0] / max(len(labels), 1) if self._fit_args else math.inf
            if cells < self.label_spacing():  # room for the index shown when thinned
                widest += fm.horizontalAdvance(f"{len(labels)}: ")
            extent = widest + 12
        if self.label.isVisible():
            extent += self.label.boundingRect().height() * 0.8
        return extent

    def _fit_extent(self) -> None:
        extent = int(self._extent(self.mode, self.labels))
        # (pyqtgraph's setHeight / setWidth throw the picture away even when the depth stays)
        if self.horizontal and extent != self.fixedHeight:
            self.setHeight(extent)
        elif not self.horizontal and extent != self.fixedWidth:
            self.setWidth(extent)

    def _layout(self):
        """``[(index, box, ink, text)]`` for each label to draw: ``box`` is the text's line box before rotation
        (in the rotated frame for rotated labels), ``ink`` where its letters land in axis coordinates.
        Remembered until something it depends on changes (a new result asks for it, then its drawing)."""
        view = self.linkedView()
        if not self.labels or view is None:
            return []
        bounds = self.mapRectFromParent(self.geometry())
        (x0, x1), (y0, y1) = view.viewRange()
        inverted = view.yInverted() if not self.horizontal else view.xInverted()
        state = (
            self.labels,
            (x0, x1, y0, y1, inverted),
            bounds.getRect(),
            self.mode,
            frozenset(self.emphasis),
            self.named,
            self._font_set()[2],
            self.style["tickLength"],
        )
        cached_state, out = self._laid
        if cached_state is None or cached_state[0] is not state[0] or cached_state[1:] != state[1:]:
            out = self._compute_layout(bounds, (x0, x1) if self.horizontal else (y0, y1), inverted)
            self._laid = (state, out)
        return out

    def _compute_layout(self, bounds: QRectF, view_range: tuple[float, float], inverted: bool):
        n = len(self.labels)
        lo, hi = view_range
        size = bounds.width() if self.horizontal else bounds.height()
        if size <= 0 or hi <= lo:
            return []
        px = size / (hi - lo)
        step = self.label_step(px)
        first = max(0, math.ceil(lo - 0.5))
        first += (-first) % step
        last = min(n - 1, math.floor(hi - 0.5))
        font, bold, key, bold_key = self._font_set()
        h = QFontMetrics(font).height()
        ink_top, ink_bottom = self._ink_band()
        offset = max(0, self.style["tickLength"]) + 3
        thinned = step > 1
        # on a thinned axis the emphasised and named labels are shown too (those the view reaches)
        lowest = max(0, math.ceil(lo - 0.5))
        must = {i for i in self.emphasis.union(self.named) if lowest <= i <= last} if thinned else set()
        out = []
        for idx in sorted(must.union(range(first, last + 1, step))):
            label = f"{idx}: {self.labels[idx]}" if thinned else self.labels[idx]
            emphasised = idx in self.emphasis
            adv = text_metrics(bold if emphasised else font, [label], bold_key if emphasised else key)[0][0]
            frac = (idx + 0.5 - lo) / (hi - lo)
            if inverted:
                frac = 1 - frac
            if self.horizontal:
                c = bounds.left() + frac * bounds.width()
            else:
                c = bounds.bottom() - frac * bounds.height()  # view y grows upwards unless inverted
            if self.horizontal and not self.rotated:
                row = idx % UPRIGHT_ROWS.get(self.mode, 1)
                left = min(max(c - adv / 2, bounds.left()), bounds.right() - adv)
                top = (
                    (bounds.top() + offset + row * h)
                    if self.orientation == "bottom"
                    else (bounds.bottom() - offset - (row + 1) * h)
                )
                box = QRectF(left, top, adv, h)
                ink = QRectF(left, top + h / 2 + ink_top, adv, ink_bottom - ink_top)
            elif self.horizontal:  # rotated: reads upwards, ends next to the plot
                if self.orientation == "bottom":
                    y_near, box = bounds.top() + offset, QRectF(-adv, -h / 2, adv, h)
                    ink = QRectF(c + ink_top, y_near, ink_bottom - ink_top, adv)
                else:
                    y_near, box = bounds.bottom() - offset, QRectF(0, -h / 2, adv, h)
                    ink = QRectF(c + ink_top, y_near - adv, ink_bottom - ink_top, adv)
                box = (c, y_near, box)
            else:
                if self.orientation == "left":
                    left = bounds.right() - offset - adv
                else:
                    left = bounds.left() + offset
                box = QRectF(left, c - h / 2, adv, h)
                ink = QRectF(left, c + ink_top, adv, ink_bottom - ink_top)
            out.append((idx, box, ink, label))
        if must or (self.horizontal and thinned and not self.rotated):
            # a label pushed inside at an end, or one shown between the k-th ones, may meet a neighbour: kept are
            # the emphasised, then the named (in their order), then the k-th ones, each where it touches none kept
            gap = self._sparse_gap() if self.horizontal and self.mode == "sparse" else LABEL_GAP_PX
            out = _apart(out, [self.emphasis, *({i} for i in self.named)], self.horizontal, gap)
        return out

    # --- pyqtgraph hooks ------------------------------------------------------------------------------------
    def setRange(self, mn, mx):
        # the view announces its range after each result, mostly the same: then the picture stands
        if self.picture is not None and [mn, mx] == self.range:
            return
        super().setRange(mn, mx)

    def tickValues(self, minVal, maxVal, size):
        n = len(self.labels)
        minVal, maxVal = min(minVal, maxVal), max(minVal, maxVal)  # an inverted view passes them reversed
        if n == 0 or size <= 0 or maxVal <= minVal:
            return []
        step = self.label_step(size / (maxVal - minVal))
        if step > 1 and (self.emphasis or self.named) and self.linkedView() is not None:
            return [(float(step), [idx + 0.5 for idx, *_rest in self._layout()])]  # a tick at each shown label
        first = max(0, math.ceil(minVal - 0.5))
        first += (-first) % step
        last = min(n - 1, math.floor(maxVal - 0.5))
        return [(float(step), [i + 0.5 for i in range(first, last + 1, step)])]

    def _special(self) -> bool:
        """Drawn as pyqtgraph draws an axis (grid lines, faded or hand-set ticks): modes the views here do not use."""
        return (
            self.grid is not False
            or self.style["tickAlpha"] is not None
            or any(self.style["stopAxisAtTick"])
            or self._tickLevels is not None
        )

    def paint(self, p, opt, widget):
        """Draw straight onto ``p``: the item's cached pixmap (``DeviceCoordinateCache``), or an export's painter.
        pyqtgraph's axis records its drawing as a ``QPicture`` and plays it, a second copy the cache makes useless."""
        if self._special():
            if self.picture is _PAINTED:
                self.picture = None
            return super().paint(p, opt, widget)
        p.save()
        try:
            if self.style["tickFont"]:
                p.setFont(self.style["tickFont"])
            specs = self._specs(p.worldTransform().map)
            if specs is not None:
                self.drawPicture(p, *specs)
        finally:
            p.restore()
        self.picture = _PAINTED  # (what tells pyqtgraph, setRange and _changed that the drawing is current)

    def generateDrawSpecs(self, p):
        """The axis line and a tick at each labelled token, placed as pyqtgraph places them; its general version
        also measures every tick's text, which this axis lays out (``_layout``) and draws (``drawPicture``)."""
        if self._special():
            shown = self.style["showValues"]
            self.style["showValues"] = False
            try:
                return super().generateDrawSpecs(p)
            finally:
                self.style["showValues"] = shown
        return self._specs(self.mapToDevice)

    def _specs(self, to_device):
        """``generateDrawSpecs`` for this axis; ``to_device`` maps a point of the axis to the painter's device."""
        bounds = self.mapRectFromParent(self.geometry())
        side = {  # the axis line's ends, where ticks start, which way they point, the axis they run along
            "left": (bounds.topRight() + QPointF(-1, -1), bounds.bottomRight() + QPointF(-1, 1), bounds.right(), -1),
            "right": (bounds.topLeft() + QPointF(1, -1), bounds.bottomLeft() + QPointF(1, 1), bounds.left(), 1),
            "top": (bounds.bottomLeft() + QPointF(-1, -1), bounds.bottomRight() + QPointF(1, -1), bounds.bottom(), -1),
            "bottom": (bounds.topLeft() + QPointF(-1, 1), bounds.topRight() + QPointF(1, 1), bounds.top(), 1),
        }
        start, end, stop, direction = side[self.orientation]
        a, b = to_device(start), to_device(end)
        if a is None or b is None:
            return None
        length = math.hypot(b.x() - a.x(), b.y() - a.y())
        if length == 0:
            return None
        lo, hi = self.range
        dif = hi - lo
        if dif == 0:
            scale, offset = 1.0, 0.0
        elif self.horizontal:
            scale = bounds.width() / dif
            offset = lo * scale
        else:
            scale = -bounds.height() / dif
            offset = lo * scale - bounds.height()
        xmin, xmax = sorted((lo * scale - offset, hi * scale - offset))
        ticks = []
        for level, (_spacing, values) in enumerate(self.tickValues(lo, hi, length)):
            pen = self.tickPen()
            if pen.brush().style() == Qt.SolidPattern:
                pen = QPen(pen)
                colour = QColor(pen.color())
                colour.setAlpha(int(255 / (level + 1)))
                pen.setColor(colour)
            tip = stop + self.style["tickLength"] / (level * 0.5 + 1.0) * direction
            for v in values:
                x = v * scale - offset
                if xmin <= x <= xmax:
                    if self.horizontal:
                        ticks.append((pen, QPointF(x, stop), QPointF(x, tip)))
                    else:
                        ticks.append((pen, QPointF(stop, x), QPointF(tip, x)))
        return (self.pen(), start, end), ticks, []

    def tickStrings(self, values, scale, spacing):
        # a short stand-in (the index) passes pyqtgraph's bounds checks; drawPicture draws the real label
        return [str(int(v)) for v in values]

    def drawPicture(self, p, axisSpec, tickSpecs, textSpecs):
        """The axis line, the ticks (one call for the ticks of each pen) and the labels (``_layout``)."""
        p.setRenderHint(QPainter.Antialiasing, False)
        p.setRenderHint(QPainter.TextAntialiasing, True)
        pen, start, end = axisSpec
        p.setPen(pen)
        p.drawLine(start, end)
        for tick_pen, group in itertools.groupby(tickSpecs, key=lambda spec: spec[0]):
            p.setPen(tick_pen)
            p.drawLines([QLineF(a, b) for _pen, a, b in group])
        font, bold = self._fonts()
        p.setClipRect(self.boundingRect())
        laid_out = self._layout()
        self._drawn = self._as_drawn(laid_out)
        places = self._text_places(laid_out, font, bold)
        for emphasised, pen in ((False, self.textPen()), (True, pg.mkPen(self.emphasis_colour))):
            group = places[emphasised]
            if not group:
                continue
            p.setFont(bold if emphasised else font)
            p.setPen(pen)
            for label, turned, start in group:
                if turned is not None:  # rotated: from a point on the axis, reading upwards
                    p.save()
                    p.translate(turned)
                    p.rotate(-90)
                    p.drawText(start, label)
                    p.restore()
                else:
                    p.drawText(start, label)

    def _text_places(self, laid_out, font: QFont, bold: QFont) -> tuple[list, list]:
        """The labels of ``laid_out`` in the plain font and in the bold one (the emphasised): per label its text,
        where a rotated one's frame starts (None: upright) and where its text starts. Each label is drawn from a
        point on its baseline (a text in a rectangle, aligned, costs twice as much to draw); a label's box is
        exactly as wide as its text and one line high, so this is where the box would put it. Remembered for the
        last layout, fonts and emphasis (an axis is drawn again with them when it is uncovered or exported)."""
        key = (font.key(), bold.key(), frozenset(self.emphasis))
        cached = self._texts
        if cached is not None and cached[0] is laid_out and cached[1] == key:
            return cached[2]
        metrics = {False: QFontMetricsF(font), True: QFontMetricsF(bold)}
        centre = {k: fm.ascent() - fm.height() / 2 for k, fm in metrics.items()}  # baseline from a line's middle
        places: tuple[list, list] = ([], [])
        for idx, box, _ink, label in laid_out:
            emphasised = idx in self.emphasis
            if isinstance(box, tuple):  # rotated: (x, y, box in the turned frame), the text's end at the box's
                x, y, rect = box
                if self.orientation == "bottom":  # (set right: its end next to the plot)
                    left = rect.right() - metrics[emphasised].horizontalAdvance(label)
                else:
                    left = rect.left()
                start = QPointF(left, rect.center().y() + centre[emphasised])
                places[emphasised].append((label, QPointF(x, y), start))
            else:
                places[emphasised].append((label, None, QPointF(box.left(), box.center().y() + centre[emphasised])))
        self._texts = (laid_out, key, places)
        return places
