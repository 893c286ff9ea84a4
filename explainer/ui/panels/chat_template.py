"""Chat template panel: compose a conversation and see the exact ChatML text and tokens the model reads.

With a model folder opened, its own tokenizer and chat template (Jinja, ``core.chat_jinja``) are used instead; a
model without a chat template says so.

Left: the turns (role + message), "add generation prompt". Right: the rendered text with its special tokens
highlighted, the token chips (special tokens in the SPECIAL colour) and, once the main window has analysed that
very text (after "Send to editor"), the model's top 5 candidates for the assistant's first token. The text and the
chips stay scrolled to their end, like a chat window, while they are there: the point of a chat is its last
turn (with the generation prompt, ``<|im_start|>assistant``), where the model continues.
"""

from __future__ import annotations

import html
import math

from PySide6.QtCore import QObject, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontDatabase, QFontMetricsF, QPainter
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from explainer.core import chat
from explainer.core.chat import Message
from explainer.core.types import Token, Tokenization, visible_text
from explainer.ui import theme as th
from explainer.ui.panels.base import Panel
from explainer.ui.panels.chips import Chip, ChipScrollArea, ChipView

TOP_N = 5
DEFAULT_CONVERSATION = (Message("user", "What is the powerhouse of the cell?"),)


class FollowEnd(QObject):
    """Keeps a scroll bar at its end while it is at its end: content that grows or re-wraps scrolls along;
    scrolling away stops following until the bar is back at the end (or ``follow`` is called)."""

    def __init__(self, bar):
        super().__init__(bar)
        self.bar, self.on = bar, True
        bar.rangeChanged.connect(self._on_range_changed)
        bar.valueChanged.connect(self._on_value_changed)

    def follow(self) -> None:
        self.on = True
        self.bar.setValue(self.bar.maximum())

    def _on_range_changed(self, *_range) -> None:
        if self.on:  # (the maximum now: a slot before this one may have changed the range again)
            self.bar.setValue(self.bar.maximum())

    def _on_value_changed(self, value: int) -> None:
        self.on = value >= self.bar.maximum()


class WholeLines(QObject):
    """Keeps a read-only ``QTextEdit`` scrolled to whole lines: its top line is never cut in half. The scroll bar
    stops at line tops only, and at its end the document gets an empty band at the bottom (less than a line) so
    that the end, too, is a line top with the last line in view (as a chat's chips show whole rows)."""

    def __init__(self, view: QTextEdit):
        super().__init__(view)
        self.view = view
        bar = view.verticalScrollBar()
        bar.rangeChanged.connect(self._pad)
        bar.valueChanged.connect(self._snap)

    def line_tops(self) -> list[float]:
        """The top of every laid-out line, in document pixels (the scroll bar's unit), in order."""
        tops, block = [], self.view.document().begin()
        while block.isValid():
            layout = block.layout()
            y = layout.position().y()
            tops.extend(y + layout.lineAt(i).y() for i in range(layout.lineCount()))
            block = block.next()
        return tops

    def padding(self) -> float:
        root = self.view.document().rootFrame()
        return root.frameFormat().bottomMargin() - self.view.document().documentMargin()

    def _pad(self, *_range) -> None:
        doc = self.view.document()
        natural = doc.size().height() - self.padding()
        height = self.view.viewport().height()
        extra = 0.0
        if natural > height:
            end = natural - height  # where the scroll bar would end: the top line cut unless a line starts there
            extra = next((t - end for t in self.line_tops() if t >= end), 0.0)
        if abs(extra - self.padding()) > 0.5:
            root = doc.rootFrame()
            fmt = root.frameFormat()
            fmt.setBottomMargin(doc.documentMargin() + extra)
            root.setFrameFormat(fmt)  # the range changes: laid out again, then the same padding (no loop)

    def _snap(self, value: int) -> None:
        bar = self.view.verticalScrollBar()
        tops = self.line_tops() if value < bar.maximum() else []
        if not tops:
            return
        stops = [0.0, *tops[1:]]  # at 0 the first line shows whole, below the document's margin
        snapped = min(bar.maximum(), math.ceil(min(stops, key=lambda t: abs(t - value))))
        if snapped != value:
            bar.setValue(snapped)


class TurnEditor(QWidget):
    """One message: role, text, remove button."""

    changed = Signal()
    removeRequested = Signal(object)

    def __init__(self, message: Message, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.role = QComboBox()
        self.role.addItems(list(chat.ROLES))
        if message.role not in chat.ROLES:
            self.role.addItem(message.role)
        self.role.setCurrentText(message.role)
        self.content = QPlainTextEdit(message.content)
        self.content.setTabChangesFocus(True)
        fm = QFontMetricsF(self.content.font())
        self.content.setFixedHeight(int(fm.lineSpacing() * 3 + 14))
        self.remove = QToolButton(text="✕")
        self.remove.setToolTip("Remove this turn")
        lay.addWidget(self.role, 0, Qt.AlignTop)
        lay.addWidget(self.content, 1)
        lay.addWidget(self.remove, 0, Qt.AlignTop)
        self.role.currentTextChanged.connect(lambda _t: self.changed.emit())
        self.content.textChanged.connect(self.changed.emit)
        self.remove.clicked.connect(lambda: self.removeRequested.emit(self))

    def message(self) -> Message:
        return Message(self.role.currentText(), self.content.toPlainText())


class TopBars(QWidget):
    """A few rows: token label | probability bar | percentage."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.theme = th.LIGHT
        self.rows: list[tuple[str, float]] = []
        self._font = QFont(self.font())
        self._font.setPointSizeF(th.LABEL_FONT_PT)
        self._fm = QFontMetricsF(self._font)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setFixedHeight(int(TOP_N * self.row_height + 4))

    @property
    def row_height(self) -> float:
        return self._fm.height() * 1.35

    def set_rows(self, rows: list[tuple[str, float]]) -> None:
        self.rows = rows
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(360, int(TOP_N * self.row_height + 4))

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setFont(self._font)
        label_w = min(self.width() * 0.4, max([self._fm.horizontalAdvance(s) for s, _ in self.rows] + [40.0]) + 12)
        pct_w = self._fm.horizontalAdvance("100.0 %") + 8
        bar_w = max(20.0, self.width() - label_w - pct_w)
        rh = self.row_height
        for i, (label, prob) in enumerate(self.rows):
            y = i * rh
            text = self._fm.elidedText(label, Qt.ElideRight, label_w - 12)
            p.setPen(QColor(self.theme.text))
            p.drawText(QRectF(0, y, label_w - 8, rh), Qt.AlignRight | Qt.AlignVCenter, text)
            p.fillRect(
                QRectF(label_w, y + rh * 0.18, bar_w, rh * 0.64),
                QColor(self.theme.surface if not self.theme.is_dark else self.theme.grid),
            )
            p.fillRect(
                QRectF(label_w, y + rh * 0.18, bar_w * max(0.0, min(1.0, prob)), rh * 0.64), QColor(th.ACCENTS[0])
            )
            p.drawText(QRectF(label_w + bar_w + 4, y, pct_w, rh), Qt.AlignLeft | Qt.AlignVCenter, f"{100 * prob:.1f} %")
        p.end()


class ChatTemplatePanel(Panel):
    title = "Chat template"
    explanation = (
        "An assistant model reads one stream of tokens, not separate messages. The chat template (SmolLM2's "
        "ChatML; a model folder brings its own) wraps every message as <b>&lt;|im_start|&gt;</b>role ⏎ message <b>&lt;|im_end|&gt;</b>: those markers are "
        "<b>special tokens</b> (pink): single ids, not text, that the model was trained to read as turn markers. "
        "SmolLM2's template adds a default system message when the conversation does not start with one. With "
        "“add generation prompt” the text ends in &lt;|im_start|&gt;assistant ⏎, so what the model predicts next "
        "is the start of the assistant's answer."
    )

    textRequested = Signal(str, bool)  # the ChatML text, parse_specials

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._tokenizer = None  # built on first use: the window appears without waiting for it
        self._decode = None
        self._model_chat: tuple | None = None  # (tokenizer, template, variables) of a model folder; None: ChatML
        self.turns: list[TurnEditor] = []
        self._tokenization: Tokenization | None = None
        self._text = ""
        self._stale = False  # the turns changed while the panel was not on screen

        split = QSplitter(Qt.Horizontal)
        self.body.addWidget(split, 1)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 6, 0)
        lv.addWidget(QLabel("<b>Conversation</b>"))
        turns_box = QWidget()
        self.turns_layout = QVBoxLayout(turns_box)
        self.turns_layout.setContentsMargins(0, 0, 0, 0)
        self.turns_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(turns_box)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.NoFrame)
        lv.addWidget(scroll, 1)
        row = QHBoxLayout()
        self.add_button = QPushButton("+ Add turn")
        self.generation = QCheckBox("Add generation prompt")
        self.generation.setChecked(True)
        self.generation.setToolTip(
            "End with <|im_start|>assistant and a new line: the model's next tokens are the assistant's reply."
        )
        row.addWidget(self.add_button)
        row.addWidget(self.generation)
        row.addStretch(1)
        lv.addLayout(row)
        self.send_button = QPushButton("Send to editor ▶")
        self.send_button.setToolTip(
            "Put this exact text in the editor with special-token parsing on; the "
            "Next-token panel then shows what the model predicts."
        )
        lv.addWidget(self.send_button)
        self.prediction_title = QLabel()
        self.prediction_title.setTextFormat(Qt.RichText)
        self.prediction_title.setWordWrap(True)
        lv.addWidget(self.prediction_title)
        self.bars = TopBars()
        lv.addWidget(self.bars)
        split.addWidget(left)

        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(6, 0, 0, 0)
        self.summary = QLabel()
        self.summary.setTextFormat(Qt.RichText)
        self.summary.setWordWrap(True)
        rv.addWidget(self.summary)
        self.text_view = QTextEdit()
        self.text_view.setReadOnly(True)
        self.text_view.setLineWrapMode(QTextEdit.WidgetWidth)
        mono = QFontDatabase.systemFont(QFontDatabase.FixedFont)
        mono.setPointSizeF(th.LABEL_FONT_PT - 1)
        self.text_view.setFont(mono)
        self.whole_lines = WholeLines(self.text_view)
        vsplit = QSplitter(Qt.Vertical)
        vsplit.setChildrenCollapsible(False)
        vsplit.addWidget(self.text_view)
        self.chips = ChipView()
        self.chips.tooltip_for = self._chip_tooltip
        chip_scroll = ChipScrollArea(self.chips)  # whole rows of chips, also when it follows the end
        chip_scroll.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Expanding)  # the splitter's room, not less
        vsplit.addWidget(chip_scroll)
        vsplit.setSizes([150, 250])
        rv.addWidget(vsplit, 1)
        self.follow = (FollowEnd(self.text_view.verticalScrollBar()), FollowEnd(chip_scroll.verticalScrollBar()))
        split.addWidget(right)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)

        self.add_button.clicked.connect(self._on_add_clicked)
        self.generation.toggled.connect(lambda _on: self._recompose())
        self.send_button.clicked.connect(self.send_to_editor)
        self.set_messages(DEFAULT_CONVERSATION)

    # --- public API -------------------------------------------------------------------------------------------
    def set_messages(self, messages) -> None:
        for t in list(self.turns):
            self._remove_turn(t, recompose=False)
        for m in chat.normalise(messages):
            self._add_turn(m, recompose=False)
        self._recompose()
        for f in self.follow:  # a new conversation opens at its last turn
            f.follow()

    def messages(self) -> list[Message]:
        return [t.message() for t in self.turns]

    def add_turn(self, role: str | None = None, content: str = "") -> TurnEditor:
        if role is None:  # alternate: a user turn is answered by the assistant, anything else by the user
            role = "assistant" if self.turns and self.turns[-1].role.currentText() == "user" else "user"
        return self._add_turn(Message(role, content))

    def remove_turn(self, index: int) -> None:
        self._remove_turn(self.turns[index])

    def chatml_text(self) -> str:
        return self.text

    def send_to_editor(self) -> None:
        self.textRequested.emit(self.text, True)

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from explainer.core.tokenizers import get_tokenizer

            self._tokenizer = get_tokenizer("smollm2")
        return self._tokenizer

    def set_model_chat(self, tokenizer=None, template: str | None = None, variables: dict | None = None) -> None:
        """Use a model folder's own tokenizer and chat template (``template`` None: the model has none); with no
        ``tokenizer``, SmolLM2's ChatML (built in)."""
        self._model_chat = None if tokenizer is None else (tokenizer, template, dict(variables or {}))
        self._tokenizer = tokenizer
        self._recompose()

    def specials(self) -> list[str]:
        """The special strings of the tokenizer in use."""
        return list(self.tokenizer.special_ids) if self._model_chat is not None else [chat.IM_START, chat.IM_END]

    def set_token_decoder(self, decode) -> None:
        """``decode(token_id) -> bytes`` for the prediction labels (default: SmolLM2's tokenizer)."""
        self._decode = decode
        self._update_prediction()

    def refresh(self) -> None:
        self._update_prediction()

    def set_theme(self, theme: th.Theme) -> None:
        self.chips.set_theme(theme)
        self.bars.theme = theme
        self.theme = theme
        self._recompose()

    def prediction(self) -> list[tuple[int, float]]:
        """(token id, probability) of the model's top candidates after the composed text, or [] when the
        current result is not for this text (with its special tokens parsed)."""
        r = self.result
        if r is None or r.text != self.text or not self.text or r.n_tokens == 0:
            return []
        if not r.specials_parsed and any(s in self.text for s in self.specials()):
            return []
        return [(int(i), float(p)) for i, p in zip(r.top_ids[-1][:TOP_N], r.top_probs[-1][:TOP_N])]

    # --- turns ------------------------------------------------------------------------------------------------
    def _add_turn(self, message: Message, recompose: bool = True) -> TurnEditor:
        t = TurnEditor(message)
        t.changed.connect(self._recompose)
        t.removeRequested.connect(self._remove_turn)
        self.turns_layout.insertWidget(len(self.turns), t)
        self.turns.append(t)
        if recompose:
            self._recompose()
        return t

    def _remove_turn(self, turn: TurnEditor, recompose: bool = True) -> None:
        self.turns.remove(turn)
        self.turns_layout.removeWidget(turn)
        turn.setParent(None)
        turn.deleteLater()
        if recompose:
            self._recompose()

    def _on_add_clicked(self) -> None:
        t = self.add_turn()
        t.content.setFocus()

    # --- drawing ----------------------------------------------------------------------------------------------
    @property
    def text(self) -> str:
        """The conversation as the template writes it."""
        self._fresh()
        return self._text

    @property
    def tokenization(self) -> Tokenization | None:
        self._fresh()
        return self._tokenization

    def showEvent(self, event) -> None:
        self._fresh()
        super().showEvent(event)

    def _recompose(self) -> None:
        """Compose the text and redraw: now when the panel is on screen, else when it is shown or its text is
        read (tokenizing the conversation was the slowest part of opening the window)."""
        self._stale = True
        if self.isVisible():
            self._fresh()

    def _fresh(self) -> None:
        if not self._stale:
            return
        self._stale = False
        msgs = self.messages()
        gen = self.generation.isChecked()
        segments, problem = self._render(msgs, gen)
        self.send_button.setEnabled(problem is None)
        if problem is not None:
            self._text, self._tokenization = "", None
            self.chips.set_chips([])
            self.text_view.setHtml("")
            self.summary.setText(f"<i>{html.escape(problem)}</i>")
            self._update_prediction()
            return
        self._text = "".join(s.text for s in segments)
        self._tokenization = self.tokenizer.tokenize(self._text, parse_specials=True)
        toks = self._tokenization.tokens
        following = [f.on for f in self.follow]  # new content resets the scroll bars on its way
        self.chips.set_chips(
            [
                Chip(
                    t.text if t.special else t.display,
                    str(t.id),
                    th.SPECIAL if t.special else th.chip_colour(self.theme, i),
                    border=th.WARNING if t.incomplete else "",
                    line_break=t.bytes.endswith(b"\n") and not t.special,
                )
                for i, t in enumerate(toks)
            ]
        )
        self.text_view.setHtml(self._text_html(segments))
        for f, on in zip(self.follow, following):
            if on:
                f.follow()
        n_special = sum(1 for t in toks if t.special)
        notes = [f"<b>{len(toks)}</b> tokens, <b>{n_special}</b> of them special · {len(self.text)} characters"]
        if self._model_chat is None and chat.uses_default_system_prompt(msgs):
            notes.append(
                "<i>The conversation does not start with a system message, so the template added "
                "SmolLM2's default one (shown in italics).</i>"
            )
        if not msgs:
            notes.append("Add a turn to start a conversation.")
        self.summary.setText("<br>".join(notes))
        self._update_prediction()

    def _render(self, msgs, gen: bool):
        """(segments, None), or ([], one sentence) when the model has no chat template or it refuses."""
        if self._model_chat is None:
            return chat.render_segments(msgs, gen), None
        from explainer.core.chat_jinja import ChatTemplateError, render_template, template_segments

        tokenizer, template, variables = self._model_chat
        if template is None:
            return [], (
                "This model has no chat template: it was trained on plain text, not on conversations. "
                "Type text in the editor instead."
            )
        try:
            text = render_template(template, msgs, gen, variables)
        except ChatTemplateError as e:
            return [], str(e)
        return template_segments(text, msgs, tokenizer.special_ids), None

    def _text_html(self, segments) -> str:
        t = self.theme
        out = []
        for s in segments:
            text = html.escape(s.text)
            if s.kind == "special":
                glued = html.escape("\u2060".join(s.text))  # word joiners: a special token never wraps
                piece = (
                    f"<span style='background:{th.SPECIAL}; color:{th.text_on(th.SPECIAL)}'>&nbsp;{glued}&nbsp;</span>"
                )
            elif s.kind == "newline":
                piece = f"<span style='color:{t.muted}'>⏎</span><br>"
            elif s.kind == "role":
                piece = f"<b>{text}</b>"
            else:
                piece = text.replace("\n", f"<span style='color:{t.muted}'>⏎</span><br>")
            out.append(f"<i>{piece}</i>" if s.inserted and s.kind != "special" else piece)
        body = "".join(out)
        cut = body.rfind("<br>")
        if cut >= 0 and not body[cut + 4 :].replace("</i>", ""):  # a final line break: no empty line after it
            body = body[:cut] + body[cut + 4 :]
        return f"<div style='color:{t.text}; white-space:pre-wrap'>{body}</div>"

    def _label(self, token_id: int) -> str:
        try:
            decode = self._decode or self.tokenizer.token_bytes
            return Token(token_id, decode(token_id), 0, 0).display
        except (KeyError, ValueError):
            return f"#{token_id}"

    def _update_prediction(self) -> None:
        pred = self.prediction()
        if pred:
            where = "the assistant's first token" if self.generation.isChecked() else "the next token"
            self.prediction_title.setText(f"The model's top {len(pred)} guesses for <b>{where}</b>:")
            self.bars.set_rows([(self._label(i), p) for i, p in pred])
        else:
            self.prediction_title.setText(
                "<i>Press “Send to editor” to see what the model predicts next.</i>" if self.text else ""
            )
            self.bars.set_rows([])

    def _chip_tooltip(self, index: int) -> str:
        t = self.tokenization.tokens[index] if self.tokenization else None
        if t is None:
            return ""
        kind = "a <b>special token</b>: one id that marks a turn, not text" if t.special else "ordinary text"
        return f"<b>{html.escape(visible_text(t.text))}</b> &nbsp; id <b>{t.id}</b><br>{kind}"

    # --- scenes and export -----------------------------------------------------------------------------------
    def scene_state(self) -> dict:
        return {
            "messages": [{"role": m.role, "content": m.content} for m in self.messages()],
            "generation": self.generation.isChecked(),
        }

    def apply_scene_state(self, state: dict) -> None:
        if isinstance(state.get("generation"), bool):
            self.generation.setChecked(state["generation"])
        msgs = state.get("messages")
        if isinstance(msgs, list) and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in msgs
        ):
            self.set_messages([{"role": m["role"], "content": m["content"]} for m in msgs])

    def export_data(self) -> dict:
        toks = self.tokenization.tokens if self.tokenization else ()
        return {
            "rows": [
                {
                    "index": i,
                    "token_text": t.text,
                    "token_label": t.text if t.special else t.display,
                    "id": int(t.id),
                    "special": bool(t.special),
                }
                for i, t in enumerate(toks)
            ],
            "text": self.text,
        }


def main(argv: list[str] | None = None) -> int:
    """Run the panel alone; "Send to editor" analyses the text (special tokens parsed) with the demo engine."""
    from explainer.ui.panels._run_alone import run_alone

    def start(panel, engine, args):
        panel.textRequested.connect(lambda text, ps: panel.set_result(engine.analyze(text, parse_specials=ps)))
        panel.send_to_editor()

    return run_alone(ChatTemplatePanel, "", argv, size="1100x650", start=start)


if __name__ == "__main__":
    raise SystemExit(main())
