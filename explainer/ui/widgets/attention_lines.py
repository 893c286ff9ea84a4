"""BertViz-style view of one attention matrix: two columns of tokens joined by lines weighted by attention.

Left column: each token as a *query* (the one looking); right column: each token as a *key* (the one looked
at). A line from left ``q`` to right ``k`` has opacity and width proportional to the weight. Hovering a token
shows only its lines (a query's row or a key's column) and shades the tokens on the other side by weight.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QLineF, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QWidget

from explainer.ui import theme as th
from explainer.ui.widgets.token_axis import abbreviate

MIN_WEIGHT = 0.02  # lines below this weight are not drawn in the overview (they would be invisible)
LEVELS = 64  # line weights are drawn in this many steps of width and opacity, one pen per step
SMOOTH_WEIGHT = 0.3  # lines this heavy are antialiased; fainter ones (thin, mostly transparent) are not: at
# 400 tokens hundreds of them cross the screen, and smoothing them costs 3× the time without a visible gain


class AttentionLines(QWidget):
    tokenHovered = Signal(int)
    tokenSelected = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.NoFocus)
        self.matrix = np.zeros((0, 0), np.float32)
        self.labels: list[str] = []
        self.theme = th.LIGHT
        self.focus: tuple[str, int] | None = None  # ("q", i) or ("k", i): only that token's lines
        self.external = -1  # a token highlighted by another panel (shown like a hovered query)
        self.selected = -1
        self._cw: int | None = None  # the column width for these labels in this font (measured once)

    # --- data ------------------------------------------------------------------------------------------------
    def set_data(self, matrix: np.ndarray, labels: list[str]) -> None:
        self.matrix = np.nan_to_num(np.asarray(matrix, np.float32), nan=0.0)
        self.labels = [abbreviate(s, 16) for s in labels]
        self._cw = None
        self.updateGeometry()
        self.setMinimumHeight(self._content_height())
        self.update()

    def set_theme(self, theme: th.Theme) -> None:
        self.theme = theme
        self.update()

    def set_external(self, position: int) -> None:
        if position != self.external:
            self.external = position
            self.update()

    # --- geometry --------------------------------------------------------------------------------------------
    def _row_h(self) -> int:
        return QFontMetrics(self.font()).height() + 6

    def _top(self) -> int:
        return QFontMetrics(self.font()).height() + 14

    def _content_height(self) -> int:
        return self._top() + self._row_h() * len(self.labels) + 8

    def _columns(self) -> tuple[float, float]:
        """Left edge of the key column and right edge of the query column: at most 460 px apart, centred."""
        cw, W = self._col_w(), self.width()
        gap = min(W - 2 * cw, 460)
        left = (W - 2 * cw - gap) / 2
        return left, left + cw + gap

    def _col_w(self) -> int:
        if self._cw is None:
            fm = QFontMetrics(self.font())
            self._cw = max([fm.horizontalAdvance(s) for s in self.labels] + [fm.horizontalAdvance("query")]) + 16
        return self._cw

    def changeEvent(self, ev):
        if ev.type() == QEvent.FontChange:
            self._cw = None
        super().changeEvent(ev)

    def sizeHint(self) -> QSize:
        return QSize(2 * self._col_w() + 240, self._content_height())

    def _row_y(self, i: int) -> float:
        return self._top() + (i + 0.5) * self._row_h()

    def hit(self, pos: QPointF) -> tuple[str, int] | None:
        """Which token the point is over: ("q", i) in the left column, ("k", i) in the right one."""
        i = int((pos.y() - self._top()) // self._row_h())
        if not 0 <= i < len(self.labels):
            return None
        cw = self._col_w()
        ql, kl = self._columns()
        if ql <= pos.x() <= ql + cw:
            return ("q", i)
        if kl <= pos.x() <= kl + cw:
            return ("k", i)
        return None

    # --- events ----------------------------------------------------------------------------------------------
    def mouseMoveEvent(self, ev):
        hit = self.hit(ev.position())
        if hit != self.focus:
            self.focus = hit
            self.tokenHovered.emit(hit[1] if hit else -1)
            self.update()

    def leaveEvent(self, ev):
        if self.focus is not None:
            self.focus = None
            self.tokenHovered.emit(-1)
            self.update()

    def mousePressEvent(self, ev):
        hit = self.hit(ev.position())
        if hit is not None and ev.button() == Qt.LeftButton:
            self.selected = hit[1]
            self.tokenSelected.emit(hit[1])
            self.update()

    # --- painting --------------------------------------------------------------------------------------------
    def _weights_in_focus(self) -> tuple[str, int, np.ndarray] | None:
        focus = self.focus or (("q", self.external) if 0 <= self.external < len(self.labels) else None)
        if focus is None:
            return None
        kind, i = focus
        w = self.matrix[i, :] if kind == "q" else self.matrix[:, i]
        return kind, i, w

    @staticmethod
    def _draw_lines(p, colour, x0, x1, yq, yk, ws, top, bottom) -> None:
        """Lines from (x0, yq) to (x1, yk), cut to the rows being painted (a line from a far row costs the
        rasteriser its whole length otherwise), one pen per weight step, strongest on top."""
        dy = yk - yq
        flat = np.abs(dy) < 1e-9
        safe = np.where(flat, 1.0, dy)
        ta, tb = (top - yq) / safe, (bottom - yq) / safe
        t0 = np.where(flat, 0.0, np.clip(np.minimum(ta, tb), 0.0, 1.0))
        t1 = np.where(flat, 1.0, np.clip(np.maximum(ta, tb), 0.0, 1.0))
        xs0, xs1 = x0 + t0 * (x1 - x0), x0 + t1 * (x1 - x0)
        ys0, ys1 = yq + t0 * dy, yq + t1 * dy
        level = np.clip(np.rint(np.asarray(ws) * LEVELS), 0, LEVELS).astype(int)
        for lv in np.unique(level):
            w = float(lv) / LEVELS
            p.setRenderHint(QPainter.Antialiasing, w >= SMOOTH_WEIGHT)
            c = QColor(colour)
            c.setAlphaF(float(min(1.0, 0.08 + 0.92 * w)))
            p.setPen(QPen(c, 0.6 + 5.0 * w))
            sel = np.nonzero(level == lv)[0]
            p.drawLines([QLineF(xs0[j], ys0[j], xs1[j], ys1[j]) for j in sel])
        p.setRenderHint(QPainter.Antialiasing, True)

    def paintEvent(self, ev):
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing, True)
        p.fillRect(self.rect(), QColor(self.theme.background))
        n = len(self.labels)
        if n == 0:
            return
        cw, rh = self._col_w(), self._row_h()
        ql, kl = self._columns()
        x0, x1 = ql + cw + 4, kl - 4
        bold = QFont(self.font())
        bold.setBold(True)
        p.setPen(QColor(self.theme.muted))
        p.drawText(QRectF(ql, 2, cw - 8, self._top() - 6), int(Qt.AlignRight | Qt.AlignVCenter), "query")
        p.drawText(QRectF(kl + 8, 2, cw, self._top() - 6), int(Qt.AlignLeft | Qt.AlignVCenter), "key")
        top, bottom = ev.rect().top() - rh, ev.rect().bottom() + rh
        focus = self._weights_in_focus()
        base = QColor(th.ACCENTS[0])
        hl = QColor(th.HIGHLIGHT)
        # lines
        if focus is None:
            qs, ks = np.nonzero(self.matrix >= MIN_WEIGHT)
            ws = self.matrix[qs, ks]
            colour = base
        else:
            kind, i, w = focus
            others = np.nonzero(w > 0.002)[0]
            qs = np.full(others.shape, i) if kind == "q" else others
            ks = others if kind == "q" else np.full(others.shape, i)
            ws = w[others]
            colour = hl
        ys_q = self._top() + (qs + 0.5) * rh
        ys_k = self._top() + (ks + 0.5) * rh
        visible = (np.minimum(ys_q, ys_k) <= bottom) & (np.maximum(ys_q, ys_k) >= top)
        self._draw_lines(p, colour, x0, x1, ys_q[visible], ys_k[visible], ws[visible], top, bottom)
        # labels
        shade = np.zeros(n)
        if focus is not None:
            shade = np.clip(focus[2], 0, 1)
        for i in range(max(0, int((top - self._top()) // rh)), min(n, int((bottom - self._top()) // rh) + 1)):
            y = self._top() + i * rh
            for side in ("q", "k"):
                rect = QRectF(ql + 4, y, cw - 8, rh) if side == "q" else QRectF(kl + 4, y, cw - 8, rh)
                emph = (focus is not None and (focus[0], focus[1]) == (side, i)) or (side == "q" and i == self.selected)
                other_side = focus is not None and focus[0] != side
                if other_side and shade[i] > 0.002:
                    bg = QColor(th.HIGHLIGHT)
                    bg.setAlphaF(float(0.12 + 0.6 * shade[i]))
                    p.fillRect(rect, bg)
                if emph:
                    p.setPen(QPen(hl, 2))
                    p.drawRect(rect)
                p.setFont(bold if emph else self.font())
                p.setPen(QColor(self.theme.text))
                align = Qt.AlignRight if side == "q" else Qt.AlignLeft
                p.drawText(rect.adjusted(3, 0, -3, 0), int(align | Qt.AlignVCenter), self.labels[i])
        p.end()
