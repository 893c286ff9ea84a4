"""ChipView: token chips painted by one widget, wrapped like text (a newline token ends its line).

Each chip shows the token's visible text (whitespace as ·, ⏎, →) with its id underneath. The view only knows
chips, not tokens: the Tokens panel builds them. Hover and click report the chip index; the tooltip comes from
a callback so it is built only when asked for.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Callable

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from explainer.ui import theme as th


@dataclass
class Chip:
    label: str  # the visible token text
    sub: str  # small line under it (the id)
    fill: str  # background colour #rrggbb
    border: str = ""  # "" = none; dashed outline for warnings
    line_break: bool = False  # start a new line after this chip (token ends with a newline)
    italic: bool = False
    # layout cache
    width: float = 0.0
    rect: QRectF | None = None


class ChipView(QWidget):
    chipHovered = Signal(int)  # -1 when the pointer leaves the chips
    chipClicked = Signal(int)

    PAD_X, PAD_Y, GAP_X, GAP_Y, MARGIN = 7.0, 4.0, 5.0, 7.0, 4.0

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
        self.chips: list[Chip] = []
        self.theme = th.LIGHT
        self._tooltip_for: Callable[[], Callable[[int], str] | None] = lambda: None
        self.hovered = -1
        self.highlighted: set[int] = set()  # linked highlight from other panels
        self.selected: set[int] = set()
        self._font = QFont(self.font())
        self._font.setPointSizeF(th.CHIP_FONT_PT)
        self._small = QFont(self.font())
        self._small.setPointSizeF(th.SMALL_FONT_PT)
        self._fm, self._fm_small = QFontMetricsF(self._font), QFontMetricsF(self._small)
        self._content_height = 0.0
        self._laid_out_width = -1

    def set_tooltip_provider(self, method: Callable[[int], str]) -> None:
        """``method(index) -> html``; held weakly (a bound method of the owner would make a reference cycle
        that the garbage collector frees at a random moment, possibly while Qt is painting)."""
        self._tooltip_for = weakref.WeakMethod(method) if hasattr(method, "__self__") else (lambda: method)

    # --- data -------------------------------------------------------------------------------------------------
    def set_chips(self, chips: list[Chip]) -> None:
        for c in chips:
            c.width = max(self._fm.horizontalAdvance(c.label), self._fm_small.horizontalAdvance(c.sub)) + 2 * self.PAD_X
        self.chips = chips
        self.hovered = -1
        self._laid_out_width = -1
        self._relayout()
        self.update()

    def set_theme(self, theme: th.Theme) -> None:
        self.theme = theme
        self.update()

    def set_marks(self, *, highlighted: set[int] | None = None, selected: set[int] | None = None) -> None:
        if highlighted is not None:
            self.highlighted = highlighted
        if selected is not None:
            self.selected = selected
        self.update()

    @property
    def chip_height(self) -> float:
        return self._fm.height() + self._fm_small.height() + 2 * self.PAD_Y

    # --- layout -----------------------------------------------------------------------------------------------
    def _relayout(self) -> None:
        width = max(60, self.width())
        x, y = self.MARGIN, self.MARGIN
        h = self.chip_height
        for c in self.chips:
            w = min(c.width, width - 2 * self.MARGIN)
            if x > self.MARGIN and x + w > width - self.MARGIN:
                x, y = self.MARGIN, y + h + self.GAP_Y
            c.rect = QRectF(x, y, w, h)
            x += w + self.GAP_X
            if c.line_break:
                x, y = self.MARGIN, y + h + self.GAP_Y
        bottom = (max((c.rect.bottom() for c in self.chips), default=self.MARGIN) + self.MARGIN)
        self._content_height = bottom
        self._laid_out_width = self.width()
        if int(bottom) != self.minimumHeight():
            self.setMinimumHeight(int(bottom))
            self.updateGeometry()

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return int(self._content_height)

    def sizeHint(self) -> QSize:
        return QSize(400, int(max(self._content_height, self.chip_height + 2 * self.MARGIN)))

    def resizeEvent(self, event) -> None:
        if event.size().width() != self._laid_out_width:
            self._relayout()
        super().resizeEvent(event)

    def chip_at(self, pos: QPointF) -> int:
        for i, c in enumerate(self.chips):
            if c.rect is not None and c.rect.contains(pos):
                return i
        return -1

    # --- painting -----------------------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        exposed = QRectF(event.rect())
        h_top = self._fm.ascent() + self.PAD_Y
        for i, c in enumerate(self.chips):
            r = c.rect
            if r is None or not r.intersects(exposed):
                continue
            p.setPen(Qt.NoPen)
            p.setBrush(QColor(c.fill))
            p.drawRoundedRect(r, 6, 6)
            if c.border:
                pen = QPen(QColor(c.border), 1.5, Qt.DashLine)
                p.setPen(pen)
                p.setBrush(Qt.NoBrush)
                p.drawRoundedRect(r.adjusted(0.75, 0.75, -0.75, -0.75), 6, 6)
            fg = QColor(th.text_on(c.fill))
            font = QFont(self._font)
            font.setItalic(c.italic)
            p.setFont(font)
            p.setPen(fg)
            label = self._fm.elidedText(c.label, Qt.ElideRight, r.width() - 2 * self.PAD_X + 0.5)
            tw = self._fm.horizontalAdvance(label)
            p.drawText(QPointF(r.center().x() - tw / 2, r.top() + h_top), label)
            p.setFont(self._small)
            sub_colour = QColor(fg)
            sub_colour.setAlphaF(0.72)
            p.setPen(sub_colour)
            sw = self._fm_small.horizontalAdvance(c.sub)
            p.drawText(QPointF(r.center().x() - sw / 2, r.bottom() - self.PAD_Y - self._fm_small.descent()), c.sub)
            if i in self.selected or i in self.highlighted or i == self.hovered:
                width = 3.0 if i in self.selected else 2.0
                pen = QPen(QColor(th.HIGHLIGHT), width, Qt.SolidLine if i in self.selected else Qt.DotLine)
                p.setPen(pen)
                p.setBrush(Qt.NoBrush)
                p.drawRoundedRect(r.adjusted(width / 2, width / 2, -width / 2, -width / 2), 6, 6)
        p.end()

    # --- interaction -----------------------------------------------------------------------------------------------
    def mouseMoveEvent(self, event) -> None:
        i = self.chip_at(event.position())
        if i != self.hovered:
            self.hovered = i
            self.update()
            self.chipHovered.emit(i)
        super().mouseMoveEvent(event)

    def leaveEvent(self, event) -> None:
        if self.hovered != -1:
            self.hovered = -1
            self.update()
            self.chipHovered.emit(-1)
        super().leaveEvent(event)

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.LeftButton:
            i = self.chip_at(event.position())
            if i >= 0:
                self.chipClicked.emit(i)
        super().mousePressEvent(event)

    def event(self, e) -> bool:
        if e.type() == QEvent.ToolTip:
            i = self.chip_at(QPointF(e.pos()))
            provider = self._tooltip_for()
            if i >= 0 and provider is not None:
                QToolTip.showText(e.globalPos(), provider(i), self, self.chips[i].rect.toRect())
            else:
                QToolTip.hideText()
                e.ignore()
            return True
        return super().event(e)


class HeatLegend(QWidget):
    """A small horizontal colour bar for the surprisal scale."""

    def __init__(self, max_bits: float = 16.0, parent: QWidget | None = None):
        super().__init__(parent)
        self.max_bits = max_bits
        self.theme = th.LIGHT
        f = QFont(self.font())
        f.setPointSizeF(th.SMALL_FONT_PT)
        self.setFont(f)
        self.setMinimumWidth(180)
        self.setToolTip("Surprisal = −log₂ p: 1 bit is a coin flip's worth of surprise; 10 bits ≈ 1 in 1000.")

    def sizeHint(self) -> QSize:
        return QSize(260, int(QFontMetricsF(self.font()).height() + 14))

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        fm = QFontMetricsF(self.font())
        left_label, right_label = "expected (0 bits)", f"surprising ({self.max_bits:g}+ bits)"
        lw, rw = fm.horizontalAdvance(left_label) + 6, fm.horizontalAdvance(right_label) + 6
        bar = QRectF(lw, 3, max(20.0, self.width() - lw - rw), self.height() - 6)
        n = 32
        for k in range(n):
            seg = QRectF(bar.left() + bar.width() * k / n, bar.top(), bar.width() / n + 1, bar.height())
            p.fillRect(seg, QColor(th.surprisal_colour(self.max_bits * (k + 0.5) / n, self.max_bits)))
        p.setPen(QColor(self.theme.text))
        y = bar.center().y() + (fm.ascent() - fm.descent()) / 2
        p.drawText(QPointF(0, y), left_label)
        p.drawText(QPointF(bar.right() + 6, y), right_label)
        p.end()
