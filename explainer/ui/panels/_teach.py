"""Small pieces shared by the teaching panels (head roles, walk-through, logit lens): token labels, number
formatting for a projector, colour shading and a table cell that draws a bar."""

from __future__ import annotations

import html
import logging
import math

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import QStyledItemDelegate, QTableWidget

from explainer.core.types import Token
from explainer.ui import theme as th

log = logging.getLogger(__name__)

BAR_ROLE = Qt.UserRole + 1  # float in [0, 1] stored on a table item: the bar's length
TABLE_FONT_PT = 12


class TokenLabels:
    """Mixin for panels that show token ids: ``set_token_decoder(decode)`` (``decode(id) -> bytes``), else the
    result's tokenizer by name."""

    _decode = None

    def set_token_decoder(self, decode) -> None:
        self._decode = decode
        if getattr(self, "result", None) is not None:
            self.refresh()

    def token_text(self, token_id: int) -> str:
        """Visible text of a token (· for a space, ⏎ for a new line), or ``#id`` if it cannot be decoded."""
        data = self._token_bytes(token_id)
        return Token(0, data, 0, 0).display if data is not None else f"#{int(token_id)}"

    def token_string(self, token_id: int) -> str:
        """A token's own text (spaces as spaces; a partial UTF-8 piece with U+FFFD), or ``#id``."""
        data = self._token_bytes(token_id)
        return data.decode("utf-8", errors="replace") if data is not None else f"#{int(token_id)}"

    def _token_bytes(self, token_id: int) -> bytes | None:
        try:
            if self._decode is not None:
                return self._decode(int(token_id))
            from explainer.core.tokenizers import TOKENIZER_NAMES, get_tokenizer

            r = getattr(self, "result", None)
            if r is not None and r.tokenizer in TOKENIZER_NAMES:
                return get_tokenizer(r.tokenizer).token_bytes(int(token_id))
        except Exception:
            log.debug("no bytes for token %s", token_id, exc_info=True)
        return None


def position_label(result, position: int) -> str:
    """``⟨start⟩`` for the added start token, else the token's visible text."""
    return result.tokens[position].label


def esc(s: str) -> str:
    return html.escape(s, quote=False)


def num(x: float, digits: int = 2) -> str:
    """A number for the screen: typographic minus, −∞ / +∞, fixed decimals."""
    x = float(x)
    if math.isnan(x):
        return "—"
    if math.isinf(x):
        return "−∞" if x < 0 else "+∞"
    s = f"{x:.{digits}f}"
    if float(s) == 0:
        s = s.lstrip("-")  # no "−0.00"
    return s.replace("-", "−")


def percent(p: float) -> str:
    if math.isnan(p):
        return "—"
    if p >= 0.1:
        return f"{100 * p:.0f} %"
    if p >= 0.001:
        return f"{100 * p:.1f} %"
    return "<0.1 %"


def shade(base: str, amount: float, background: str) -> QColor:
    """``background`` blended towards ``base`` by ``amount`` in [0, 1]."""
    a = min(1.0, max(0.0, float(amount)))
    c0, c1 = QColor(background), QColor(base)
    return QColor(
        round(c0.red() + (c1.red() - c0.red()) * a),
        round(c0.green() + (c1.green() - c0.green()) * a),
        round(c0.blue() + (c1.blue() - c0.blue()) * a),
    )


class BarDelegate(QStyledItemDelegate):
    """Draws a horizontal bar (``item.data(BAR_ROLE)`` in [0, 1]) behind the cell's text."""

    def __init__(self, colour: str = th.ACCENTS[0], parent=None):
        super().__init__(parent)
        self.colour = colour

    def paint(self, painter: QPainter, option, index) -> None:
        frac = index.data(BAR_ROLE)
        if frac is not None and float(frac) * option.rect.width() >= 1:
            text_w = option.fontMetrics.horizontalAdvance(str(index.data(Qt.DisplayRole) or "")) + 10
            r = QRectF(option.rect).adjusted(3, 4, -3 - text_w, -4)  # the number stays clear of the bar
            painter.save()
            c = QColor(self.colour)
            c.setAlpha(150)
            painter.fillRect(QRectF(r.left(), r.top(), r.width() * float(frac), r.height()), c)
            painter.restore()
        super().paint(painter, option, index)


def style_table(table: QTableWidget, pt: float = TABLE_FONT_PT) -> None:
    f = QFont(table.font())
    f.setPointSizeF(pt)
    table.setFont(f)
    table.setEditTriggers(QTableWidget.NoEditTriggers)
    table.setSelectionMode(QTableWidget.NoSelection)
    table.setFocusPolicy(Qt.NoFocus)
    table.setWordWrap(False)
    table.verticalHeader().setDefaultSectionSize(int(pt * 2.1))
