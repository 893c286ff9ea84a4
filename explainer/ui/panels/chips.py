"""ChipView: token chips painted by one widget, wrapped like text (a newline token ends its line).

Each chip shows the token's visible text (whitespace as ·, ⏎, →) with its id underneath. The view only knows
chips, not tokens: the Tokens panel builds them. Hover and click report the chip index; the tooltip comes from
a callback so it is built only when asked for.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QFrame, QScrollArea, QSizePolicy, QToolTip, QWidget

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

    def look(self) -> tuple:
        """What the chip shows (two chips that look the same have the same width)."""
        return self.label, self.sub, self.fill, self.border, self.line_break, self.italic


@dataclass
class ChipOverlay:
    """Numbers laid over the model's token chips (an attribution): each position's fill colour and small line,
    the column the numbers get in an export, and what a caption says about them."""

    fills: dict[int, str]
    subs: dict[int, str]
    column: str  # export column name
    values: dict[int, float]
    caption: str
    meta: dict = field(default_factory=dict)  # exported beside the rows


class ChipView(QWidget):
    chipHovered = Signal(int)  # -1 when the pointer leaves the chips
    chipClicked = Signal(int)
    contentHeightChanged = Signal()  # the chips need a different height (new chips, fonts or width)

    PAD_X, PAD_Y, GAP_X, GAP_Y, MARGIN = 7.0, 4.0, 5.0, 7.0, 4.0
    FIT_STEPS = (3.0, 2.5, 2.0, 1.75, 1.5, 1.25, 1.0)  # the magnifications ``ChipScrollArea`` tries, largest first

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
        self._measured_with: tuple = ()  # the fonts the chips' widths were measured in
        self.fit = 1.0  # magnification: chips drawn this much larger (a view alone with room to fill, see set_fit)

    def set_tooltip_provider(self, method: Callable[[int], str]) -> None:
        """``method(index) -> html``; held weakly (a bound method of the owner would make a reference cycle
        that the garbage collector frees at a random moment, possibly while Qt is painting)."""
        self._tooltip_for = weakref.WeakMethod(method) if hasattr(method, "__self__") else (lambda: method)

    # --- data -------------------------------------------------------------------------------------------------
    def set_chips(self, chips: list[Chip]) -> None:
        """Show ``chips``. Leading chips that look as before keep their width and place and are not drawn again
        (typing at the end of a long text changes the last chips only, often out of view)."""
        old = self.chips
        keep = 0
        fonts = (self._font.key(), self._small.key())  # presenter mode changes them
        if (
            type(self)._relayout is ChipView._relayout
            and self._laid_out_width == self.width()
            and fonts == self._measured_with
        ):
            n = min(len(old), len(chips))
            while keep < n and (old[keep] is chips[keep] or old[keep].look() == chips[keep].look()):
                keep += 1
        for c in chips[keep:]:
            c.width = max(self._fm.horizontalAdvance(c.label), self._fm_small.horizontalAdvance(c.sub)) + 2 * self.PAD_X
        dirty = [c.rect for c in old[keep:] if c.rect is not None]
        if 0 <= self.hovered < len(old) and old[self.hovered].rect is not None:
            dirty.append(old[self.hovered].rect)
        self.chips = old[:keep] + chips[keep:]
        self._measured_with = fonts
        self.hovered = -1
        if keep == 0:
            self._laid_out_width = -1
            self._relayout()
            self.update()
            return
        self._relayout(keep)
        for r in dirty + [c.rect for c in self.chips[keep:]]:
            self.update(r.toAlignedRect())

    def set_theme(self, theme: th.Theme) -> None:
        if theme != self.theme:
            self.theme = theme
            self.update()

    def set_marks(self, *, highlighted: set[int] | None = None, selected: set[int] | None = None) -> None:
        changed = set()
        if highlighted is not None:
            changed |= highlighted ^ self.highlighted
            self.highlighted = highlighted
        if selected is not None:
            changed |= selected ^ self.selected
            self.selected = selected
        for i in changed:  # the outline is drawn inside the chip
            if 0 <= i < len(self.chips) and self.chips[i].rect is not None:
                self.update(self.chips[i].rect.toAlignedRect())

    @property
    def chip_height(self) -> float:
        """A chip's height before magnification (``fit``)."""
        return self._fm.height() + self._fm_small.height() + 2 * self.PAD_Y

    def set_fit(self, fit: float) -> None:
        """Draw everything ``fit`` times larger (chips, letters, gaps); the chips wrap in the width divided by it.
        ``Chip.rect`` stays in the view's own pixels."""
        if fit != self.fit:
            self.fit = fit
            self._laid_out_width = -1
            self._relayout()
            self.update()

    def height_at(self, width: float, fit: float) -> float:
        """The height the chips would need in ``width`` pixels, magnified ``fit`` times."""
        if not self.chips:
            return 2 * self.MARGIN * fit
        return max(r.bottom() for r in self._flow(width, fit=fit)) + self.MARGIN * fit

    # --- layout -----------------------------------------------------------------------------------------------
    def _flow(self, width: float, start: int = 0, fit: float | None = None) -> list[QRectF]:
        """Each chip's rectangle when the chips wrap like text in ``width`` pixels, from chip ``start`` on (the
        chips before it stay where they are), magnified ``fit`` times (default: the view's)."""
        f = self.fit if fit is None else fit
        width = max(60, width / f)  # laid out at the fonts' size, then magnified
        x, y = self.MARGIN, self.MARGIN
        h = self.chip_height
        if start > 0:
            before = self.chips[start - 1].rect
            x, y = before.right() / f + self.GAP_X, before.top() / f
            if self.chips[start - 1].line_break:
                x, y = self.MARGIN, y + h + self.GAP_Y
        rects = []
        for c in self.chips[start:]:
            w = min(c.width, width - 2 * self.MARGIN)
            if x > self.MARGIN and x + w > width - self.MARGIN:
                x, y = self.MARGIN, y + h + self.GAP_Y
            rects.append(QRectF(x * f, y * f, w * f, h * f))
            x += w + self.GAP_X
            if c.line_break:
                x, y = self.MARGIN, y + h + self.GAP_Y
        return rects

    def _relayout(self, start: int = 0) -> None:
        for c, r in zip(self.chips[start:], self._flow(self.width(), start)):
            c.rect = r
        bottom = max((c.rect.bottom() for c in self.chips), default=self.MARGIN * self.fit) + self.MARGIN * self.fit
        changed = bottom != self._content_height
        self._content_height = bottom
        self._laid_out_width = self.width()
        if int(bottom) != self.minimumHeight():
            self.setMinimumHeight(int(bottom))
            self.updateGeometry()
        if changed:
            self.contentHeightChanged.emit()

    def content_height_for(self, width: float) -> float:
        """The height the chips need when the view is ``width`` pixels wide (margins included). A subclass with
        a layout of its own answers with its current height."""
        if width == self._laid_out_width or not self.chips or type(self)._relayout is not ChipView._relayout:
            return max(self._content_height, self.MARGIN * 2)
        return self.height_at(width, self.fit)

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
        f = self.fit
        if f != 1.0:
            p.scale(f, f)
        for i, c in enumerate(self.chips):
            r = c.rect
            if r is None or not r.intersects(exposed):
                continue
            if f != 1.0:
                r = QRectF(r.x() / f, r.y() / f, r.width() / f, r.height() / f)
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


class ChipScrollArea(QScrollArea):
    """Scrolls a ``ChipView`` vertically and is exactly as tall as its chips need: never taller (so what follows
    sits right under the chips), shorter only when the layout has no more room (then it scrolls), and never
    shorter than one row of chips. When it scrolls, it shows whole rows of chips only and scrolls by rows (the
    space below the last whole row stays empty), so no chip is ever cut in half.

    Filling (``set_fill``, for a view shown alone, as in presenter mode): the chips are magnified
    (``ChipView.set_fit``) as far as they still fit, without scrolling, in ``room()`` pixels (up to 3×): the
    height the owner can give them, the area's own and the spare height below what follows it. The area stays as
    tall as its magnified chips, so what follows still sits right under them."""

    def __init__(self, view: ChipView, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWidget(view)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setFrameShape(QFrame.NoFrame)
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Maximum)
        self.setMinimumHeight(math.ceil(view.chip_height + 2 * view.MARGIN) + 2 * self.frameWidth())
        view.contentHeightChanged.connect(self._on_content_changed)
        self._hinted_width = -1
        self.fill = False
        self.room: Callable[[], int] = self.height  # the height the chips may fill (set by the owner)
        self._refit = QTimer(self, singleShot=True, interval=0)  # once the layout has placed everything
        self._refit.timeout.connect(self._fit_chips)
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)

    def set_fill(self, on: bool) -> None:
        if on == self.fill:
            return
        self.fill = on
        self._fit_chips()
        self.updateGeometry()
        if on:
            self.refit_later()

    def refit_later(self) -> None:
        """Filling: choose the magnification again once the layout has settled (the room may have changed)."""
        if self.fill:
            self._refit.start()

    def _fit_chips(self) -> None:
        """Filling: the largest magnification at which the chips fit ``room()``; else none."""
        view = self.widget()
        if type(view)._relayout is not ChipView._relayout:
            return
        fit = 1.0
        if self.fill and view.chips:
            width = max(1, self.width() - 2 * self.frameWidth())
            room = self.room() - 2 * self.frameWidth()
            fit = next((f for f in view.FIT_STEPS if view.height_at(width, f) <= room), 1.0)
        view.set_fit(fit)

    def content_height(self) -> int:
        """The height the chips need at the area's width, without a scroll bar."""
        view = self.widget()
        width = max(1, self.width() - 2 * self.frameWidth())
        return math.ceil(view.content_height_for(width)) + 2 * self.frameWidth()

    def sizeHint(self) -> QSize:
        return QSize(super().sizeHint().width(), max(self.minimumHeight(), self.content_height()))

    def minimumSizeHint(self) -> QSize:
        # QAbstractScrollArea's (room for both scroll bars) would be taken as a floor for the size hint
        return QSize(super().minimumSizeHint().width(), self.minimumHeight())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.refit_later()  # (the room counts heights the layout may not have placed yet)
        self._update_scroll_bar()
        if event.size().width() != self._hinted_width:  # the chips wrap differently: ask for a new height
            self._hinted_width = event.size().width()
            self.updateGeometry()

    def _on_content_changed(self) -> None:
        if self.fill and not self._refit.isActive():
            self._fit_chips()
        self._update_scroll_bar()
        self.updateGeometry()

    def row_pitch(self) -> float:
        """Pixels from one row of chips to the next (0 for a view that lays its chips out its own way)."""
        view = self.widget()
        if type(view)._relayout is not ChipView._relayout:
            return 0.0
        return (view.chip_height + view.GAP_Y) * view.fit

    def _snap_rows(self) -> None:
        """Show whole rows only: the viewport ends after the last row that fits completely."""
        view, pitch = self.widget(), self.row_pitch()
        extra = 0
        if pitch > 0 and self.content_height() > self.height():
            room = self.height() - 2 * self.frameWidth()
            margin, chip, gap = view.MARGIN * view.fit, view.chip_height * view.fit, view.GAP_Y * view.fit
            rows = max(1, int((room - 2 * margin - chip) // pitch) + 1)
            shown = math.ceil(margin + (rows - 1) * pitch + chip + gap / 2)
            extra = max(0, room - shown)
            bar = self.verticalScrollBar()
            bar.setSingleStep(int(pitch))
            bar.setPageStep(int(rows * pitch))
        if self.viewportMargins().bottom() != extra:
            self.setViewportMargins(0, 0, 0, extra)

    def _on_scrolled(self, value: int) -> None:
        pitch = self.row_pitch()
        if pitch > 0:
            snapped = min(self.verticalScrollBar().maximum(), int(round(round(value / pitch) * pitch)))
            if snapped != value:
                self.verticalScrollBar().setValue(snapped)

    def _update_scroll_bar(self) -> None:
        """A scroll bar only when the chips, wrapped at the full width, do not fit: decided at the full width, so
        a bar once shown (which narrows the chips and so makes them taller) does not keep itself on."""
        policy = Qt.ScrollBarAlwaysOff if self.content_height() <= self.height() else Qt.ScrollBarAsNeeded
        if self.verticalScrollBarPolicy() != policy:
            self.setVerticalScrollBarPolicy(policy)
        self._snap_rows()


class HeatLegend(QWidget):
    """A small horizontal colour bar for the surprisal scale."""

    def __init__(self, max_bits: float = 16.0, parent: QWidget | None = None):
        super().__init__(parent)
        self.max_bits = max_bits
        self.theme = th.LIGHT
        f = QFont(self.font())
        f.setPointSizeF(th.SMALL_FONT_PT)
        self.setFont(f)
        self.setToolTip("Surprisal = −log₂ p: 1 bit is a coin flip's worth of surprise; 10 bits ≈ 1 in 1000.")

    def labels(self, width: float | None = None) -> tuple[str, str]:
        """The end labels: in words where ``width`` has room for them beside a bar, else the bare numbers (never
        cut); ``None``: the words."""
        words = "expected (0 bits)", f"surprising ({self.max_bits:g}+ bits)"
        if width is None or width >= self._needed(words, 60):
            return words
        return "0 bits", f"{self.max_bits:g}+ bits"

    def _label_widths(self, labels: tuple[str, str]) -> tuple[float, float]:
        fm = QFontMetricsF(self.font())
        return tuple(fm.horizontalAdvance(s) + 6 for s in labels)

    def _needed(self, labels: tuple[str, str], bar: int) -> int:
        return math.ceil(sum(self._label_widths(labels)) + bar)

    def sizeHint(self) -> QSize:
        return QSize(self._needed(self.labels(), 80), int(QFontMetricsF(self.font()).height() + 14))

    def minimumSizeHint(self) -> QSize:
        """The numbers whole beside a short bar (the fonts grow in presenter mode: measured, not fixed)."""
        return QSize(self._needed(self.labels(0), 24), int(QFontMetricsF(self.font()).height() + 8))

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.FontChange:
            self.updateGeometry()

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        fm = QFontMetricsF(self.font())
        left_label, right_label = self.labels(self.width())
        lw, rw = self._label_widths((left_label, right_label))
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
