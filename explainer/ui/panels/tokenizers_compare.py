"""Side by side: the same text cut by SmolLM2's tokenizer, GPT-4's (cl100k_base) and GPT-4o's (o200k_base).

The three rows are aligned by character: wherever all three tokenizers cut the text at the same character, their
chips start at the same x, so the places where they disagree stand out. Hovering a chip outlines, in every row,
the chips that share characters with it. Tokenizing runs on the UI thread, so only the first ``MAX_CHARS``
characters are compared.
"""

from __future__ import annotations

import bisect
import html
import logging
import threading

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QLabel, QWidget

from explainer.core.types import Token, Tokenization, visible_text
from explainer.ui import theme as th
from explainer.ui.panels.base import Panel, vertical_scroll
from explainer.ui.panels.chips import Chip, ChipView
from explainer.ui.panels.tokens import TOKENIZERS

log = logging.getLogger(__name__)

MAX_CHARS = 5_000
SHORT_NAMES = {"smollm2": "SmolLM2", "cl100k_base": "GPT-4", "o200k_base": "GPT-4o"}


class AlignedChipView(ChipView):
    """Several rows of chips (one per tokenizer) laid out on a shared character axis.

    The text is cut into *columns* at the characters where every row has a token boundary; a column is as wide
    as its widest row, and each row's chips are stretched to fill it. A column too wide for the view is cut
    again where fewer rows agree. Chip ``i`` of the flat ``chips`` list belongs to row ``row_of[i]`` and covers
    characters ``spans[i]``. Drawing, hover, click and tooltips are ChipView's."""

    ROW_GAP, BAND_GAP = 3.0, 12.0

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.row_names: list[str] = []
        self.row_of: list[int] = []
        self.spans: list[tuple[int, int]] = []
        self.n_chars = 0
        self._agree = np.zeros(1, np.int32)  # [n_chars + 1] rows with a boundary at each character index
        self._row_chips: list[list[int]] = []  # flat chip indices of each row, in text order
        self._row_starts: list[list[int]] = []
        self._row_cum: list[list[float]] = []  # prefix sums of chip widths
        self._band_tops: list[float] = []
        self._gutter = 0.0

    def set_rows(self, names: list[str], rows: list[list[tuple[Chip, int, int]]], n_chars: int) -> None:
        """``rows[r]`` = (chip, start, end) in text order for tokenizer ``names[r]``."""
        self.row_names, self.n_chars = names, n_chars
        self.row_of, self.spans, flat = [], [], []
        crossed = np.zeros((len(rows), n_chars + 1), bool)
        for r, row in enumerate(rows):
            for chip, s, e in row:
                flat.append(chip)
                self.row_of.append(r)
                self.spans.append((s, e))
                if e - s >= 2:
                    crossed[r, s + 1 : e] = True
        self._agree = (~crossed).sum(0).astype(np.int32)
        bold = QFont(self._small)
        bold.setBold(True)
        self._gutter = max([QFontMetricsF(bold).horizontalAdvance(n) for n in names] + [0.0]) + 10
        self.set_chips(flat)  # measures widths, then calls _relayout

    def _prepare_rows(self) -> None:
        n_rows = len(self.row_names)
        self._row_chips = [[] for _ in range(n_rows)]
        for i, r in enumerate(self.row_of):
            self._row_chips[r].append(i)
        self._row_starts = [[self.spans[i][0] for i in idx] for idx in self._row_chips]
        self._row_cum = []
        for idx in self._row_chips:
            cum = [0.0]
            for i in idx:
                cum.append(cum[-1] + self.chips[i].width)
            self._row_cum.append(cum)

    def _members(self, r: int, lo: int, hi: int) -> tuple[int, int]:
        """Range ``[a, b)`` into row r's chips whose start lies in ``[lo, hi)``."""
        starts = self._row_starts[r]
        return bisect.bisect_left(starts, lo), bisect.bisect_left(starts, hi)

    def _column_width(self, lo: int, hi: int) -> float:
        w = 0.0
        for r in range(len(self._row_chips)):
            a, b = self._members(r, lo, hi)
            if b > a:
                w = max(w, self._row_cum[r][b] - self._row_cum[r][a] + self.GAP_X * (b - a - 1))
        return w

    def _columns(self, lo: int, hi: int, need: int, avail: float) -> list[tuple[int, int, float]]:
        """Split ``[lo, hi)`` at characters where at least ``need`` rows agree, recursively relaxing ``need``
        for columns wider than ``avail``."""
        cuts = (lo + 1 + np.flatnonzero(self._agree[lo + 1 : hi] >= need)).tolist()
        out = []
        for a, b in zip([lo] + cuts, cuts + [hi]):
            w = self._column_width(a, b)
            if w > avail and need > 0 and b - a > 1:
                out += self._columns(a, b, need - 1, avail)
            else:
                out.append((a, b, w))
        return out

    def _relayout(self) -> None:
        if not self.row_names:
            super()._relayout()
            return
        self._prepare_rows()
        n_rows = len(self.row_names)
        h = self.chip_height
        band_h = n_rows * h + (n_rows - 1) * self.ROW_GAP
        x0 = self.MARGIN + self._gutter
        avail = max(40.0, self.width() - x0 - self.MARGIN)
        x, y = x0, self.MARGIN
        self._band_tops = [y]
        for c in self.chips:
            c.rect = None
        for a, b, w in self._columns(0, self.n_chars, n_rows, avail):
            if w <= 0:
                continue
            if x > x0 and x + w > x0 + avail:
                x, y = x0, y + band_h + self.BAND_GAP
                self._band_tops.append(y)
            breaks = False
            for r in range(n_rows):
                i0, i1 = self._members(r, a, b)
                if i1 <= i0:
                    continue
                used = self._row_cum[r][i1] - self._row_cum[r][i0] + self.GAP_X * (i1 - i0 - 1)
                extra = (w - used) / (i1 - i0)
                cx = x
                for k in range(i0, i1):
                    c = self.chips[self._row_chips[r][k]]
                    cw = min(c.width + extra, avail)
                    c.rect = QRectF(cx, y + r * (h + self.ROW_GAP), cw, h)
                    cx += cw + self.GAP_X
                breaks = breaks or self.chips[self._row_chips[r][i1 - 1]].line_break
            x += w + self.GAP_X
            if breaks:  # the column ends with a new line: so does the band
                x, y = x0, y + band_h + self.BAND_GAP
                self._band_tops.append(y)
        if x == x0 and len(self._band_tops) > 1:
            self._band_tops.pop()  # the text ended with a new line: no empty band
        bottom = max((c.rect.bottom() for c in self.chips if c.rect is not None), default=self.MARGIN) + self.MARGIN
        self._content_height = bottom
        self._laid_out_width = self.width()
        if int(bottom) != self.minimumHeight():
            self.setMinimumHeight(int(bottom))
            self.updateGeometry()

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if not self.row_names:
            return
        p = QPainter(self)
        bold = QFont(self._small)
        bold.setBold(True)
        p.setFont(bold)
        fm = QFontMetricsF(bold)
        h = self.chip_height
        for k, top in enumerate(self._band_tops):
            if k > 0:
                p.setPen(QPen(QColor(self.theme.grid), 1))
                y = top - self.BAND_GAP / 2
                p.drawLine(QPointF(self.MARGIN, y), QPointF(self.width() - self.MARGIN, y))
            p.setPen(QColor(self.theme.muted))
            for r, name in enumerate(self.row_names):
                cy = top + r * (h + self.ROW_GAP) + h / 2
                p.drawText(QPointF(self.MARGIN, cy + (fm.ascent() - fm.descent()) / 2), name)
        p.end()


_warming: threading.Thread | None = None


def _warm_up(names) -> threading.Thread:
    """Build the tokenizers (about 3 s, once per process) off the UI thread; the thread doing it."""
    global _warming
    if _warming is not None:
        return _warming

    def work():
        from explainer.core.tokenizers import get_tokenizer

        for name in names:
            try:
                get_tokenizer(name)
            except Exception:
                log.debug("warming up the %s tokenizer failed", name, exc_info=True)

    _warming = threading.Thread(target=work, name="tokenizer-warm-up", daemon=True)
    _warming.start()
    return _warming


class TokenizersComparePanel(Panel):
    title = "Side by side"
    explanation = (
        "The same text cut into tokens by three tokenizers: this model's (SmolLM2's unless you opened another) and those of GPT-4 "
        "(cl100k_base) and GPT-4o (o200k_base). Each was built by byte-pair encoding from different training "
        "text and has a different vocabulary size; a bigger vocabulary usually needs fewer tokens for the "
        "same text. Rows are lined up where all three cut at the same character. Hover a chip to outline the "
        "chips covering the same characters in every row. Only the first row's tokens go into this model."
    )

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.names = [n for n, _ in TOKENIZERS]
        self.tokenizations: dict[str, Tokenization] = {}
        self.errors: dict[str, str] = {}
        self.text = ""  # the compared (capped) text
        self._key: tuple | None = None
        self._hover_span: tuple[int, int] | None = None

        self.stats = QLabel()
        self.stats.setTextFormat(Qt.RichText)
        self.stats.setWordWrap(True)
        f = QFont(self.stats.font())
        f.setPointSizeF(th.SMALL_FONT_PT + 3)
        self.stats.setFont(f)
        self.body.addWidget(self.stats)
        self.view = AlignedChipView()
        self.view.tooltip_for = self._tooltip
        self.scroll = vertical_scroll(self.view)
        self.body.addWidget(self.scroll, 1)
        self.info = QLabel()
        self.info.setTextFormat(Qt.RichText)
        self.info.setWordWrap(True)
        self.info.setFont(f)
        self.body.addWidget(self.info)
        self.view.chipHovered.connect(self._on_view_hovered)
        self.view.chipClicked.connect(self._on_view_clicked)

    # --- protocol ---------------------------------------------------------------------------------------------
    def warm_up(self) -> threading.Thread:
        """Start building the three tokenizers in the background (once per process): the window asks for it a
        few seconds after its first picture, so that the work does not compete with opening the window and the
        model's first pass; shown before that, the panel starts it itself. Returns the thread building them."""
        return _warm_up(self.names)

    def showEvent(self, event) -> None:
        self.warm_up()
        super().showEvent(event)

    def refresh(self) -> None:
        r = self.result
        if r is None:
            self.stats.setText("<i>Waiting for text…</i>")
            self.view.set_rows([], [], 0)
            return
        key = (r.text, r.specials_parsed, self.theme.name, r.tokenizer)
        if key != self._key:
            self._key = key
            self._tokenize(r.text, r.specials_parsed)
            self.view.set_theme(self.theme)
            self.view.set_rows(
                [self.short_name(n) for n in self.names], [self._row(n) for n in self.names], len(self.text)
            )
            self._write_stats()
        self._update_marks()

    def highlight_token(self, position: int) -> None:
        super().highlight_token(position)
        self._update_marks()

    def select_position(self, position: int) -> None:
        super().select_position(position)
        self._update_marks()

    def set_theme(self, theme: th.Theme) -> None:
        self.view.set_theme(theme)
        super().set_theme(theme)

    def counts(self) -> dict[str, int]:
        """Tokens per tokenizer, as shown."""
        return {n: len(t.tokens) for n, t in self.tokenizations.items()}

    def tokenizer_name(self, name: str) -> str:
        """The tokenizer behind a row: the "smollm2" row is the analysed model's own tokenizer."""
        r = self.result
        return r.tokenizer if name == "smollm2" and r is not None else name

    def short_name(self, name: str) -> str:
        return SHORT_NAMES.get(self.tokenizer_name(name), self.tokenizer_name(name))

    # --- building -------------------------------------------------------------------------------------------
    def _tokenize(self, text: str, parse_specials: bool) -> None:
        from explainer.core.tokenizers import get_tokenizer

        self.text = text[:MAX_CHARS]
        self.tokenizations, self.errors = {}, {}
        for name in self.names:
            try:
                tok = get_tokenizer(self.tokenizer_name(name))
                self.tokenizations[name] = tok.tokenize(self.text, parse_specials=parse_specials)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as e:
                log.exception("tokenizer %s failed", name)
                self.errors[name] = str(e) or type(e).__name__

    def _row(self, name: str) -> list[tuple[Chip, int, int]]:
        t = self.tokenizations.get(name)
        if t is None:
            return []
        out = []
        for i, tok in enumerate(t.tokens):
            fill = th.SPECIAL if tok.special else th.chip_colour(self.theme, i)
            chip = Chip(
                tok.display,
                str(tok.id),
                fill,
                border=th.WARNING if tok.incomplete else "",
                line_break=tok.bytes.endswith(b"\n") and not tok.special,
            )
            out.append((chip, tok.start, tok.end))
        return out

    def _write_stats(self) -> None:
        from explainer.core.tokenizers import get_tokenizer

        lines = []
        for name in self.names:
            head = f"<b>{html.escape(self.short_name(name))}</b>"
            if name in self.errors:
                lines.append(f"{head} · <span style='color:{th.HIGHLIGHT}'>{html.escape(self.errors[name])}</span>")
                continue
            t = self.tokenizations[name]
            vocab = get_tokenizer(self.tokenizer_name(name)).vocab_size
            n = len(t.tokens)
            cpt = len(self.text) / n if n else 0.0
            line = (
                f"{head} ({html.escape(self.tokenizer_name(name))}{', this model' if name == 'smollm2' else ''}) · "
                f"{vocab:,} pieces · "
                f"<b>{n:,}</b> token{'s' if n != 1 else ''} · {cpt:.1f} chars/token"
            )
            if t.dropped:
                line += (
                    f" · <span style='color:{th.WARNING}'>⚠ {len(t.dropped)} byte(s) without a token left out</span>"
                )
            lines.append(line)
        if len(self.result.text) > MAX_CHARS:
            lines.append(
                f"<span style='color:{th.WARNING}'>Only the first {MAX_CHARS:,} of "
                f"{len(self.result.text):,} characters are compared.</span>"
            )
        self.stats.setText("<br>".join(lines))

    # --- linking --------------------------------------------------------------------------------------------
    def chips_covering(self, start: int, end: int) -> set[int]:
        """Flat chip indices (all rows) sharing at least one character with ``[start, end)``."""
        return {i for i, (s, e) in enumerate(self.view.spans) if s < end and start < e}

    def _model_span(self, position: int) -> tuple[int, int] | None:
        r = self.result
        if r is None or not 0 <= position < len(r.tokens) or r.tokens[position].added:
            return None
        t = r.tokens[position]
        return (t.start, t.end) if t.end > t.start else None

    def _update_marks(self) -> None:
        span = self._hover_span or self._model_span(self.hovered_position)
        sel = self._model_span(self.selected_position)
        self.view.set_marks(
            highlighted=self.chips_covering(*span) if span else set(),
            selected=self.chips_covering(*sel) if sel else set(),
        )
        self._write_info(span)

    def _write_info(self, span: tuple[int, int] | None) -> None:
        if span is None:
            self.info.setText("Hover a chip to see the same characters in every row.")
            return
        s, e = span
        parts = []
        for r, name in enumerate(self.view.row_names):
            n = sum(1 for i in self.chips_covering(s, e) if self.view.row_of[i] == r)
            parts.append(f"{name}: <b>{n}</b> token{'s' if n != 1 else ''}")
        shown = html.escape(visible_text(self.text[s:e][:60]))
        where = f"Character {s + 1}" if e - s <= 1 else f"Characters {s + 1}–{e}"
        verb = "is" if e - s <= 1 else "are"
        self.info.setText(f"{where} «<b>{shown}</b>» {verb} covered by " + " · ".join(parts))

    def _model_positions(self, span: tuple[int, int]) -> list[int]:
        r = self.result
        if r is None:
            return []
        return [i for i, t in enumerate(r.tokens) if not t.added and t.start < span[1] and span[0] < t.end]

    def _on_view_hovered(self, index: int) -> None:
        self._hover_span = self.view.spans[index] if 0 <= index < len(self.view.spans) else None
        pos = min(self._model_positions(self._hover_span), default=-1) if self._hover_span else -1
        changed = pos != self.hovered_position
        self.hovered_position = pos
        self._update_marks()
        if changed:
            self.tokenHovered.emit(pos)

    def _on_view_clicked(self, index: int) -> None:
        positions = self._model_positions(self.view.spans[index])
        if positions:
            pos = max(positions)
            self.selected_position = -1 if pos == self.selected_position else pos
            self._update_marks()
            self.tokenSelected.emit(self.selected_position)

    def _tooltip(self, index: int) -> str:
        name = self.names[self.view.row_of[index]]
        t = self.tokenizations[name]
        tok: Token = t.tokens[index - self.view.row_of.index(self.view.row_of[index])]  # rows are contiguous
        rows = [
            f"<b style='font-size:14pt'>{html.escape(tok.display)}</b> &nbsp; id <b>{tok.id}</b> in "
            f"{html.escape(self.short_name(name))}",
            f"bytes: <tt>{' '.join(f'{b:02X}' for b in tok.bytes[:24])}</tt>"
            + (" (part of a character)" if tok.incomplete else ""),
            f"characters {tok.start + 1}–{tok.end}",
        ]
        return "<br>".join(rows)

    # --- scenes and export -----------------------------------------------------------------------------------
    def export_data(self) -> dict:
        rows = [
            {
                "tokenizer": name,
                "index": i,
                "token_text": t.text,
                "token_label": t.display,
                "id": int(t.id),
                "start": t.start,
                "end": t.end,
            }
            for name in self.names
            if name in self.tokenizations
            for i, t in enumerate(self.tokenizations[name].tokens)
        ]
        return {"rows": rows, "counts": self.counts()}

    def caption_extra(self) -> str:
        return "tokenizers side by side: " + ", ".join(f"{self.short_name(n)} {k}" for n, k in self.counts().items())


if __name__ == "__main__":
    from explainer.ui.panels._run_alone import run_alone

    raise SystemExit(
        run_alone(
            TokenizersComparePanel,
            "How many r's are in strawberry? Photosynthesis turns light into sugar.\nCafé naïve 你好 🍓 12345",
        )
    )
