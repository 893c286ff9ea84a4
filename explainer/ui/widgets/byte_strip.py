"""ByteStrip: a text's characters, their UTF-8 bytes and the tokens those bytes went into, painted in one widget.

Per character (a column): the character, its code point (U+…), one cell per byte in hex. Under the bytes, one
band per token spans the bytes it is made of, coloured like the token chips. A token boundary that falls
*inside* a character (its bytes split over two tokens) is drawn as a thick line with ✂ above it; tokens that are
not a whole character (incomplete UTF-8) get a dashed border. Columns wrap to the widget's width.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontDatabase, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from explainer.core.bpe import ByteRow
from explainer.core.types import Token, visible_text
from explainer.ui import theme as th


@dataclass
class _Cell:
    row: int  # character row
    k: int  # byte within the character
    value: int
    token: int | None
    rect: QRectF
    index: int  # into ByteStrip.cells


class ByteStrip(QWidget):
    MARGIN, CHAR_GAP, LINE_GAP = 6.0, 10.0, 16.0

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
        self.theme = th.LIGHT
        self.rows: list[ByteRow] = []
        self.tokens: tuple[Token, ...] = ()
        self.cells: list[_Cell] = []
        self._glyph_rects: list[QRectF] = []
        self._cuts: list[tuple[float, float, float]] = []  # x, y_top, y_bottom of cuts inside characters
        self._big = QFont(self.font())
        self._big.setPointSizeF(th.CHIP_FONT_PT + 5)
        self._chip = QFont(self.font())
        self._chip.setPointSizeF(th.SMALL_FONT_PT + 3)
        self._small = QFont(self.font())
        self._small.setPointSizeF(th.SMALL_FONT_PT + 1)
        self._mono = QFontDatabase.systemFont(QFontDatabase.FixedFont)
        self._mono.setPointSizeF(th.LABEL_FONT_PT)
        self._fm_big, self._fm_chip = QFontMetricsF(self._big), QFontMetricsF(self._chip)
        self._fm_small, self._fm_mono = QFontMetricsF(self._small), QFontMetricsF(self._mono)
        self._height = 0.0
        self._laid_out_width = -1

    # --- data -------------------------------------------------------------------------------------------------
    def set_data(self, rows: list[ByteRow], tokens: tuple[Token, ...]) -> None:
        """``rows`` from ``core.bpe.byte_view(tokenization)``; ``tokens`` = ``tokenization.tokens``."""
        self.rows, self.tokens = rows, tokens
        self._relayout()
        self.update()

    def set_theme(self, theme: th.Theme) -> None:
        self.theme = theme
        self.update()

    # --- geometry -------------------------------------------------------------------------------------------
    @property
    def cell_w(self) -> float:
        return max(self._fm_mono.horizontalAdvance("FF") + 12, self._fm_chip.horizontalAdvance("part") + 8)

    def _heights(self) -> tuple[float, float, float, float]:
        glyph = self._fm_big.height() + 4
        cp = self._fm_small.height() + 2
        cell = self._fm_mono.height() + 10
        band = self._fm_chip.height() + self._fm_small.height() + 8
        return glyph, cp, cell, band

    @property
    def marker_h(self) -> float:
        return self._fm_small.height() + 2  # the ✂ row under the bands

    def _relayout(self) -> None:
        glyph_h, cp_h, cell_h, band_h = self._heights()
        line_h = glyph_h + cp_h + cell_h + 4 + band_h + self.marker_h
        width = max(100.0, float(self.width()))
        cw = self.cell_w
        x, y = self.MARGIN, self.MARGIN
        self.cells, self._glyph_rects = [], []
        for ri, row in enumerate(self.rows):
            n = len(row.bytes)
            bytes_w = n * cw
            col_w = max(
                bytes_w,
                self._fm_big.horizontalAdvance(visible_text(row.char)) + 8,
                self._fm_small.horizontalAdvance(_codepoint(row.char)) + 6,
            )
            if x > self.MARGIN and x + col_w > width - self.MARGIN:
                x, y = self.MARGIN, y + line_h + self.LINE_GAP
            self._glyph_rects.append(QRectF(x, y, col_w, glyph_h + cp_h))
            bx = x + (col_w - bytes_w) / 2
            for k, value in enumerate(row.bytes):
                rect = QRectF(bx + k * cw, y + glyph_h + cp_h, cw, cell_h)
                self.cells.append(_Cell(ri, k, value, row.tokens[k], rect, len(self.cells)))
            x += col_w + self.CHAR_GAP
        self._height = (y + line_h + self.MARGIN) if self.rows else 2 * self.MARGIN
        self._laid_out_width = self.width()
        if int(self._height) != self.minimumHeight():
            self.setMinimumHeight(int(self._height))
            self.updateGeometry()

    def sizeHint(self) -> QSize:
        return QSize(500, int(max(self._height, 60)))

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return int(self._height)

    def resizeEvent(self, event) -> None:
        if event.size().width() != self._laid_out_width:
            self._relayout()
        super().resizeEvent(event)

    def token_runs(self) -> list[tuple[int | None, list[_Cell]]]:
        """Consecutive cells of the same token on the same line: (token index or None, cells)."""
        runs: list[tuple[int | None, list[_Cell]]] = []
        for c in self.cells:
            if runs and runs[-1][0] == c.token and c.token is not None and runs[-1][1][-1].rect.top() == c.rect.top():
                runs[-1][1].append(c)
            else:
                runs.append((c.token, [c]))
        return runs

    def cuts_inside_characters(self) -> list[tuple[int, int]]:
        """(character row, byte index k): a token boundary falls between byte k-1 and k of that character."""
        out = []
        for ri, row in enumerate(self.rows):
            for k in range(1, len(row.tokens)):
                if row.tokens[k] != row.tokens[k - 1]:
                    out.append((ri, k))
        return out

    # --- painting -----------------------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        t = self.theme
        glyph_h, cp_h, cell_h, band_h = self._heights()
        for row, r in zip(self.rows, self._glyph_rects):
            p.setFont(self._big)
            p.setPen(QColor(t.text))
            p.drawText(QRectF(r.left(), r.top(), r.width(), glyph_h), Qt.AlignCenter, visible_text(row.char))
            p.setFont(self._small)
            p.setPen(QColor(t.muted))
            p.drawText(QRectF(r.left(), r.top() + glyph_h, r.width(), cp_h), Qt.AlignCenter, _codepoint(row.char))
        p.setFont(self._mono)
        for c in self.cells:
            fill = self._fill(c.token)
            p.setPen(QPen(QColor(t.grid), 1))
            p.setBrush(QColor(fill))
            p.drawRect(c.rect.adjusted(0.5, 0.5, -0.5, -0.5))
            p.setPen(QColor(th.text_on(fill)))
            p.drawText(c.rect, Qt.AlignCenter, f"{c.value:02X}")
        for token, cells in self.token_runs():
            top = cells[0].rect.bottom() + 4
            band = QRectF(cells[0].rect.left() + 1, top, cells[-1].rect.right() - cells[0].rect.left() - 2, band_h)
            if token is None:
                p.setPen(QColor(th.WARNING))
                p.setFont(self._small)
                p.drawText(band, Qt.AlignHCenter | Qt.AlignTop, "no token")
                continue
            tok = self.tokens[token]
            fill = self._fill(token)
            p.setPen(Qt.NoPen)
            p.setBrush(QColor(fill))
            p.drawRoundedRect(band, 5, 5)
            if tok.incomplete:
                p.setPen(QPen(QColor(th.WARNING), 2, Qt.DashLine))
                p.setBrush(Qt.NoBrush)
                p.drawRoundedRect(band.adjusted(1, 1, -1, -1), 5, 5)
            fg = QColor(th.text_on(fill))
            p.setPen(fg)
            p.setFont(self._chip)
            label = "…" if self._continues(cells[0]) else "part" if tok.incomplete else tok.display
            label = self._fm_chip.elidedText(label, Qt.ElideRight, band.width() - 4)
            p.drawText(
                QRectF(band.left(), band.top() + 2, band.width(), self._fm_chip.height()),
                Qt.AlignHCenter | Qt.AlignVCenter,
                label,
            )
            p.setFont(self._small)
            sub = f"id {tok.id}"
            if self._fm_small.horizontalAdvance(sub) > band.width() - 4:
                sub = self._fm_small.elidedText(str(tok.id), Qt.ElideRight, band.width() - 2)
            p.drawText(
                QRectF(band.left(), band.bottom() - self._fm_small.height() - 3, band.width(), self._fm_small.height()),
                Qt.AlignHCenter | Qt.AlignVCenter,
                sub,
            )
        by_pos = {(c.row, c.k): c for c in self.cells}
        for ri, k in self.cuts_inside_characters():
            cell = by_pos[(ri, k)]
            x = cell.rect.left()
            p.setPen(QPen(QColor(th.HIGHLIGHT), 3))
            bottom = cell.rect.bottom() + 4 + band_h
            p.drawLine(QPointF(x, cell.rect.top() - 2), QPointF(x, bottom + 2))
            p.setFont(self._small)
            p.drawText(
                QPointF(x - self._fm_small.horizontalAdvance("✂") / 2, bottom + self._fm_small.ascent() + 1), "✂"
            )
        p.end()

    def _continues(self, cell: _Cell) -> bool:
        """True when the token of ``cell`` already started on an earlier line."""
        i = cell.index
        return i > 0 and self.cells[i - 1].token == cell.token

    def _fill(self, token: int | None) -> str:
        if token is None:
            return th.ERROR_BG["dark" if self.theme.is_dark else "light"]
        if self.tokens[token].special:
            return th.SPECIAL
        return th.chip_colour(self.theme, token)


def _codepoint(ch: str) -> str:
    return f"U+{ord(ch):04X}"
