"""The four live panels and how they share the room: sizes come from the screen, not from the panels' wishes.

::

    ┌ Tokens ───────────────────────┐┌ Attention ─────────────────┐
    ├ Next token ──┬ Embeddings ────┤│  square heatmap  │ head    │
    │              │                ││                  │ grid    │
    └──────────────┴────────────────┘└────────────────────────────┘

The attention column gets the width its square heatmap needs at the area's height (capped at ``MAX_ATTENTION``
of the width); the left column keeps at least room for next token and embeddings side by side unless that would
make the heatmap smaller than ``SIDE_GOAL``, else they are stacked, and when three panels do not fit the height
at their smallest the embeddings map is left out (key 4 brings it), as it is when its panel beside next token
would not fit the height at its width (a paragraph wrapped to many lines would squash the map into a strip).
The tokens panel gets its controls and ``TOKEN_ROWS`` rows of chips (they scroll by whole rows). :func:`plan` is the
rule; ``LiveArea.fit`` applies it whenever the area is resized, until the user drags a splitter handle (then
their sizes stay, and View ▸ Reset layout goes back to the rule).

One panel can have the whole area (:meth:`LiveArea.show_only`): the window uses it for Focus (double-click a
title, keys 1–4) and for presenter mode's hero view.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QByteArray, Qt, Signal
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget

from explainer.ui.view_state import LIVE_PANELS
from explainer.ui.widgets.heatmap_area import DEFAULT_CHROME, arrange

HANDLE = 6
MAX_ATTENTION = 0.6  # share of the width
PAIR_MIN = 700  # next token and embeddings side by side need this much width
STACK_MIN = 440  # the left column's least width when they are stacked
SIDE_GOAL = 280  # the heatmap side worth narrowing the left column for
TOKEN_ROWS = 2


@dataclass(frozen=True)
class Plan:
    attention: int  # width of the attention column
    left: int  # width of the left column
    tokens: int  # height of the tokens panel
    lower: tuple[int, int]  # next token, embeddings: widths (side by side) or heights (stacked)
    side_by_side: bool
    side: int  # the heatmap side this gives
    dropped: str = ""  # a panel left out because the others need all the height ("embeddings")


@dataclass(frozen=True)
class Measures:
    """What the rule needs to know about the panels, in pixels."""

    attention_chrome: tuple[float, float] = (14.0, 110.0)  # the attention panel around its heatmap area
    heatmap_chrome: tuple[float, float] = DEFAULT_CHROME
    grid_beside: tuple[float, float] | None = (125.0, 290.0)
    grid_below: tuple[float, float] | None = (295.0, 120.0)
    tokens_height: float = 190.0  # controls plus TOKEN_ROWS rows of chips
    min_heights: tuple[float, float, float] = (170.0, 275.0, 200.0)  # tokens, next token, embeddings
    pair_min: float = PAIR_MIN
    stack_min: float = STACK_MIN
    next_token_min_width: float = 0.0
    # the embeddings panel's least height at a width (its paragraphs wrap: narrower needs taller)
    embeddings_height_at: Callable[[int], float] = lambda width: 0.0


def arrangement(m: Measures, width: float, height: float):
    cw, ch = m.attention_chrome
    return arrange(width - cw, height - ch, m.heatmap_chrome, m.grid_beside, m.grid_below)


def heatmap_side(m: Measures, width: float, height: float) -> int:
    return arrangement(m, width, height).side


def plan(width: int, height: int, m: Measures = Measures()) -> Plan:
    """Splitter sizes for a live area of ``width`` × ``height`` pixels."""
    usable = max(1, width - HANDLE)
    cap = int(usable * MAX_ATTENTION)
    best = arrangement(m, cap, height)

    def as_good(a) -> bool:  # as large a square, and the head grid too if the widest column has it
        return a.side >= best.side - 2 and (a.grid != "none" or best.grid == "none")

    lo, hi = 1, cap  # the narrowest attention column that is as good as the widest
    while lo < hi:
        mid = (lo + hi) // 2
        if as_good(arrangement(m, mid, height)):
            hi = mid
        else:
            lo = mid + 1
    ideal = lo
    attention = min(ideal, int(usable - m.pair_min))
    pair = attention >= 1 and (attention == ideal or heatmap_side(m, attention, height) >= SIDE_GOAL)
    if not pair:
        attention = max(1, min(ideal, int(usable - m.stack_min)))
    left = usable - attention
    tokens = int(max(m.min_heights[0], min(m.tokens_height, height * 0.4)))
    rest = max(1, height - tokens - HANDLE)
    dropped = ""
    nt = int((left - HANDLE) * 0.55)
    emb_beside = left - HANDLE - max(nt, int(m.next_token_min_width))  # (the splitter keeps next token's least)
    if pair and (emb_beside <= 0 or rest < m.embeddings_height_at(emb_beside)):  # the map would be a strip
        lower, dropped = (left, 0), "embeddings"
    elif pair:
        lower = (nt, left - HANDLE - nt)
    elif rest - HANDLE < m.min_heights[1] + m.min_heights[2]:  # three do not fit: the map is left out
        lower, dropped = (rest, 0), "embeddings"
    else:
        emb = max(int(m.min_heights[2]), (rest - HANDLE) // 2)
        lower = (rest - HANDLE - emb, emb)
    return Plan(attention, left, tokens, lower, pair, heatmap_side(m, attention, height), dropped)


class LiveArea(QWidget):
    """The live panels in splitters; ``panels`` maps the keys of ``LIVE_PANELS`` to the panels."""

    focusRequested = Signal(str)  # a panel's title was double-clicked: its key
    droppedChanged = Signal(str)  # the panel left out for lack of room ("" when all fit again)

    def __init__(self, panels: dict, parent: QWidget | None = None):
        super().__init__(parent)
        self.panels = panels
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.hsplit = QSplitter(Qt.Horizontal)
        self.left = QSplitter(Qt.Vertical)
        self.lower = QSplitter(Qt.Horizontal)
        self.left.addWidget(panels["tokens"])
        self.left.addWidget(self.lower)
        self.lower.addWidget(panels["next_token"])
        self.lower.addWidget(panels["embeddings"])
        self.hsplit.addWidget(self.left)
        self.hsplit.addWidget(panels["attention"])
        lay.addWidget(self.hsplit)
        self.splitters = {"hsplit": self.hsplit, "left": self.left, "lower": self.lower}
        for sp in self.splitters.values():
            sp.setChildrenCollapsible(False)
            sp.setHandleWidth(HANDLE)
            sp.splitterMoved.connect(self._on_splitter_moved)
        for key, p in panels.items():
            p.titleDoubleClicked.connect(lambda key=key: self.focusRequested.emit(key))
            keys = LIVE_PANELS.index(key) + 1
            p._title.setToolTip(f"{p.title} — double-click or press {keys} to give it the whole area (again: back)")
        self.auto = True  # sizes follow the rule until the user drags a handle
        self.only: str | None = None
        self.plan: Plan | None = None
        self._refits = 0  # fits after a new measurement since the last resize (measurements settle in a few)
        panels["attention"].area.chromeMeasured.connect(self._on_measured)

    # --- the rule ---------------------------------------------------------------------------------------------------
    def measures(self) -> Measures:
        att = self.panels["attention"]
        area = att.area
        chrome = (14.0, 110.0)
        if att.isVisible() and area.height() > 0 and att.height() > area.height():
            chrome = (float(att.width() - area.width()), float(att.height() - area.height()))
        beside, below = area.grid_sizes()
        tok = self.panels["tokens"]
        view = tok.view
        rows = TOKEN_ROWS * view.chip_height + (TOKEN_ROWS - 1) * view.GAP_Y + 2 * view.MARGIN
        need = min(tok.scroll.content_height(), math.ceil(rows + view.GAP_Y / 2) + 2 * tok.scroll.frameWidth())
        if tok.isVisible() and tok.scroll.height() > 0:  # laid out: what the panel has besides its chips
            chrome_h = tok.height() - tok.scroll.height()
        else:
            chrome_h = tok.minimumSizeHint().height() - tok.scroll.minimumSizeHint().height()
        tokens_h = chrome_h + need
        nt, emb = self.panels["next_token"], self.panels["embeddings"]
        pair = nt.minimumSizeHint().width() + emb.minimumSizeHint().width() + HANDLE
        m = Measures()
        return Measures(
            attention_chrome=chrome,
            heatmap_chrome=(area._chrome[0], area._chrome[1] + area.label_depth),  # (with the column labels' rows)
            grid_beside=(beside.width(), beside.height()) if beside else m.grid_beside,
            grid_below=(below.width(), below.height()) if below else m.grid_below,
            tokens_height=float(tokens_h),
            pair_min=float(max(PAIR_MIN, pair)),
            stack_min=float(max(STACK_MIN, nt.minimumSizeHint().width(), emb.minimumSizeHint().width())),
            min_heights=tuple(float(p.minimumSizeHint().height()) for p in (tok, nt, emb)),
            next_token_min_width=float(nt.minimumSizeHint().width()),  # (the splitter keeps it)
            embeddings_height_at=lambda width: float(emb.layout().totalMinimumHeightForWidth(width)),
        )

    def fit(self) -> None:
        """Apply the rule to the current size (when the sizes are the rule's, not the user's)."""
        if not self.auto or self.only is not None or self.width() <= 0 or self.height() <= 0:
            return
        p = plan(self.width(), self.height(), self.measures())
        before, self.plan = (self.plan.dropped if self.plan else ""), p
        self.panels["embeddings"].setVisible(p.dropped != "embeddings")
        if p.dropped != before:
            self.droppedChanged.emit(p.dropped)
        self.lower.setOrientation(Qt.Horizontal if p.side_by_side else Qt.Vertical)
        for sp, sizes in (
            (self.hsplit, [p.left, p.attention]),
            (self.left, [p.tokens, max(1, self.height() - p.tokens - HANDLE)]),
            (self.lower, list(p.lower)),
        ):
            sp.blockSignals(True)
            sp.setSizes(sizes)
            sp.blockSignals(False)

    def reset(self) -> None:
        self.auto = True
        self.fit()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._refits = 0
        self.fit()

    def _on_measured(self) -> None:
        if self._refits < 3:
            self._refits += 1
            self.fit()

    def _on_splitter_moved(self, *_args) -> None:
        self.auto = False

    # --- one panel alone ----------------------------------------------------------------------------------------------
    def show_only(self, key: str | None) -> None:
        """Give panel ``key`` the whole area (None: every panel again, at the sizes they had)."""
        key = key if key in self.panels else None
        if key == self.only:
            return
        if self.only is None:
            self._saved = self.save_sizes()
        self.only = key
        target = self.panels.get(key) if key else None
        for p in self.panels.values():
            p.setVisible(target is None or p is target)
            p.set_alone(p is target)
        if target is None and self.plan is not None and self.plan.dropped:
            self.panels[self.plan.dropped].hide()
        self.left.setVisible(target is None or self.left.isAncestorOf(target))
        self.lower.setVisible(target is None or self.lower.isAncestorOf(target))
        if target is None:
            self.restore_sizes(getattr(self, "_saved", {}))
            self.fit()
        for sp in (self.lower, self.left, self.hsplit):  # lay the shown panel out now, not at the next event
            sp.refresh()

    # --- saving -------------------------------------------------------------------------------------------------------
    def save_sizes(self) -> dict[str, QByteArray]:
        return {k: sp.saveState() for k, sp in self.splitters.items()}

    def restore_sizes(self, states: dict) -> bool:
        ok = bool(states)
        for k, sp in self.splitters.items():
            st = states.get(k)
            if isinstance(st, QByteArray):
                ok = sp.restoreState(st) and ok
            else:
                ok = False
        return ok
