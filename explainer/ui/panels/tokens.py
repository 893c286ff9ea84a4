"""Tokens panel: the text cut into tokens, one chip per token, with counts, surprisal heat and the chain rule.

With the model's own tokenizer (SmolLM2's, or that of the model opened) the chips are the analysed tokens of the ``AnalysisResult`` and carry
the model's probabilities. With cl100k_base / o200k_base (GPT-4, GPT-4o) the panel tokenizes the same text
itself, to compare: those tokens have ids, bytes and spans but no probabilities (this model never sees them).
Hover and selection link to the other panels through character spans.
"""

from __future__ import annotations

import html
import logging
import math

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QToolButton, QWidget

from explainer.core.types import Token
from explainer.ui import theme as th
from explainer.ui.panels.base import Panel, token_labels
from explainer.ui.panels.chips import Chip, ChipOverlay, ChipScrollArea, ChipView, HeatLegend
from explainer.ui.widgets.labels import FullTextLabel, LiveTextLabel, SteadyBox

log = logging.getLogger(__name__)

MODEL_TOKENIZER = "smollm2"
TOKENIZERS = (
    ("smollm2", "SmolLM2 (this model)"),
    ("cl100k_base", "cl100k_base (GPT-4)"),
    ("o200k_base", "o200k_base (GPT-4o)"),
)
MAX_FOREIGN_CHARS = 20_000  # other tokenizers run on the UI thread: cap the text
ALONE_CHAIN_SIZE = "xx-large"  # the chain rule's line when the panel has the whole area: Qt writes it twice as large
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def format_probability(log10_p: float) -> str:
    """10^x as "4.0 × 10⁻²⁴" (or a plain percentage when it is not tiny)."""
    if not math.isfinite(log10_p):
        return "0"
    if log10_p > -3:
        return f"{100 * 10**log10_p:.3g} %"
    exp = math.floor(log10_p)
    mant = 10 ** (log10_p - exp)
    if mant >= 9.95:
        mant, exp = 1.0, exp + 1
    return f"{mant:.1f} × 10{str(exp).translate(_SUPERSCRIPT)}"


def chip_probability(p: float) -> str:
    """A token's probability as the chain rule's line writes it ("30.6 %", "2.4 × 10⁻⁵")."""
    return format_probability(math.log10(p)) if p > 0 else "0"


def counted(n: int, noun: str) -> str:
    """ "1 token", "2 tokens", "0 tokens"."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def hex_bytes(data: bytes, limit: int = 24) -> str:
    s = " ".join(f"{b:02X}" for b in data[:limit])
    return s + (" …" if len(data) > limit else "")


class TokensPanel(Panel):
    title = "Tokens"
    explanation = (
        "The model never sees letters: the text is cut into <b>tokens</b>, pieces of a fixed vocabulary learned "
        "by byte-pair encoding. Each chip is one token with its id; · is a space (part of the token), ⏎ a new "
        "line. Hover a chip for its bytes and probability."
    )
    details = (
        "A common word with a leading space is usually one token; a rare word is split into several pieces. "
        "Switch the tokenizer to compare with GPT-4's (cl100k_base) and GPT-4o's (o200k_base). Surprisal heat "
        "colours each chip by −log₂ P(token | the tokens before it), how unexpected it was, and writes that "
        "probability under the token instead of its id. The chain rule multiplies these probabilities into the "
        "probability of the whole text. Why? colours each chip by input × "
        "gradient of the shown prediction's log-probability: how much the token pushes it up (vermillion) or down "
        "(blue), a first-order estimate."
    )

    tokenizerChanged = Signal(str)
    whyToggled = Signal(bool)  # "Why?": explain the chosen prediction on the chips (the window computes it)
    aloneChanged = Signal(bool)  # the panel now has the whole area (True) or shares it (False): see set_alone

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.tokenizer_name = MODEL_TOKENIZER
        self._tokens: tuple[Token, ...] = ()  # what the chips show (model's or another tokenizer's)
        self._foreign_error = ""
        self._foreign_vocab = 0
        self._foreign_truncated = False
        self._foreign_dropped: tuple = ()
        self.overlay: ChipOverlay | None = None  # numbers over the model's chips (set by the window)
        self._built: tuple | None = None  # (what the model's chips were built from, the chips): see _kept_chips

        bar = QHBoxLayout()
        bar.setSpacing(10)
        self.selector = QComboBox()
        for name, label in TOKENIZERS:
            self.selector.addItem(label, name)
        self.selector.setToolTip("Which tokenizer cuts the text. Only the model's own tokens go into the model.")
        self.heat = QCheckBox("Surprisal heat")
        self.heat.setToolTip(
            "Colour each chip by how surprised the model was by that token (−log₂ p), and write its probability p "
            "given the tokens before it under it (instead of its id)."
        )
        self.legend = HeatLegend()
        self.legend.setVisible(False)
        self.why = QToolButton(text="Why?", checkable=True, focusPolicy=Qt.NoFocus)
        self.why.setToolTip(
            "Explain the prediction: colour each token by how much it pushes the chosen next token up or down "
            "(input × gradient of its log-probability). Right-click a bar in the next-token panel to choose "
            "another token."
        )
        self.why.toggled.connect(self.whyToggled)
        self.counts = FullTextLabel()  # in the title row, where there is room; elided (whole in its tooltip)
        self.counts.setContentsMargins(12, 0, 12, 0)
        self.counts.setMinimumWidth(40)
        self.vocab = QLabel()
        self.vocab.setObjectName("panelHelp")  # muted
        bar.addWidget(QLabel("Tokenizer:"))
        bar.addWidget(self.selector)
        bar.addWidget(self.vocab)
        bar.addWidget(self.heat)
        bar.addWidget(self.legend)
        bar.addStretch(1)
        self.body.addLayout(bar)
        self.add_header_widget(SteadyBox(self.counts), 1)
        self.add_header_widget(self.why)  # in the title row: the counts beside it give way on a small screen

        self.view = ChipView()
        self.view.set_tooltip_provider(self._tooltip)
        self.scroll = ChipScrollArea(self.view)  # as tall as the chips (one row at least); scrolls when squeezed
        self.body.addWidget(self.scroll)

        self.alone = False  # the panel has the whole area (set_alone)
        self.chain = LiveTextLabel()
        self.chain.setToolTip(
            "Chain rule: P(text) = P(t₁)·P(t₂ | t₁)·P(t₃ | t₁ t₂)·… — each factor is one "
            "token's probability given everything before it."
        )
        self.body.addWidget(SteadyBox(self.chain))  # a new text lays the window out only when it needs more room
        self.body.addStretch(1)  # spare height goes below the chain rule, not between it and the chips
        self._spare = self.body.itemAt(self.body.count() - 1)
        self.scroll.room = lambda: self.scroll.height() + self._spare.geometry().height()  # alone, chips grow into it

        self.selector.currentIndexChanged.connect(self._on_selector_changed)
        self.heat.toggled.connect(self._on_heat_toggled)
        self.view.chipHovered.connect(self._on_chip_hovered)
        self.view.chipClicked.connect(self._on_chip_clicked)

    # --- protocol ---------------------------------------------------------------------------------------------
    @property
    def is_model_tokenizer(self) -> bool:
        return self.tokenizer_name == MODEL_TOKENIZER

    def set_alone(self, alone: bool) -> None:
        """Alone, the chips grow into the panel's spare height, magnified as far as they fit (the chain rule stays
        right under them, in larger letters: it is the product of the numbers under the grown chips); among the
        other panels they are their normal size. The height they leave goes below the chain rule."""
        self.scroll.set_fill(alone)
        changed = alone != self.alone
        if changed:
            self.alone = alone
            if self.result is not None:
                self._update_labels()
            self.aloneChanged.emit(alone)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.scroll.refit_later()  # alone, a taller panel may magnify the chips further

    def set_tokenizer(self, name: str) -> None:
        i = self.selector.findData(name)
        if i >= 0:
            self.selector.setCurrentIndex(i)

    def set_heat(self, on: bool) -> None:
        self.heat.setChecked(on)

    def set_why(self, on: bool) -> None:
        self.why.setChecked(on)

    def set_overlay(self, overlay: ChipOverlay | None) -> None:
        """Lay numbers over the model's chips (None: the usual colours)."""
        self.overlay = overlay
        self.refresh()

    def refresh(self) -> None:
        r = self.result
        if r is None:
            self._tokens = ()
            self.view.set_chips([])
            self.counts.setText("")
            self.vocab.setText("")
            self.chain.setText("<i>Waiting for the model…</i>")
            return
        self._name_model_tokenizer(r.tokenizer)
        if self.is_model_tokenizer:
            self._tokens = r.tokens
        else:
            self._tokens = self._tokenize_foreign(r.text)
        self.heat.setEnabled(self.is_model_tokenizer)
        self.legend.setVisible(self.is_model_tokenizer and self.heat.isChecked())
        self.view.set_theme(self.theme)
        self.legend.theme = self.theme
        self.view.set_chips(self._build_chips())
        self._update_marks()
        self._update_labels()

    def highlight_token(self, position: int) -> None:
        super().highlight_token(position)
        self._update_marks()

    def select_position(self, position: int) -> None:
        super().select_position(position)
        self._update_marks()

    def _name_model_tokenizer(self, name: str) -> None:
        """The first choice is always the analysed model's own tokenizer: name it after the model."""
        label = dict(TOKENIZERS)[MODEL_TOKENIZER] if name == MODEL_TOKENIZER else f"{name} (this model)"
        i = self.selector.findData(MODEL_TOKENIZER)
        if self.selector.itemText(i) != label:
            self.selector.setItemText(i, label)

    # --- building -------------------------------------------------------------------------------------------
    def _tokenize_foreign(self, text: str):
        self._foreign_error, self._foreign_truncated = "", len(text) > MAX_FOREIGN_CHARS
        try:
            from explainer.core.tokenizers import get_tokenizer

            tok = get_tokenizer(self.tokenizer_name)
            self._foreign_vocab = tok.vocab_size
            t = tok.tokenize(text[:MAX_FOREIGN_CHARS])
            self._foreign_dropped = t.dropped
            return t.tokens
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:
            log.exception("tokenizer %s failed", self.tokenizer_name)
            self._foreign_error = str(e) or type(e).__name__
            self._foreign_dropped = ()
            return ()

    def _dropped(self):
        if self.result is None:
            return ()
        return self.result.dropped if self.is_model_tokenizer else self._foreign_dropped

    def _build_chips(self) -> list[Chip]:
        r, theme = self.result, self.theme
        heat = self.heat.isChecked() and self.is_model_tokenizer
        ov = self.overlay if self.is_model_tokenizer else None
        chips = self._kept_chips(heat, ov)
        labels = token_labels(self._tokens)
        for i in range(len(chips), len(self._tokens)):
            t = self._tokens[i]
            if ov is not None and i in ov.fills:
                fill = ov.fills[i]
            elif t.special:
                fill = th.SPECIAL
            elif heat and i < len(r.surprisal_bits) and not math.isnan(float(r.surprisal_bits[i])):
                fill = th.surprisal_colour(float(r.surprisal_bits[i]))
            else:
                fill = th.chip_colour(theme, i)
            label = labels[i]
            sub = str(t.id)
            if ov is not None:
                sub = ov.subs.get(i, sub)
            elif heat and i < len(r.token_prob) and not math.isnan(float(r.token_prob[i])):
                sub = chip_probability(float(r.token_prob[i]))  # the chain rule's factor p_i
            chips.append(Chip(label, sub, fill, italic=t.added, line_break=t.bytes.endswith(b"\n") and not t.special))
        if self.is_model_tokenizer and ov is None:
            self._built = ((r.ids, r.start_token, r.surprisal_bits if heat else None, heat, theme), list(chips))
        else:
            self._built = None
        for d in self._dropped():
            chips.append(
                Chip(
                    f"dropped 0x{d.value:02X}",
                    "no token",
                    th.CHIP_COLOURS_LIGHT[1] if not theme.is_dark else theme.surface,
                    border=th.WARNING,
                )
            )
        return chips

    def _kept_chips(self, heat: bool, overlay: ChipOverlay | None) -> list[Chip]:
        """The chips of the last result's leading tokens that this result shows alike, to reuse as they are (typing
        at the end of a long text changes the last chips only): the same token ids at the same places, the same
        start token, theme and heat switch, and with the heat on the same surprisal there. None with an overlay
        or another tokenizer (their chips are built anew)."""
        built, r = self._built, self.result
        if built is None or overlay is not None or not self.is_model_tokenizer:
            return []
        (ids, start, surprisal, was_heat, theme), chips = built
        if (start, was_heat, theme) != (r.start_token, heat, self.theme):
            return []
        n = min(len(ids), len(r.ids), len(chips))
        differ = ids[:n] != r.ids[:n]
        if heat:
            a, b = surprisal[:n], r.surprisal_bits[:n]
            differ |= (a != b) & ~(np.isnan(a) & np.isnan(b))
        first = np.flatnonzero(differ)
        return chips[: int(first[0]) if first.size else n]

    def _update_labels(self) -> None:
        r = self.result
        typed = [t for t in self._tokens if not t.added]
        n_chars = len(r.text) if self.is_model_tokenizer else min(len(r.text), MAX_FOREIGN_CHARS)
        cpt = n_chars / max(1, len(typed))
        extra = " (+ start)" if len(typed) < len(self._tokens) else ""
        vocab = r.model.vocab_size if self.is_model_tokenizer else self._foreign_vocab
        self.counts.setText(
            f"{counted(len(typed), 'token')}{extra} · {counted(n_chars, 'character')} · {cpt:.2f} characters/token"
        )
        self.vocab.setText(f"vocabulary {vocab:,}" if vocab else "")
        notes = []
        if self._dropped():
            notes.append(
                f"<span style='color:{th.WARNING}'>⚠ {len(self._dropped())} byte(s) have no token and "
                "were left out.</span>"
            )
        if self.is_model_tokenizer and r.truncated:
            notes.append(f"<span style='color:{th.WARNING}'>⚠ Only the first {r.n_tokens} tokens are analysed.</span>")
        if not self.is_model_tokenizer:
            if self._foreign_error:
                notes.insert(0, f"<span style='color:{th.HIGHLIGHT}'>{html.escape(self._foreign_error)}</span>")
            else:
                notes.insert(
                    0,
                    "These are another model's tokens, for comparison: SmolLM2 does not use them, so "
                    "there are no probabilities here.",
                )
            if self._foreign_truncated:
                notes.append(f"Only the first {MAX_FOREIGN_CHARS:,} characters are shown.")
        elif len(typed) == 0:
            notes.insert(0, "Type some text to see its tokens.")
        else:
            n = int(np.count_nonzero(~np.isnan(r.token_prob)))
            notes.insert(
                0,
                (
                    f"Chain rule: P(text) = p₁ · p₂ · … · p<sub>{n}</sub> ≈ <b>{format_probability(r.sentence_log10)}"
                    f"</b> &nbsp;·&nbsp; log₁₀ P = <b>{r.sentence_log10:.2f}</b> &nbsp;·&nbsp; "
                    f"−log₂ P = <b>{r.sentence_bits:.1f} bits</b>"
                    + ("" if r.start_token else " (the first token has no probability without a start token)")
                ),
            )
        text = "<br>".join(notes)
        self.chain.setText(f"<span style='font-size:{ALONE_CHAIN_SIZE}'>{text}</span>" if self.alone else text)

    # --- linking --------------------------------------------------------------------------------------------
    def _model_positions_for(self, index: int) -> set[int]:
        """Chip ``index`` → the model positions it stands for (itself, or overlapping spans)."""
        if index < 0 or index >= len(self._tokens) or self.result is None:
            return set()
        if self.is_model_tokenizer:
            return {index}
        t = self._tokens[index]
        return {i for i, m in enumerate(self.result.tokens) if not m.added and m.start < t.end and t.start < m.end}

    def _chips_for(self, position: int) -> set[int]:
        """Model position → chips to mark."""
        if position < 0 or self.result is None or position >= self.result.n_tokens:
            return set()
        if self.is_model_tokenizer:
            return {position}
        m = self.result.tokens[position]
        return {i for i, t in enumerate(self._tokens) if t.start < m.end and m.start < t.end}

    def _update_marks(self) -> None:
        self.view.set_marks(
            highlighted=self._chips_for(self.hovered_position), selected=self._chips_for(self.selected_position)
        )

    def _on_chip_hovered(self, index: int) -> None:
        pos = min(self._model_positions_for(index), default=-1)
        if pos != self.hovered_position:
            self.hovered_position = pos
            self.tokenHovered.emit(pos)

    def _on_chip_clicked(self, index: int) -> None:
        positions = self._model_positions_for(index)
        if positions:
            pos = max(positions)  # the last overlapping model token: its next-token distribution
            self.selected_position = -1 if pos == self.selected_position else pos
            self._update_marks()
            self.tokenSelected.emit(self.selected_position)

    def _on_selector_changed(self, _index: int) -> None:
        self.tokenizer_name = self.selector.currentData()
        self.refresh()
        self.tokenizerChanged.emit(self.tokenizer_name)

    def _on_heat_toggled(self, _on: bool) -> None:
        self.refresh()

    # --- tooltip --------------------------------------------------------------------------------------------
    def _tooltip(self, index: int) -> str:
        r = self.result
        if r is None:
            return ""
        if index >= len(self._tokens):
            d = self._dropped()[index - len(self._tokens)]
            return (
                f"Byte 0x{d.value:02X} (in character {d.char_index + 1}) has no token in this vocabulary; "
                "it is left out, so the model never sees it."
            )
        t = self._tokens[index]
        name = self.selector.currentText()
        if t.added:
            return (
                f"<b>Start token</b> {html.escape(t.text)} (id {t.id}), added so the model knows where the "
                "text begins. It is not part of your text and has no probability."
            )
        rows = [
            f"<b style='font-size:14pt'>{html.escape(t.display)}</b> &nbsp; id <b>{t.id}</b> in {name}",
            f"bytes: <tt>{hex_bytes(t.bytes)}</tt>" + (" (part of a character)" if t.incomplete else ""),
            f"characters {t.start + 1}–{t.end} of the text" if t.end > t.start else "no characters",
        ]
        if t.special:
            rows.append("a <b>special token</b>: it marks structure (e.g. a chat turn), it is not text")
        if self.is_model_tokenizer and index < r.n_tokens and not math.isnan(float(r.token_prob[index])):
            p, s = float(r.token_prob[index]), float(r.surprisal_bits[index])
            rows.append(f"probability given the tokens before it: <b>{100 * p:.3g} %</b>")
            rows.append(f"surprisal: <b>{s:.2f} bits</b>")
            prev = r.top_ids[index - 1]
            hits = [k for k, tid in enumerate(prev) if int(tid) == t.id]
            rows.append(
                f"the model's guess no. {hits[0] + 1}" if hits else f"not among the model's top {len(prev)} guesses"
            )
        return "<br>".join(rows)

    # --- scenes and export -----------------------------------------------------------------------------------
    def scene_state(self) -> dict:
        return {"tokenizer": self.tokenizer_name, "surprisal_heat": self.heat.isChecked(), "why": self.why.isChecked()}

    def apply_scene_state(self, state: dict) -> None:
        if isinstance(state.get("tokenizer"), str):
            self.set_tokenizer(state["tokenizer"])
        if isinstance(state.get("surprisal_heat"), bool):
            self.set_heat(state["surprisal_heat"])
        if isinstance(state.get("why"), bool):
            self.set_why(state["why"])

    def export_data(self) -> dict:
        r, model = self.result, self.is_model_tokenizer
        ov = self.overlay if model else None
        rows = []
        for i, t in enumerate(self._tokens):
            row = {
                "position": i,
                "token_text": t.text,  # the token's own text (the start token: <|endoftext|>)
                "token_label": t.label,  # as the chip shows it: · for a space, ⏎ for a new line, ⟨start⟩
                "bytes": t.bytes.hex(),
                "id": int(t.id),
                "start": t.start,
                "end": t.end,
                "special": bool(t.special),
            }
            if model and r is not None and i < r.n_tokens:
                p = float(r.token_prob[i])
                row |= {
                    "probability": None if math.isnan(p) else p,
                    "surprisal_bits": None if math.isnan(p) else float(r.surprisal_bits[i]),
                }
            if ov is not None:
                row[ov.column] = ov.values.get(i)
            rows.append(row)
        return {"rows": rows, "tokenizer": self.tokenizer_name, **(ov.meta if ov is not None else {})}

    def caption_extra(self) -> str:
        if self.overlay is not None and self.is_model_tokenizer:
            return self.overlay.caption
        return f"tokens ({self.selector.currentText()})"

    def export_plot(self) -> QWidget:
        """The chips alone (all of them, also those scrolled out of view)."""
        return self.view


if __name__ == "__main__":
    from explainer.ui.panels._run_alone import run_alone

    raise SystemExit(
        run_alone(TokensPanel, "How many r's are in strawberry? The cat sat on the mat.\nNǐ hǎo 你好 👍 a\x04b")
    )
