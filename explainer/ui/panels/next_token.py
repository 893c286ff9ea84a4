"""Next-token panel: the model's top candidates after a position, and what a sampler would draw.

The position is the pinned one (a clicked token; the title row then says "Pinned after …" with a button that
unpins), else the token at the editor's caret, else the end of the text. Left bar of each row: the model's own
probability (temperature 1, from ``result.top_probs``). Right bar: the *sampling* distribution after temperature,
top-k and top-p (``core.sampling``), renormalised. Click a row, or move to it with the arrow keys and press Enter
or Space, to choose that token (``candidateChosen``; the window continues the text with it). "Sample"
(``sampleRequested``) asks the window to draw one: ``sample_token`` draws from the sampling distribution with the
panel's seed (``core.sampling.draw``), so a scene that records its seed shows the same sampled choices every time.
Once there is a seed, the footer names the token the next draw gives with the settings as they are (``next_sample``):
moving the temperature visibly changes the sampled choice.
"""

from __future__ import annotations

import html
import logging

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QLabel, QPushButton, QToolButton, QWidget
from superqt import QLabeledDoubleSlider, QLabeledSlider

from explainer.core import sampling
from explainer.core.types import Token
from explainer.ui import theme as th
from explainer.ui.panels.base import Panel
from explainer.ui.widgets.bars import RAW_COLOUR, SAMPLE_COLOUR, BarsView, SliderKeys
from explainer.ui.widgets.labels import LiveTextLabel, SteadyBox

log = logging.getLogger(__name__)


def token_label(data: bytes) -> str:
    return Token(0, data, 0, 0).display


class NextTokenPanel(Panel):
    title = "Next token"
    explanation = (
        "The probability of each possible next token after the caret (or a pinned token); over all "
        "{vocab:,} tokens they sum to 100 %. <span style='color:{raw}'>■</span> the model, "
        "<span style='color:{smp}'>■</span> what a sampler draws from after temperature, top-k and top-p. "
        "Click a bar to continue the text with that token."
    )
    details = (
        "Sampling changes only the choice, not the model. Entropy (in bits) measures the uncertainty: 3.9 bits "
        "is as uncertain as a choice among 15 equally likely tokens. The model always offers a fluent next "
        "token, true or not. Click a token elsewhere to pin the prediction after it (Esc unpins)."
    )
    follows_caret = True

    candidateChosen = Signal(int)  # token id
    sampleRequested = Signal()
    refreshed = Signal()  # drawn for a new result or position (``position``): what a replacement view follows

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
        self.sample_button = QPushButton("&Sample")
        self.sample_button.setToolTip(
            "Draw the next token from the sampling distribution (right-hand bars) and continue the text with it "
            "(Ctrl+G). A scene's seed makes its draws the same every time; Ctrl+Z takes the token back."
        )
        self.sample_button.clicked.connect(self.sampleRequested)
        self.pin = QToolButton()
        self.pin.setAutoRaise(True)
        self.pin.setToolTip(
            "The prediction stays after this token while you type or move the caret. Click here (or press Esc) to "
            "follow the caret again."
        )
        self.pin.setAccessibleName("Unpin the position")
        self.pin.clicked.connect(lambda: self.tokenSelected.emit(-1))
        self.pin.hide()
        self.add_header_widget(self.pin)
        for col, (name, w) in enumerate(
            (("Temperature", self.temperature), ("Top-k (0 = off)", self.top_k), ("Top-p (1 = off)", self.top_p))
        ):
            grid.addWidget(QLabel(name), 0, col)
            grid.addWidget(w, 1, col)
        grid.addWidget(reset, 1, 3)
        grid.addWidget(self.sample_button, 1, 4)
        self.body.addLayout(grid)

        self.summary = LiveTextLabel()
        self.body.addWidget(SteadyBox(self.summary))  # a new text lays the window out only when it needs more room
        self.bars = BarsView()
        self.body.addWidget(self.bars, 1)
        self.footer = LiveTextLabel()
        self.body.addWidget(SteadyBox(self.footer))

        for s in (self.temperature, self.top_k, self.top_p):
            s.valueChanged.connect(self._redraw_bars)
            SliderKeys(s)
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
        """The position whose next-token distribution is shown: the pinned one, else the caret's, else the last."""
        return self.focus_position

    def select_position(self, position: int) -> None:
        super().select_position(position)
        self.refresh()

    def _show_pin(self) -> None:
        r, p = self.result, self.selected_position
        pinned = r is not None and 0 <= p < r.n_tokens
        if pinned:
            self.pin.setText(f"Pinned after “{r.tokens[p].label}” ✕")
        self.pin.setVisible(pinned)

    def set_theme(self, theme: th.Theme) -> None:
        self.bars.theme = theme
        super().set_theme(theme)

    def refresh(self) -> None:
        r = self.result
        self._show_pin()
        if r is None or r.n_tokens == 0:
            self.summary.setText("<i>Waiting for the model…</i>")
            self.footer.setText("")
            self.bars.set_rows([], [], [])
        else:
            self._help.setText(self._explanation(r.model.vocab_size))
            self._redraw_bars()
        self.refreshed.emit()

    def candidate_label(self, token_id: int) -> str:
        """A token as the bars name it (a piece of a character as its bytes)."""
        return self._label(token_id)

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
        upcoming = self.next_sample()
        if upcoming is not None:
            lines.insert(
                0,
                f"<span style='color:{SAMPLE_COLOUR}'>■</span> Next sample (Ctrl+G): “<b>"
                f"{html.escape(self._label(upcoming))}</b>”, draw {self.draws + 1} of seed {self.seed}.",
            )
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
        self._redraw_bars()

    def next_sample(self) -> int | None:
        """The token the next ``sample_token`` draws with the settings as they are now (None without a seed or a
        result): shown under the bars, so a change of temperature visibly changes the sampled choice."""
        r = self.result
        if self.seed is None or r is None or r.n_tokens == 0:
            return None
        return sampling.draw(self.sampled_distribution(), self.seed, self.draws)

    def sample_token(self) -> int | None:
        """Draw the next token from the sampling distribution at the shown position (temperature, top-k, top-p
        as set): draw number ``draws`` of ``seed``, then count it. None while there is no result."""
        r = self.result
        if r is None or r.n_tokens == 0:
            return None
        if self.seed is None:
            import secrets

            self.seed = secrets.randbelow(1 << 31)
        token = self.next_sample()
        self.draws += 1
        self._redraw_bars()  # the next draw's choice
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

    def keyboard_target(self) -> QWidget:
        """The bars: ↑ / ↓ choose a candidate, Enter continues the text with it."""
        return self.bars if self.bars.isVisibleTo(self) else self

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
