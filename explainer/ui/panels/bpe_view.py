"""BPE panel: why "tokens are not letters", in three tabs for the word under the editor's cursor.

- Variants: the word as typed, after a space, capitalised and in capitals, each with its tokens and ids.
- BPE merges: a step-by-step replay of the merges SmolLM2's tokenizer makes, from single bytes to the tokens.
- Bytes: each character's UTF-8 bytes and where the token boundaries cut them.

The word comes from ``set_cursor_word`` (the main window wires the editor's cursor to it), from a scene
(``set_word``) or is typed into the panel's own field; until then, and whenever the cursor's word is no longer in
the text (another text was pasted), the last word of the text is used. Everything here is SmolLM2's tokenizer.
"""

from __future__ import annotations

import html
import logging
import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSlider,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from explainer.core.bpe import MergeStep, byte_view, initial_pieces, replay_merges, variants
from explainer.core.types import Token, Tokenization
from explainer.ui import theme as th
from explainer.ui.panels.base import Panel, vertical_scroll
from explainer.ui.panels.chips import Chip, ChipView
from explainer.ui.widgets.byte_strip import ByteStrip

log = logging.getLogger(__name__)

MAX_WORD_CHARS = 200
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def part_label(data: bytes) -> str:
    """A byte string as a chip shows it (whitespace visible, incomplete UTF-8 as hex)."""
    return Token(0, data, 0, 0).display


def _label(text: str, size_delta: float = 3, wrap: bool = True) -> QLabel:
    lab = QLabel(text)
    lab.setTextFormat(Qt.RichText)
    lab.setWordWrap(wrap)
    f = QFont(lab.font())
    f.setPointSizeF(th.SMALL_FONT_PT + size_delta)
    lab.setFont(f)
    return lab


class BpePanel(Panel):
    title = "Tokens are not letters"
    explanation = (
        "<b>Variants</b>: the same word as typed, after a space, capitalised and in capitals gets different "
        "tokens. <b>BPE merges</b>: byte-pair encoding starts from single bytes and repeatedly joins the "
        "neighbouring pair that was learned first (lowest rank) until no learned pair is left. "
        "<b>Bytes</b>: every character is stored as 1–4 bytes (UTF-8); a token can hold part of a character. "
        "The model receives only the token ids. All three tabs use SmolLM2's tokenizer, also when another "
        "model is open."
    )

    wordChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._tokenizer = None  # built on first use: the window appears without waiting for it
        self.word = ""
        self.word_source = ""  # "user" (typed in the field), "scene", "cursor" or "text" (the text's last word)
        self.steps: list[MergeStep] = []
        self.start_parts: tuple[tuple[bytes, ...], ...] = ()
        self.step = 0
        self.tokenization: Tokenization | None = None

        bar = QHBoxLayout()
        bar.addWidget(_label("Word:", 3, False))
        self.field = QLineEdit()
        self.field.setPlaceholderText("put the cursor on a word in the editor, or type one here")
        self.field.setMaxLength(MAX_WORD_CHARS)
        f = QFont(self.field.font())
        f.setPointSizeF(th.LABEL_FONT_PT + 2)
        self.field.setFont(f)
        bar.addWidget(self.field, 1)
        self.body.addLayout(bar)
        self.tabs = QTabWidget()
        self.body.addWidget(self.tabs, 1)
        self.tabs.addTab(self._build_variants(), "Variants")
        self.tabs.addTab(self._build_merges(), "BPE merges")
        self.tabs.addTab(self._build_bytes(), "Bytes")
        self.field.textChanged.connect(self._on_field_changed)
        self.field.textEdited.connect(lambda _t: setattr(self, "word_source", "user"))

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from explainer.core.tokenizers import get_tokenizer

            self._tokenizer = get_tokenizer("smollm2")
        return self._tokenizer

    # --- building the tabs --------------------------------------------------------------------------------
    def _build_variants(self) -> QWidget:
        page = QWidget()
        self.variant_grid = QGridLayout()
        self.variant_grid.setHorizontalSpacing(14)
        self.variant_rows: list[tuple[QLabel, ChipView, QLabel]] = []
        for k in range(5):  # variant | its count | its chips, row under row at the top: one glance compares them
            name, view, count = _label("", 5, False), ChipView(), _label("", 3, False)
            for col, w in ((0, name), (1, count), (2, view)):
                self.variant_grid.addWidget(w, k, col, Qt.AlignVCenter)
            self.variant_rows.append((name, view, count))
        self.variant_note = _label("")  # right under the rows it explains
        self.variant_grid.addWidget(self.variant_note, 5, 0, 1, 3)
        self.variant_grid.setColumnStretch(2, 1)
        self.variant_grid.setRowStretch(6, 1)  # spare height below the rows, not between them
        inner = QWidget()
        inner.setLayout(self.variant_grid)
        lay = QVBoxLayout(page)
        lay.addWidget(vertical_scroll(inner), 1)
        return page

    def _build_merges(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        nav = QHBoxLayout()
        self.prev_button, self.next_button = QPushButton("◀ Prev"), QPushButton("Next ▶")
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setMinimum(0)
        self.step_label = _label("", 4, False)
        nav.addWidget(self.prev_button)
        nav.addWidget(self.slider, 1)
        nav.addWidget(self.next_button)
        nav.addWidget(self.step_label)
        lay.addLayout(nav)
        row = QHBoxLayout()
        left = QVBoxLayout()
        self.merge_view = ChipView()
        self.merge_view.tooltip_for = self._merge_tooltip
        merge_scroll = vertical_scroll(self.merge_view)
        merge_scroll.setMaximumHeight(int(4 * (self.merge_view.chip_height + ChipView.GAP_Y) + 2 * ChipView.MARGIN))
        left.addWidget(merge_scroll)
        self.merge_text = _label("", 5)
        left.addWidget(self.merge_text)
        self.check = _label("", 4)
        left.addWidget(self.check)
        left.addStretch(1)
        row.addLayout(left, 3)
        self.merge_list = QListWidget()
        self.merge_list.setToolTip("Every merge in order, with its rank (= the id of the merged token).")
        f = QFont(self.merge_list.font())
        f.setPointSizeF(th.SMALL_FONT_PT + 3)
        self.merge_list.setFont(f)
        row.addWidget(self.merge_list, 2)
        lay.addLayout(row, 1)
        self.prev_button.clicked.connect(lambda: self.set_step(self.step - 1))
        self.next_button.clicked.connect(lambda: self.set_step(self.step + 1))
        self.slider.valueChanged.connect(self.set_step)
        self.merge_list.currentRowChanged.connect(lambda r: self.set_step(r) if r >= 0 else None)
        return page

    def _build_bytes(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        self.bytes_summary = _label("")
        lay.addWidget(self.bytes_summary)
        self.strip = ByteStrip()
        lay.addWidget(vertical_scroll(self.strip), 1)
        lay.addWidget(
            _label(
                f"Coloured bands under the bytes are the tokens. <span style='color:{th.HIGHLIGHT}'>✂</span> marks a "
                "token boundary inside a character; a band with a dashed border is a token that is only part of a "
                "character, so it cannot be shown as text on its own."
            )
        )
        return page

    # --- protocol ---------------------------------------------------------------------------------------------
    def set_cursor_word(self, word: str) -> None:
        """The word under the editor's cursor (ignored when empty, so the last word stays)."""
        if word and word.strip():
            self.word_source = "cursor"
            self.field.setText(word[:MAX_WORD_CHARS])

    def set_word(self, word: str) -> None:
        self.word_source = "scene"
        self.field.setText(word[:MAX_WORD_CHARS])

    def refresh(self) -> None:
        r = self.result
        if r is not None and self._word_is_stale(r.text):
            words = _WORD.findall(r.text)
            if words:
                self.word_source = "text"
                self.field.setText(words[-1][:MAX_WORD_CHARS])  # updates through textChanged
                return
        self._update_all()

    def _word_is_stale(self, text: str) -> bool:
        """No word yet, or one taken from an earlier text (the cursor's or the last word) that this text lacks;
        a word the user typed or a scene chose stays."""
        word = self.field.text().strip()
        if not word:
            return True
        return self.word_source in ("cursor", "text") and word not in _WORD.findall(text)

    def set_theme(self, theme: th.Theme) -> None:
        for v in [self.merge_view] + [row[1] for row in self.variant_rows]:
            v.set_theme(theme)
        self.strip.set_theme(theme)
        super().set_theme(theme)

    # --- updating ---------------------------------------------------------------------------------------------
    def _on_field_changed(self, text: str) -> None:
        self._update_all()
        self.wordChanged.emit(text)

    def _update_all(self) -> None:
        self.word = self.field.text()
        try:
            self._update_variants()
            self._update_merges()
            self._update_bytes()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:
            log.exception("BPE panel failed on %r", self.word)
            self.merge_text.setText(f"<span style='color:{th.HIGHLIGHT}'>{html.escape(str(e))}</span>")

    def _chips(self, tokens) -> list[Chip]:
        return [
            Chip(
                t.display,
                str(t.id),
                th.SPECIAL if t.special else th.chip_colour(self.theme, i),
                border=th.WARNING if t.incomplete else "",
            )
            for i, t in enumerate(tokens)
        ]

    def _update_variants(self) -> None:
        rows = variants(self.tokenizer, self.word) if self.word.strip() else []
        self.variant_data = rows
        for k, (name, view, count) in enumerate(self.variant_rows):
            visible = k < len(rows)
            for w in (name, view, count):
                w.setVisible(visible)
            if visible:
                label, tok = rows[k]
                name.setText(f"<tt>{html.escape(label)}</tt>")
                view.set_chips(self._chips(tok.tokens))
                n = len(tok.tokens)
                count.setText(f"<b>{n}</b> token{'s' if n != 1 else ''}")
        if not rows:
            self.variant_note.setText("Put the cursor on a word (or type one above).")
            return
        tok = rows[0][1]
        pieces = " · ".join(f"«{html.escape(t.display)}»" for t in tok.tokens)
        ids = ", ".join(str(i) for i in tok.ids)
        self.variant_note.setText(
            f"The model never sees letters, only token ids: «{html.escape(self.word.strip())}» arrives as "
            f"<b>[{ids}]</b> ({pieces}). To count its letters it would have to have learned how each piece is "
            "spelled. (· is a space, part of the token.)"
        )

    def _update_merges(self) -> None:
        word = self.word
        if word:
            self.start_parts = initial_pieces(self.tokenizer, word)
            self.steps = replay_merges(self.tokenizer, word)
        else:
            self.start_parts, self.steps = (), []
        self.merge_list.blockSignals(True)
        self.merge_list.clear()
        self.merge_list.addItem(f"0. start: {sum(len(p) for p in self.start_parts)} single bytes")
        for k, s in enumerate(self.steps, 1):
            self.merge_list.addItem(
                f"{k}. {part_label(s.left)} + {part_label(s.right)} → {part_label(s.merged)}   (rank {s.rank:,})"
            )
        self.merge_list.blockSignals(False)
        self.slider.blockSignals(True)
        self.slider.setMaximum(len(self.steps))
        self.slider.blockSignals(False)
        self.set_step(len(self.steps))

    def parts_at(self, step: int) -> tuple[tuple[bytes, ...], ...]:
        """The byte parts of every piece after ``step`` merges (0 = the single bytes)."""
        return self.start_parts if step == 0 else self.steps[step - 1].pieces

    def ids_at(self, step: int) -> list[int]:
        return [self.tokenizer.rank(p) for piece in self.parts_at(step) for p in piece]

    def set_step(self, step: int) -> None:
        n = len(self.steps)
        step = max(0, min(n, int(step)))
        self.step = step
        self.slider.blockSignals(True)
        self.slider.setValue(step)
        self.slider.blockSignals(False)
        self.merge_list.blockSignals(True)
        self.merge_list.setCurrentRow(step)
        self.merge_list.blockSignals(False)
        self.prev_button.setEnabled(step > 0)
        self.next_button.setEnabled(step < n)
        self.step_label.setText(f"step <b>{step}</b> of {n}")
        parts = self.parts_at(step)
        chips, merged_at, flat = [], -1, 0
        for k, piece in enumerate(parts):
            if k > 0:
                chips.append(Chip("|", "", self.theme.surface))
            for j, part in enumerate(piece):
                if step > 0 and k == self.steps[step - 1].piece and j == self.steps[step - 1].index:
                    merged_at = len(chips)
                chips.append(
                    Chip(
                        part_label(part),
                        str(self.tokenizer.rank(part)),
                        th.chip_colour(self.theme, flat),
                        border=th.WARNING if _incomplete(part) else "",
                    )
                )
                flat += 1
        self.merge_view.set_chips(chips)
        self.merge_view.set_marks(selected={merged_at} if merged_at >= 0 else set(), highlighted=set())
        self._write_step_text(step)

    def _write_step_text(self, step: int) -> None:
        n = len(self.steps)
        if not self.word:
            self.merge_text.setText("Put the cursor on a word (or type one above).")
            self.check.setText("")
            return
        if step == 0:
            nb = sum(len(p) for p in self.start_parts)
            extra = (
                f" in {len(self.start_parts)} pieces (merges never cross a piece: a word with its leading "
                "space, a run of punctuation, one digit…)"
                if len(self.start_parts) > 1
                else ""
            )
            self.merge_text.setText(
                f"Start: the text as <b>{nb}</b> single bytes{extra}. Every byte is a token "
                "of its own; the number under each chip is its id."
            )
        else:
            s = self.steps[step - 1]
            head = (
                f"Merge {step}: «{html.escape(part_label(s.left))}» + «{html.escape(part_label(s.right))}» → "
                f"«<b>{html.escape(part_label(s.merged))}</b>», rank <b>{s.rank:,}</b>. "
            )
            if len(self.parts_at(step - 1)[s.piece]) - len(s.pieces[s.piece]) > 1:
                self.merge_text.setText(
                    head + "No learned pair was left, but the whole piece is itself a token, "
                    "so the tokenizer takes it as one."
                )
            else:
                self.merge_text.setText(
                    head + "Of all neighbouring pairs that form a token, this one has the "
                    "lowest rank (it was learned earliest)."
                )
        if step < n:
            self.check.setText(f"{n - step} merge{'s' if n - step != 1 else ''} to go.")
            return
        ids = self.ids_at(step)
        expected = self.tokenizer.encode(self.word)
        if ids == expected:
            self.check.setText(
                f"<span style='color:{th.ACCENTS[2]}'>✓</span> No learned pair is left: these are "
                f"exactly the tokenizer's ids <b>[{', '.join(map(str, expected))}]</b>."
            )
        else:
            self.check.setText(
                f"<span style='color:{th.HIGHLIGHT}'>✗ The replay ends at {ids}, but the tokenizer "
                f"gives {expected}.</span>"
            )

    def final_step_matches(self) -> bool:
        return self.ids_at(len(self.steps)) == self.tokenizer.encode(self.word)

    def _merge_tooltip(self, index: int) -> str:
        chip = self.merge_view.chips[index]
        return "" if not chip.sub else f"«{html.escape(chip.label)}» is token id {chip.sub}"

    def _update_bytes(self) -> None:
        if not self.word:
            self.tokenization = None
            self.strip.set_data([], ())
            self.bytes_summary.setText("Put the cursor on a word (or type one above).")
            return
        self.tokenization = t = self.tokenizer.tokenize(self.word)
        rows = byte_view(t)
        self.strip.set_data(rows, t.tokens)
        n_bytes = sum(len(r.bytes) for r in rows)
        split = {ri for ri, _ in self.strip.cuts_inside_characters()}
        text = (
            f"<b>{len(rows)}</b> character{'s' if len(rows) != 1 else ''} · <b>{n_bytes}</b> bytes · "
            f"<b>{len(t.tokens)}</b> token{'s' if len(t.tokens) != 1 else ''}"
        )
        if split:
            text += (
                f" · <span style='color:{th.HIGHLIGHT}'>{len(split)} character{'s' if len(split) != 1 else ''}"
                " split between tokens</span>"
            )
        if t.dropped:
            text += f" · <span style='color:{th.WARNING}'>{len(t.dropped)} byte(s) have no token</span>"
        self.bytes_summary.setText(
            text + ". Plain ASCII takes 1 byte per character; accented Latin letters 2; most CJK 3; emoji 4."
        )

    # --- scenes and export -----------------------------------------------------------------------------------
    def scene_state(self) -> dict:
        return {"word": self.word, "tab": self.tabs.currentIndex(), "step": self.step}

    def apply_scene_state(self, state: dict) -> None:
        if isinstance(state.get("word"), str) and state["word"]:
            self.set_word(state["word"])
        tab = state.get("tab")
        if isinstance(tab, int) and not isinstance(tab, bool) and 0 <= tab < self.tabs.count():
            self.tabs.setCurrentIndex(tab)
        step = state.get("step")
        if isinstance(step, int) and not isinstance(step, bool):
            self.set_step(step)

    def export_data(self) -> dict:
        rows = [{"step": 0, "merge": "", "rank": None, "ids": " ".join(map(str, self.ids_at(0))) if self.word else ""}]
        for k, s in enumerate(self.steps, 1):
            rows.append(
                {
                    "step": k,
                    "merge": f"{part_label(s.left)} + {part_label(s.right)}",
                    "rank": s.rank,
                    "ids": " ".join(map(str, s.ids)),
                }
            )
        return {"rows": rows, "word": self.word}

    def caption_extra(self) -> str:
        return f"“{self.word}”: {self.tabs.tabText(self.tabs.currentIndex())}"


def _incomplete(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


if __name__ == "__main__":
    from explainer.ui.panels._run_alone import run_alone

    raise SystemExit(run_alone(BpePanel, "How many r's are in strawberry"))
