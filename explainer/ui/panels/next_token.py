"""Next-token panel: the model's top candidates after the selected position, and what a sampler would draw.

Left bar of each row: the model's own probability (temperature 1, from ``result.top_probs``). Right bar: the
*sampling* distribution after temperature, top-k and top-p (``core.sampling``), renormalised. Click a row, or
move to it with the arrow keys and press Enter or Space, to choose that token (``candidateChosen``; the window
decides what choosing does). ``sample_token`` draws a token from the sampling distribution with the panel's seed
(``core.sampling.draw``): a scene that records its seed shows the same sampled choices every time.
"""

from __future__ import annotations

import html
import logging

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QGridLayout, QLabel, QPushButton, QSizePolicy, QSlider, QWidget
from superqt import QLabeledDoubleSlider, QLabeledSlider

from explainer.core import sampling
from explainer.core.types import Token
from explainer.ui import theme as th
from explainer.ui.panels.base import Panel

log = logging.getLogger(__name__)

RAW_COLOUR, SAMPLE_COLOUR = th.ACCENTS[0], th.ACCENTS[1]
MAX_ROWS = 15


def token_label(data: bytes) -> str:
    return Token(0, data, 0, 0).display


class _SliderKeys(QObject):
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


class BarsView(QWidget):
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

    @property
    def row_height(self) -> float:
        return self._fm.height() * 1.45

    @property
    def header_height(self) -> float:
        return self._fm_small.height() + 6

    def visible_rows(self) -> int:
        return max(1, min(len(self.labels), int((self.height() - self.header_height) / self.row_height)))

    def capacity(self) -> int:
        return max(3, min(MAX_ROWS, int((self.height() - self.header_height) / self.row_height)))

    def sizeHint(self) -> QSize:
        return QSize(420, int(self.header_height + 8 * self.row_height))

    def minimumSizeHint(self) -> QSize:
        return QSize(260, int(self.header_height + 3 * self.row_height))

    def _geometry(self):
        label_w = min(
            self.width() * 0.34, max([self._fm.horizontalAdvance(s) for s in self.labels[:MAX_ROWS]] + [40.0]) + 12
        )
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
        rh = self.row_height
        for i in range(n):
            y = self.header_height + i * rh
            if i == self.hovered:
                p.fillRect(QRectF(0, y, self.width(), rh), QColor(t.grid))
            p.setFont(self._font)
            p.setPen(QColor(t.text))
            label = self._fm.elidedText(self.labels[i], Qt.ElideRight, label_w - 12)
            lw = self._fm.horizontalAdvance(label)
            base = y + (rh + self._fm.ascent() - self._fm.descent()) / 2
            p.drawText(QPointF(label_w - 8 - lw, base), label)
            for x0, values, colour in ((x_raw, self.raw, RAW_COLOUR), (x_smp, self.sampled, SAMPLE_COLOUR)):
                v = values[i] if i < len(values) else 0.0
                p.fillRect(QRectF(x0, y + rh * 0.18, bar_w, rh * 0.64), QColor(t.grid if t.is_dark else t.surface))
                p.fillRect(QRectF(x0, y + rh * 0.18, bar_w * min(1.0, v / scale), rh * 0.64), QColor(colour))
                p.setFont(self._small)
                p.setPen(QColor(t.text))
                txt = "cut" if v == 0 else f"{100 * v:.1f} %" if v >= 0.001 else "<0.1 %"
                p.drawText(QPointF(x0 + bar_w + 4, y + (rh + self._fm_small.ascent()) / 2 - 2), txt)
            if i == self.marked:
                p.setPen(QPen(QColor(th.HIGHLIGHT), 2.5))
                p.setBrush(Qt.NoBrush)
                p.drawRoundedRect(QRectF(1.5, y + 1.5, self.width() - 3, rh - 3), 5, 5)
            if i == self.current and self.hasFocus():
                p.setPen(QPen(QColor(t.text), 1.5, Qt.DashLine))
                p.setBrush(Qt.NoBrush)
                p.drawRoundedRect(QRectF(4, y + 4, self.width() - 8, rh - 8), 4, 4)
        p.end()

    def mouseMoveEvent(self, event) -> None:
        i = self.row_at(event.position().y())
        if i != self.hovered:
            self.hovered = i
            self.setCursor(Qt.PointingHandCursor if i >= 0 else Qt.ArrowCursor)
            self.update()

    def leaveEvent(self, event) -> None:
        self.hovered = -1
        self.update()

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


class NextTokenPanel(Panel):
    title = "Next token"
    explanation = (
        "The probability of each possible next token after the selected position (default: the end); over all "
        "{vocab:,} tokens they sum to 100 %. <span style='color:{raw}'>■</span> the model, "
        "<span style='color:{smp}'>■</span> what a sampler draws from after temperature, top-k and top-p. "
        "Click a bar to append that token."
    )
    details = (
        "Sampling changes only the choice, not the model. Entropy (in bits) measures the uncertainty: 3.9 bits "
        "is as uncertain as a choice among 15 equally likely tokens. The model always offers a fluent next "
        "token, true or not. Select a token elsewhere to see what the model expected at that position."
    )

    candidateChosen = Signal(int)  # token id

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._decode = None  # id -> bytes
        self._logits_for: tuple[object, int] | None = None  # (result, position) the cached logits belong to
        self._logits: np.ndarray | None = None
        self._row_ids: list[int] = []
        self.replacement = None  # a view shown instead of the bars (e.g. before / after a knock-out), or None
        self.seed: int | None = None  # of sample_token's draws; None: a new one on the first draw
        self.draws = 0  # draws made with this seed
        self._help.setText(self._explanation(49152))

        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(2)
        self.temperature = QLabeledDoubleSlider(Qt.Horizontal)
        self.temperature.setRange(0.1, 2.0)
        self.temperature.setSingleStep(0.05)
        self.temperature.setPageStep(0.25)
        self.temperature.setValue(1.0)
        self.temperature.setToolTip(
            "Temperature divides the logits before softmax: below 1 sharpens the "
            "distribution (safer choices), above 1 flattens it (more surprising)."
        )
        self.top_k = QLabeledSlider(Qt.Horizontal)
        self.top_k.setRange(0, 100)
        self.top_k.setValue(0)
        self.top_k.setToolTip("Top-k keeps only the k most likely tokens (0 = off).")
        self.top_p = QLabeledDoubleSlider(Qt.Horizontal)
        self.top_p.setRange(0.05, 1.0)
        self.top_p.setValue(1.0)
        self.top_p.setToolTip("Top-p (nucleus) keeps the fewest most likely tokens that together reach p (1 = off).")
        reset = QPushButton("Reset")
        reset.setToolTip("Temperature 1, top-k off, top-p off")
        reset.clicked.connect(self.reset_sampling)
        for col, (name, w) in enumerate(
            (("Temperature", self.temperature), ("Top-k (0 = off)", self.top_k), ("Top-p (1 = off)", self.top_p))
        ):
            grid.addWidget(QLabel(name), 0, col)
            grid.addWidget(w, 1, col)
        grid.addWidget(reset, 1, 3)
        self.body.addLayout(grid)

        self.summary = QLabel()
        self.summary.setTextFormat(Qt.RichText)
        self.summary.setWordWrap(True)
        self.body.addWidget(self.summary)
        self.bars = BarsView()
        self.body.addWidget(self.bars, 1)
        self.footer = QLabel()
        self.footer.setTextFormat(Qt.RichText)
        self.footer.setWordWrap(True)
        self.body.addWidget(self.footer)

        for s in (self.temperature, self.top_k, self.top_p):
            s.valueChanged.connect(self._redraw_bars)
            _SliderKeys(s)
        self.bars.rowClicked.connect(self._on_row_clicked)

    def resizeEvent(self, event) -> None:  # the bars' room changed: show as many candidates as fit now
        super().resizeEvent(event)
        if self.result is not None and self.bars.capacity() != len(self._row_ids):
            self._redraw_bars()

    def _explanation(self, vocab: int) -> str:
        return self.explanation.format(vocab=vocab, raw=RAW_COLOUR, smp=SAMPLE_COLOUR)

    # --- protocol ---------------------------------------------------------------------------------------------
    def set_token_decoder(self, decode) -> None:
        """``decode(token_id) -> bytes`` for the candidates' labels (the model's tokenizer)."""
        self._decode = decode
        self.refresh()

    def reset_sampling(self) -> None:
        self.temperature.setValue(1.0)
        self.top_k.setValue(0)
        self.top_p.setValue(1.0)

    def sampling_settings(self) -> tuple[float, int, float]:
        return float(self.temperature.value()), int(self.top_k.value()), float(self.top_p.value())

    @property
    def position(self) -> int:
        """The position whose next-token distribution is shown (the selected one, else the last)."""
        r = self.result
        if r is None:
            return -1
        p = self.selected_position
        return p if 0 <= p < r.n_tokens else r.n_tokens - 1

    def select_position(self, position: int) -> None:
        super().select_position(position)
        self.refresh()

    def set_theme(self, theme: th.Theme) -> None:
        self.bars.theme = theme
        super().set_theme(theme)

    def refresh(self) -> None:
        r = self.result
        if r is None or r.n_tokens == 0:
            self.summary.setText("<i>Waiting for the model…</i>")
            self.footer.setText("")
            self.bars.set_rows([], [], [])
            return
        self._help.setText(self._explanation(r.model.vocab_size))
        self._redraw_bars()

    # --- computing --------------------------------------------------------------------------------------------
    def _label(self, token_id: int) -> str:
        try:
            if self._decode is not None:
                return token_label(self._decode(int(token_id)))
            from explainer.core.tokenizers import TOKENIZER_NAMES, get_tokenizer

            if self.result is not None and self.result.tokenizer in TOKENIZER_NAMES:
                return token_label(get_tokenizer(self.result.tokenizer).token_bytes(int(token_id)))
        except Exception:
            log.debug("no label for token %s", token_id, exc_info=True)
        return f"#{int(token_id)}"

    def _text(self, token_id: int) -> str:
        """The candidate's own text (a partial UTF-8 piece decodes with U+FFFD)."""
        label = self._label(token_id)
        try:
            if self._decode is not None:
                return self._decode(int(token_id)).decode("utf-8", errors="replace")
            from explainer.core.tokenizers import get_tokenizer

            return get_tokenizer(self.result.tokenizer).token_bytes(int(token_id)).decode("utf-8", errors="replace")
        except Exception:
            log.debug("no text for token %s", token_id, exc_info=True)
        return label

    def _full_logits(self, position: int) -> np.ndarray:
        cached = self._logits_for
        if cached is None or cached[0] is not self.result or cached[1] != position:  # identity, not id()
            self._logits = self.result.logits_at(position)
            self._logits_for = (self.result, position)
        return self._logits

    def sampled_distribution(self) -> np.ndarray:
        """``[V]`` the distribution a sampler draws from at the shown position with the current settings."""
        t, k, top_p = self.sampling_settings()
        return sampling.sampling_distribution(self._full_logits(self.position), t, k, top_p)

    def _redraw_bars(self, *_args) -> None:
        r = self.result
        if r is None or r.n_tokens == 0:
            return
        pos = self.position
        n = min(self.bars.capacity(), r.top_ids.shape[1])
        ids = [int(i) for i in r.top_ids[pos, :n]]
        raw = [float(x) for x in r.top_probs[pos, :n]]
        if self.sampling_settings() == (1.0, 0, 1.0):
            # untouched settings: the sampler draws from the model's own distribution, which the core already
            # summarised (no [V] logits needed while typing)
            smp_rows, h_smp, kept = raw, float(r.entropy_bits[pos]), r.model.vocab_size
        else:
            smp = self.sampled_distribution()
            smp_rows, h_smp, kept = [float(smp[i]) for i in ids], sampling.entropy_bits(smp), int(np.count_nonzero(smp))
        self._row_ids = ids
        actual = int(r.tokens[pos + 1].id) if pos + 1 < r.n_tokens else None
        marked = ids.index(actual) if actual in ids else -1
        self.bars.set_rows([self._label(i) for i in ids], raw, smp_rows, marked)
        self._write_texts(pos, raw, h_smp, kept, actual)

    def _write_texts(self, pos: int, raw: list[float], h_smp: float, kept: int, actual: int | None) -> None:
        r = self.result
        before = r.text[: r.tokens[pos].end] if not r.tokens[pos].added else ""
        ctx = before[-28:].replace("\n", "⏎").replace("\t", "→") if before else "the start token"
        ctx = ("…" if len(before) > 28 else "") + ctx
        h_raw = float(r.entropy_bits[pos])
        where = "at the end" if pos == r.n_tokens - 1 else f"at position {pos}"
        like = (
            " (the model is almost sure)"
            if h_raw < 0.1
            else f" (as uncertain as a choice among {2**h_raw:.3g} equally likely tokens)"
        )
        self.summary.setText(
            f"After “<b>{html.escape(ctx)}</b>” ({where}): entropy <b>{h_raw:.2f} bits</b>{like} → sampling "
            f"<b>{h_smp:.2f} bits</b>, {kept:,} token{'s' if kept != 1 else ''} left to choose from."
        )
        shown = sum(raw)
        lines = [
            f"The {len(raw)} bars hold {100 * shown:.1f} % of the model's probability; the other "
            f"{r.model.vocab_size - len(raw):,} tokens share {100 * max(0.0, 1 - shown):.1f} %."
        ]
        if actual is not None:
            p_act = float(r.token_prob[pos + 1])
            rank = sampling.rank_of(self._full_logits(pos), actual)  # softmax keeps the order of the logits
            best = self._label(int(r.top_ids[pos, 0]))
            act = f"“<b style='color:{th.HIGHLIGHT}'>{html.escape(self._label(actual))}</b>”"
            if rank == 1:
                lines.insert(
                    0,
                    f"The model expected {act} ({100 * p_act:.3g} %), and the text does continue with "
                    f"it: rank 1 of {r.model.vocab_size:,}.",
                )
            else:
                lines.insert(
                    0,
                    f"The model expected “<b>{html.escape(best)}</b>” "
                    f"({100 * float(r.top_probs[pos, 0]):.1f} %); the text continues with {act}: "
                    f"{100 * p_act:.3g} %, rank {rank:,} of {r.model.vocab_size:,}.",
                )
        self.footer.setText("<br>".join(lines))

    def _on_row_clicked(self, row: int) -> None:
        if 0 <= row < len(self._row_ids):
            self.candidateChosen.emit(self._row_ids[row])

    # --- sampling ---------------------------------------------------------------------------------------------
    def set_seed(self, seed: int | None) -> None:
        """Start the sampled choices again from draw 0 of ``seed`` (None: a fresh seed on the next draw)."""
        self.seed, self.draws = seed, 0

    def sample_token(self) -> int | None:
        """Draw the next token from the sampling distribution at the shown position (temperature, top-k, top-p
        as set): draw number ``draws`` of ``seed``, then count it. None while there is no result."""
        r = self.result
        if r is None or r.n_tokens == 0:
            return None
        if self.seed is None:
            import secrets

            self.seed = secrets.randbelow(1 << 31)
        token = sampling.draw(self.sampled_distribution(), self.seed, self.draws)
        self.draws += 1
        return token

    # --- scenes and export -----------------------------------------------------------------------------------
    def scene_state(self) -> dict:
        t, k, p = self.sampling_settings()
        state = {"temperature": t, "top_k": k, "top_p": p}
        if self.seed is not None:
            state["seed"] = self.seed  # the scene's sampled choices start again from its first draw
        if self.selected_position >= 0:
            state["position"] = self.selected_position  # the window links it to every panel
        return state

    def apply_scene_state(self, state: dict) -> None:
        for key, slider, kind in (
            ("temperature", self.temperature, float),
            ("top_k", self.top_k, int),
            ("top_p", self.top_p, float),
        ):
            v = state.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                slider.setValue(kind(min(max(v, slider.minimum()), slider.maximum())))
        if "seed" in state:
            seed = state["seed"]
            self.set_seed(seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else None)
        pos = state.get("position")
        if (
            isinstance(pos, int)
            and not isinstance(pos, bool)
            and self.result is not None
            and -1 <= pos < self.result.n_tokens
        ):
            self.select_position(pos)

    def export_data(self) -> dict:
        r = self.result
        if r is None or r.n_tokens == 0:
            return {"rows": []}
        pos = self.position
        smp = self.sampled_distribution()
        rows = [
            {
                "rank": k + 1,
                "token_text": self._text(int(i)),
                "token_label": self._label(int(i)),
                "id": int(i),
                "probability": float(p),
                "sampling_probability": float(smp[int(i)]),
            }
            for k, (i, p) in enumerate(zip(r.top_ids[pos], r.top_probs[pos]))
        ]
        t, k, p = self.sampling_settings()
        out = {"rows": rows, "position": pos, "temperature": t, "top_k": k, "top_p": p}
        if self.replacement is not None and self.replacement.isVisibleTo(self):
            out |= self.replacement.export_data()
        return out

    def export_plot(self) -> QWidget:
        """The bars alone (or the view shown instead of them)."""
        if self.replacement is not None and self.replacement.isVisibleTo(self):
            return self.replacement
        return self.bars

    def caption_extra(self) -> str:
        r, pos = self.result, self.position
        where = "at the end" if r is None or pos == r.n_tokens - 1 else f"after token {pos}"
        t, k, p = self.sampling_settings()
        extra = "" if (t, k, p) == (1.0, 0, 1.0) else f" (temperature {t:g}, top-k {k}, top-p {p:g})"
        return f"next token {where}{extra}"


if __name__ == "__main__":
    from explainer.ui.panels._run_alone import run_alone

    raise SystemExit(run_alone(NextTokenPanel, "The cat sat on the"))
