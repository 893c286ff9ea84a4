"""The next-token panel's widgets: the candidates' bars (label | model bar | sampling bar, clickable and usable from
the keyboard) and the arrow, page, Home and End keys on a labelled slider."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QSlider, QWidget

from explainer.ui import theme as th

RAW_COLOUR, SAMPLE_COLOUR = th.ACCENTS[0], th.ACCENTS[1]
MAX_ROWS = 15


class SliderKeys(QObject):
    """Arrow keys, PageUp / PageDown, Home / End on a labelled slider, in its own steps. superqt's float slider
    takes focus but ignores the keyboard; its integer one only listens while its inner slider has the focus."""

    STEPS = {Qt.Key_Right: 1, Qt.Key_Up: 1, Qt.Key_Left: -1, Qt.Key_Down: -1}

    def __init__(self, labelled: QWidget):
        super().__init__(labelled)
        self.labelled = labelled
        inner = labelled.findChild(QSlider)
        if inner is not None:
            labelled.setFocusProxy(inner)  # Tab and clicks land on the part that draws the focus
            inner.installEventFilter(self)
        labelled.installEventFilter(self)

    def eventFilter(self, obj, ev) -> bool:
        if ev.type() != QEvent.KeyPress or ev.modifiers() & (Qt.ControlModifier | Qt.AltModifier | Qt.MetaModifier):
            return False
        s, key = self.labelled, ev.key()
        if key in self.STEPS:
            s.setValue(round(s.value() + self.STEPS[key] * s.singleStep(), 6))  # no 0.9999999 after ← →
        elif key in (Qt.Key_PageUp, Qt.Key_PageDown):
            s.setValue(round(s.value() + (1 if key == Qt.Key_PageUp else -1) * s.pageStep(), 6))
        elif key in (Qt.Key_Home, Qt.Key_End):
            s.setValue(s.minimum() if key == Qt.Key_Home else s.maximum())
        else:
            return False
        return True  # setValue clamps to the range


class BarRows:
    """What the widgets of rows of bars share: row and header heights from their fonts' metrics (``_fm``,
    ``_fm_small``), how many rows fit, their size hints, and the row under the pointer (``hovered``, drawn lit by the
    widget, with a pointing hand; ``row_at(y)`` is the widget's, -1 off the rows). ``max_rows``: the most rows shown."""

    max_rows = MAX_ROWS

    @property
    def row_height(self) -> float:
        return self._fm.height() * 1.45

    @property
    def header_height(self) -> float:
        return self._fm_small.height() + 6

    def capacity(self) -> int:
        return max(3, min(self.max_rows, int((self.height() - self.header_height) / self.row_height)))

    def sizeHint(self) -> QSize:
        return QSize(420, int(self.header_height + 8 * self.row_height))

    def minimumSizeHint(self) -> QSize:
        return QSize(260, int(self.header_height + 3 * self.row_height))

    def mouseMoveEvent(self, event) -> None:
        i = self.row_at(event.position().y())
        if i != self.hovered:
            self.hovered = i
            self.setCursor(Qt.PointingHandCursor if i >= 0 else Qt.ArrowCursor)
            self.update()

    def leaveEvent(self, event) -> None:
        self.hovered = -1
        self.update()

    def _colour(self, name: str) -> QColor:
        """``QColor(name)``, made once per colour (a row of bars asks for the same few at every drawing)."""
        cache = self.__dict__.setdefault("_colours", {})
        c = cache.get(name)
        if c is None:
            c = cache[name] = QColor(name)
        return c

    def _shown_label(self, text: str, room: float) -> tuple[str, float]:
        """``text`` elided to ``room`` pixels in the row font, and its width (remembered: the rows' labels repeat
        from one drawing to the next)."""
        key = (text, room, self._font.key())
        cache = self.__dict__.setdefault("_labels_shown", {})
        hit = cache.get(key)
        if hit is None:
            if len(cache) > 2000:
                cache.clear()
            label = self._fm.elidedText(text, Qt.ElideRight, room)
            hit = cache[key] = (label, self._fm.horizontalAdvance(label))
        return hit

    def _paint_rows(self, p: QPainter, n: int, label_w: float, bar_w: float, columns) -> None:
        """Rows 0 … ``n`` - 1, the one under the pointer lit: each row's label, elided and set right in ``label_w``
        pixels, and per column ``(x0, fractions, colour, texts)`` a bar of the row's fraction (0–1) of ``bar_w``
        over its track at ``x0``, with the row's text after it. Drawn a kind at a time (the tracks, each column's
        bars, the labels, the texts), which nothing overlaps: a few painter calls for all the rows."""
        t, rh, top = self.theme, self.row_height, self.header_height
        if 0 <= self.hovered < n:
            p.fillRect(QRectF(0, top + self.hovered * rh, self.width(), rh), self._colour(t.grid))
        bar_top, bar_h = top + rh * 0.18, rh * 0.64
        p.setPen(Qt.NoPen)
        p.setBrush(self._colour(t.grid if t.is_dark else t.surface))
        p.drawRects([QRectF(x0, bar_top + i * rh, bar_w, bar_h) for x0, *_rest in columns for i in range(n)])
        for x0, fractions, colour, _texts in columns:
            bars = [
                QRectF(x0, bar_top + i * rh, bar_w * min(1.0, fractions[i]), bar_h)
                for i in range(n)
                if fractions[i] > 0
            ]
            if bars:
                p.setBrush(self._colour(colour))
                p.drawRects(bars)
        p.setBrush(Qt.NoBrush)
        p.setPen(self._colour(t.text))
        p.setFont(self._font)
        base = top + (rh + self._fm.ascent() - self._fm.descent()) / 2
        for i in range(n):
            label, width = self._shown_label(self.labels[i], label_w - 12)
            p.drawText(QPointF(label_w - 8 - width, base + i * rh), label)
        p.setFont(self._small)
        base = top + (rh + self._fm_small.ascent()) / 2 - 2
        for x0, _fractions, _colour, texts in columns:
            for i in range(n):
                p.drawText(QPointF(x0 + bar_w + 4, base + i * rh), texts[i])


class BarsView(BarRows, QWidget):
    """Custom-painted rows: label | model bar | sampling bar, with percentages big enough for a projector."""

    rowClicked = Signal(int)  # a click, or Enter / Space on the keyboard's row

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.StrongFocus)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setToolTip(
            "A full bar is 100 %. Click a row, or choose it with ↑ / ↓ and Enter, to continue the text with that token."
        )
        self.setAccessibleName("Next-token candidates")
        self.theme = th.LIGHT
        self.labels: list[str] = []
        self.raw: list[float] = []
        self.sampled: list[float] = []
        self.marked = -1  # the row of the token that actually follows
        self.hovered = -1
        self.current = -1  # the keyboard's row (drawn with a focus frame while the bars have the focus)
        self._font = QFont(self.font())
        self._font.setPointSizeF(th.LABEL_FONT_PT)
        self._small = QFont(self.font())
        self._small.setPointSizeF(th.SMALL_FONT_PT + 1)
        self._fm, self._fm_small = QFontMetricsF(self._font), QFontMetricsF(self._small)
        self._widest: tuple | None = None  # (labels, font key, the widest label's advance), see _geometry

    def set_rows(self, labels: list[str], raw: list[float], sampled: list[float], marked: int = -1) -> None:
        self.labels, self.raw, self.sampled, self.marked = labels, raw, sampled, marked
        if self.current >= 0:
            self.set_current(min(self.current, self.visible_rows() - 1) if labels else -1)
        self.update()

    def set_current(self, row: int) -> None:
        """Move the keyboard's row (clamped to the rows on screen; -1: none)."""
        row = max(-1, min(row, self.visible_rows() - 1)) if self.labels else -1
        self.current = row
        if 0 <= row < len(self.labels):
            v = self.raw[row] if row < len(self.raw) else 0.0
            self.setAccessibleDescription(f"{self.labels[row]}: {100 * v:.1f} %")
        self.update()

    def visible_rows(self) -> int:
        return max(1, min(len(self.labels), int((self.height() - self.header_height) / self.row_height)))

    def _geometry(self):
        widest = self._widest
        if widest is None or widest[0] is not self.labels or widest[1] != self._font.key():
            advance = max([self._fm.horizontalAdvance(s) for s in self.labels[:MAX_ROWS]] + [40.0])
            widest = self._widest = (self.labels, self._font.key(), advance)
        label_w = min(self.width() * 0.34, widest[2] + 12)
        pct_w = self._fm_small.horizontalAdvance("100.0 %") + 8
        bar_w = max(20.0, (self.width() - label_w - 2 * pct_w - 8) / 2)
        return label_w, pct_w, bar_w

    def row_at(self, y: float) -> int:
        i = int((y - self.header_height) // self.row_height)
        return i if 0 <= i < self.visible_rows() and y >= self.header_height else -1

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        t = self.theme
        label_w, pct_w, bar_w = self._geometry()
        n = self.visible_rows() if self.labels else 0
        scale = 1.0  # bars always measure 0–100 %: the honest picture of how peaked the distribution is
        x_raw, x_smp = label_w, label_w + bar_w + pct_w + 8
        p.setFont(self._small)
        for x0, colour, title in ((x_raw, RAW_COLOUR, "model"), (x_smp, SAMPLE_COLOUR, "sampling")):
            p.fillRect(QRectF(x0, 4, 10, 10), QColor(colour))
            p.setPen(QColor(t.muted))
            title = self._fm_small.elidedText(title, Qt.ElideRight, bar_w + pct_w - 20)
            p.drawText(QPointF(x0 + 14, 4 + self._fm_small.ascent() - 1), title)
        columns = []
        for x0, values, colour in ((x_raw, self.raw, RAW_COLOUR), (x_smp, self.sampled, SAMPLE_COLOUR)):
            v = [values[i] if i < len(values) else 0.0 for i in range(n)]
            texts = ["cut" if x == 0 else f"{100 * x:.1f} %" if x >= 0.001 else "<0.1 %" for x in v]
            columns.append((x0, [x / scale for x in v], colour, texts))
        self._paint_rows(p, n, label_w, bar_w, columns)
        rh, top = self.row_height, self.header_height
        p.setBrush(Qt.NoBrush)
        if 0 <= self.marked < n:  # the token that follows in the text
            p.setPen(QPen(QColor(th.HIGHLIGHT), 2.5))
            p.drawRoundedRect(QRectF(1.5, top + self.marked * rh + 1.5, self.width() - 3, rh - 3), 5, 5)
        if 0 <= self.current < n and self.hasFocus():  # the keyboard's row
            p.setPen(QPen(QColor(t.text), 1.5, Qt.DashLine))
            p.drawRoundedRect(QRectF(4, top + self.current * rh + 4, self.width() - 8, rh - 8), 4, 4)
        p.end()

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.LeftButton:
            i = self.row_at(event.position().y())
            if i >= 0:
                self.set_current(i)
                self.rowClicked.emit(i)

    def keyPressEvent(self, event) -> None:
        key, n = event.key(), self.visible_rows() if self.labels else 0
        moves = {Qt.Key_Up: self.current - 1, Qt.Key_Down: self.current + 1, Qt.Key_Home: 0, Qt.Key_End: n - 1}
        if n and key in moves and not event.modifiers() & (Qt.ControlModifier | Qt.AltModifier):
            self.set_current(max(0, moves[key]))
        elif n and key in (Qt.Key_Return, Qt.Key_Enter, Qt.Key_Space) and 0 <= self.current < n:
            self.rowClicked.emit(self.current)
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def focusInEvent(self, event) -> None:
        super().focusInEvent(event)
        if self.current < 0 and self.labels:
            self.set_current(self.marked if self.marked >= 0 else 0)
        self.update()

    def focusOutEvent(self, event) -> None:
        super().focusOutEvent(event)
        self.update()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.update()
