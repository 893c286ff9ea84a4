"""The tokenization panels (side by side, variants / BPE merges / bytes, chat template) against the core.

Each panel is checked against the tokenizer's own output, and drawn offscreen: screenshots go to /tmp/shots/
(or $EXPLAINER_SHOTS) for a human to look at.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from explainer.core import chat
from explainer.core.chat import Message
from explainer.core.tokenizers import get_tokenizer
from tests.pixels import assert_dark_and_legible, image_array

SHOTS = Path(os.environ.get("EXPLAINER_SHOTS", "/tmp/shots"))


def shoot(widget, name: str, size=(1000, 620)) -> None:
    """Draw ``widget`` offscreen, save it, and check the picture is not blank."""
    widget.resize(*size)
    widget.show()
    from PySide6.QtWidgets import QApplication

    QApplication.processEvents()
    pix = widget.grab()
    SHOTS.mkdir(parents=True, exist_ok=True)
    pix.save(str(SHOTS / f"{name}.png"))
    img = pix.toImage()
    colours = {img.pixel(x, y) for x in range(0, img.width(), 7) for y in range(0, img.height(), 7)}
    assert len(colours) > 20, f"{name} looks blank"


@pytest.fixture
def compare(qtbot):
    from explainer.ui.panels.tokenizers_compare import TokenizersComparePanel

    p = TokenizersComparePanel()
    qtbot.addWidget(p)
    return p


@pytest.fixture
def bpe(qtbot):
    from explainer.ui.panels.bpe_view import BpePanel

    p = BpePanel()
    qtbot.addWidget(p)
    return p


@pytest.fixture
def chat_panel(qtbot):
    from explainer.ui.panels.chat_template import ChatTemplatePanel

    p = ChatTemplatePanel()
    qtbot.addWidget(p)
    return p


# --- side by side ---------------------------------------------------------------------------------------------
TEXTS = [
    "The cat sat on the mat",
    "How many r's are in strawberry?\nPhotosynthesis: 6 CO2 + 6 H2O",
    "Café naïve 你好 🍓 👍🏽 ١٢٣",
    "a\x04b  spaces   and\ttabs\n\n",
]


@pytest.mark.parametrize("text", TEXTS)
def test_side_by_side_counts_equal_each_tokenizer(compare, demo, text):
    compare.set_result(demo.analyze(text))
    stats = compare.stats.text()
    for name in ("smollm2", "cl100k_base", "o200k_base"):
        tok = get_tokenizer(name)
        expected = tok.tokenize(text)
        assert compare.counts()[name] == len(expected.tokens)
        assert [t.id for t in compare.tokenizations[name].tokens] == expected.ids
        n = len(expected.tokens)
        assert f"{tok.vocab_size:,} pieces · <b>{n:,}</b> token" in stats
        assert f"{len(text) / n:.1f} chars/token" in stats
    assert "49,152 pieces" in stats
    rows = compare.view.row_of
    assert [rows.count(r) for r in range(3)] == [compare.counts()[n] for n in compare.names]


def test_side_by_side_rows_align_where_all_cut(compare, demo):
    text = "The cat sat on the mat and the dog ate the bone"
    compare.resize(1000, 600)
    compare.set_result(demo.analyze(text))
    v = compare.view
    starts = {}
    for i, (s, _e) in enumerate(v.spans):
        starts.setdefault(s, {})[v.row_of[i]] = v.chips[i].rect
    common = {s: rects for s, rects in starts.items() if len(rects) == 3}
    assert len(common) >= 10  # these words are whole tokens in all three
    for rects in common.values():
        assert len({round(r.left(), 3) for r in rects.values()}) == 1
        assert len({round(r.top(), 3) for r in rects.values()}) == 3  # one row per tokenizer


def test_side_by_side_hover_marks_same_characters_in_all_rows(compare, demo, qtbot):
    text = "strawberry fields"
    compare.set_result(demo.analyze(text))
    v = compare.view
    i = next(k for k, (s, e) in enumerate(v.spans) if v.row_of[k] == 0 and s == 0)  # SmolLM2's "st"
    with qtbot.waitSignal(compare.tokenHovered) as sig:
        v.chipHovered.emit(i)
    assert sig.args == [1]  # position 1 of the demo result (0 is the start token)
    marked = v.highlighted
    assert {v.row_of[k] for k in marked} == {0, 1, 2}
    s, e = v.spans[i]
    assert all(v.spans[k][0] < e and s < v.spans[k][1] for k in marked)
    assert "Characters 1–2" in compare.info.text()
    v.chipHovered.emit(-1)
    assert v.highlighted == set()
    compare.highlight_token(1)  # from another panel: the model's token 1
    assert v.highlighted == marked
    compare.set_result(demo.analyze("strawberry fields!"))
    one = next(k for k, (s, e) in enumerate(v.spans) if e - s == 1)  # "!": a token of one character
    v.chipHovered.emit(one)
    assert "Character 18 «<b>!</b>» is covered" in compare.info.text()


def test_side_by_side_caps_long_text(compare, demo):
    from explainer.ui.panels.tokenizers_compare import MAX_CHARS

    text = "word " * (MAX_CHARS // 5 + 400)
    compare.set_result(demo.analyze(text, max_tokens=64))
    assert compare.text == text[:MAX_CHARS]
    assert compare.counts()["smollm2"] == len(get_tokenizer("smollm2").tokenize(text[:MAX_CHARS]).tokens)
    assert f"Only the first {MAX_CHARS:,}" in compare.stats.text()


def test_side_by_side_screenshot(compare, demo):
    compare.set_result(
        demo.analyze("How many r's are in strawberry? Photosynthesis turns light into sugar.\nCafé naïve 你好 🍓 12345")
    )
    compare.view.chipHovered.emit(6)
    shoot(compare, "tokenizers_compare", (1000, 760))


# --- variants, merges, bytes ------------------------------------------------------------------------------------
def test_side_by_side_tokenizers_are_built_when_shown_not_when_made(qtbot, monkeypatch):
    """Building the three tokenizers takes seconds of Python: not while the window opens (it slowed the window
    and the model's first pass), but when the view is shown or the window asks, after its first picture."""
    from explainer.ui.panels import tokenizers_compare as tc

    started = []
    monkeypatch.setattr(tc, "_warming", None)
    monkeypatch.setattr(tc.threading.Thread, "start", lambda self: started.append(self.name))
    p = tc.TokenizersComparePanel()
    qtbot.addWidget(p)
    assert started == []
    p.show()
    qtbot.waitExposed(p)
    assert started == ["tokenizer-warm-up"]
    p.warm_up()  # once per process
    assert started == ["tokenizer-warm-up"]


def test_window_asks_for_the_tokenizers_at_the_first_pause_after_a_picture(
    qtbot, make_main_window, wait_result, monkeypatch
):
    """Building them holds Python's lock for a few hundred ms, which would hold up a picture: the window asks once,
    when no new picture came for a while (each picture puts it off), and never while a keystroke is analysed."""
    w = make_main_window(text="")
    asked = []
    monkeypatch.setattr(w.teach.panels["compare"], "warm_up", lambda: asked.append(True))
    timer = w.teach._warm_up_timer
    timer.setInterval(400)
    text = "The cat"
    for word in (" sat", " on", " the", " mat"):  # a picture every ~150 ms: no pause
        text += word
        w.editor.setPlainText(text)
        wait_result(w, text)
        assert timer.isActive() and asked == []
        qtbot.wait(150)
    assert asked == []
    qtbot.waitUntil(lambda: asked == [True], timeout=5000)  # the pause
    w.editor.setPlainText(text + ".")
    wait_result(w, text + ".")
    qtbot.wait(600)
    assert asked == [True] and not timer.isActive()  # once
    w.teach._warm_up_asked = False
    monkeypatch.setattr(type(w.controller), "busy", property(lambda _self: True))
    timer.setInterval(0)
    timer.start()
    qtbot.wait(100)
    assert asked == [True] and timer.isActive()  # a keystroke on its way: later


def test_variants_rows_equal_tokenize(bpe):
    tok = get_tokenizer("smollm2")
    bpe.set_cursor_word("strawberry")
    texts = ["strawberry", " strawberry", "Strawberry", " Strawberry", "STRAWBERRY"]
    shown = [(name.text(), [int(c.sub) for c in view.chips]) for name, view, _ in bpe.variant_rows[: len(texts)]]
    assert [ids for _, ids in shown] == [tok.encode(t) for t in texts]
    assert [label for label, _ in shown] == [f"<tt>{t.replace(' ', '·')}</tt>" for t in texts]
    assert tok.encode(" strawberry") == [35199]  # one token after a space; three without
    assert "[302, 1709, 9500]" in bpe.variant_note.text()
    assert "never sees letters" in bpe.variant_note.text()
    bpe.set_cursor_word("")  # no word under the cursor: keep the last one
    assert bpe.field.text() == "strawberry"


@pytest.mark.parametrize(
    "word",
    ["strawberry", "Unbelievable", "naïve", "🍓", " strawberry", "Ünbelievable", "hello, world!", "12345", "a", "中文"],
)
def test_bpe_last_step_is_the_tokenizer(bpe, word):
    tok = get_tokenizer("smollm2")
    bpe.set_word(word)
    n = len(bpe.steps)
    assert bpe.slider.maximum() == n and bpe.step == n
    assert bpe.ids_at(n) == tok.encode(word)
    assert bpe.final_step_matches()
    assert "✓" in bpe.check.text()
    assert [int(c.sub) for c in bpe.merge_view.chips if c.sub] == tok.encode(word)
    bpe.set_step(0)
    assert [c for c in bpe.merge_view.chips if c.sub].__len__() == len(
        word.encode("utf-8").translate(None, bytes(sorted(tok.missing_bytes)))
    )
    assert "✓" not in bpe.check.text() or n == 0
    assert not bpe.prev_button.isEnabled()
    bpe.next_button.click() if n else None
    assert bpe.step == min(1, n)


def test_bpe_step_describes_merge(bpe):
    bpe.set_word("strawberry")
    s = bpe.steps[0]
    bpe.set_step(1)
    assert f"rank <b>{s.rank:,}</b>" in bpe.merge_text.text()
    assert bpe.merge_view.selected  # the merged part is outlined
    assert bpe.merge_list.currentRow() == 1


def test_byte_inspector_bytes(bpe):
    bpe.set_word("é🍓中")
    rows = bpe.strip.rows
    assert [r.char for r in rows] == ["é", "🍓", "中"]
    assert [r.hex for r in rows] == ["C3 A9", "F0 9F 8D 93", "E4 B8 AD"]
    assert [c.value for c in bpe.strip.cells] == list("é🍓中".encode())
    toks = bpe.tokenization.tokens
    assert [t.id for t in toks] == get_tokenizer("smollm2").encode("é🍓中")
    # SmolLM2 cuts the strawberry emoji into pieces: boundaries inside character 1, incomplete tokens
    cuts = bpe.strip.cuts_inside_characters()
    assert cuts and {ri for ri, _ in cuts} == {1}
    assert any(toks[i].incomplete for i in set(rows[1].tokens))
    assert not any(toks[i].incomplete for i in set(rows[0].tokens) | set(rows[2].tokens))
    assert "1 character split" in bpe.bytes_summary.text()


def test_bpe_panel_takes_last_word_of_text(bpe, demo):
    bpe.set_result(demo.analyze("How many r's are in strawberry?"))
    assert bpe.field.text() == "strawberry"


def test_bpe_panel_drops_a_word_from_an_earlier_text(bpe, demo, qtbot):
    """A word the cursor sat on in an earlier paste is not shown for a text that lacks it."""
    bpe.set_result(demo.analyze("Photosynthesis turns light into sugar"))
    bpe.set_cursor_word("Photosynthesis")
    bpe.set_result(demo.analyze("How many r's are in strawberry?"))  # pasted over it, cursor after the "?"
    assert bpe.field.text() == "strawberry"
    bpe.set_result(demo.analyze("The cat sat on the mat"))
    assert bpe.field.text() == "mat"
    bpe.field.clear()
    qtbot.keyClicks(bpe.field, "banana")  # typed by the user: stays whatever the text
    bpe.set_result(demo.analyze("Another text entirely"))
    assert bpe.field.text() == "banana" and bpe.word == "banana"
    bpe.set_word("strawberry")  # chosen by a scene: stays too
    bpe.set_result(demo.analyze("Nothing about fruit"))
    assert bpe.field.text() == "strawberry"


@pytest.mark.parametrize(
    "tab,word,name",
    [(0, "strawberry", "bpe_variants"), (1, "Unbelievable", "bpe_merges"), (2, "é🍓中 naïve", "bpe_bytes")],
)
def test_bpe_screenshots(bpe, tab, word, name):
    bpe.set_word(word)
    bpe.tabs.setCurrentIndex(tab)
    if tab == 1:
        bpe.set_step(3)
    shoot(bpe, name)


# --- chat template ------------------------------------------------------------------------------------------------
def test_chat_panel_text_is_the_template(chat_panel):
    p = chat_panel
    assert p.chatml_text() == chat.render([Message("user", "What is the powerhouse of the cell?")])
    msgs = [
        Message("system", "You are a biology tutor."),
        Message("user", "Why are leaves green?"),
        Message("assistant", "Chlorophyll."),
        Message("user", "And in autumn?"),
    ]
    p.set_messages(msgs)
    assert p.messages() == msgs
    assert p.chatml_text() == chat.render(msgs, add_generation_prompt=True)
    p.generation.setChecked(False)
    assert p.chatml_text() == chat.render(msgs, add_generation_prompt=False)
    p.generation.setChecked(True)
    p.remove_turn(0)
    assert p.chatml_text() == chat.render(msgs[1:])
    assert "default one" in p.summary.text()
    t = p.add_turn()
    assert t.role.currentText() == "assistant"  # answers the last user turn
    t.content.setPlainText("Pigments.")
    assert p.chatml_text() == chat.render(msgs[1:] + [Message("assistant", "Pigments.")])


def test_chat_panel_off_screen_composes_when_shown_or_read(chat_panel, qtbot):
    """Off screen the panel only notes that the conversation changed (tokenizing it was the slowest part of
    opening the window); shown, or its text read, it is up to date."""
    p = chat_panel
    assert not p.isVisible()
    msgs = [Message("user", "Why are leaves green?"), Message("assistant", "Chlorophyll.")]
    p.set_messages(msgs)
    assert p._stale and "Chlorophyll" not in "".join(c.label for c in p.chips.chips)
    p.show()
    qtbot.waitExposed(p)
    assert not p._stale and "Chlorophyll" in "".join(c.label for c in p.chips.chips)
    p.hide()
    p.set_messages(msgs[:1])
    assert p._stale
    assert p.chatml_text() == chat.render(msgs[:1]) and not p._stale
    assert "Chlorophyll" not in "".join(c.label for c in p.chips.chips)


def test_chat_panel_tokens_highlight_specials(chat_panel):
    from explainer.ui import theme as th

    p = chat_panel
    tok = get_tokenizer("smollm2")
    assert p.tokenization.ids == tok.encode(p.chatml_text(), parse_specials=True)
    specials = [c for c in p.chips.chips if c.fill == th.SPECIAL]
    assert [c.label for c in specials] == ["<|im_start|>", "<|im_end|>"] * 2 + ["<|im_start|>"]
    assert [c.sub for c in specials] == ["1", "2", "1", "2", "1"]


def test_chat_panel_keeps_the_last_turn_in_view(chat_panel, qtbot):
    """The point of a chat is where the assistant answers (the final <|im_start|>assistant): a long conversation
    in a small panel opens scrolled to its end, follows it while the user stays there, not once scrolled away."""
    from PySide6.QtWidgets import QApplication

    p = chat_panel
    p.resize(700, 420)
    p.show()
    qtbot.waitExposed(p)
    turns = [Message("user" if i % 2 == 0 else "assistant", f"Question or answer number {i}. " * 3) for i in range(8)]
    p.set_messages(turns)
    QApplication.processEvents()
    bars = [p.text_view.verticalScrollBar(), p.chips.parentWidget().parentWidget().verticalScrollBar()]
    assert all(b.maximum() > 0 for b in bars)  # too long to show whole
    assert all(b.value() == b.maximum() for b in bars)
    top = bars[1].value()  # at the end, the chips show whole rows: none is cut at the top
    assert not any(c.rect.top() < top < c.rect.bottom() for c in p.chips.chips)
    p.turns[-1].content.setPlainText("A much longer last question. " * 12)  # grows: still at the end
    QApplication.processEvents()
    assert all(b.value() == b.maximum() for b in bars)
    bars[0].setValue(0)  # the user reads the beginning: typing elsewhere does not pull the view away
    p.turns[0].content.setPlainText("Changed.")
    QApplication.processEvents()
    assert bars[0].value() == 0
    p.set_messages(turns)  # a new conversation (a scene) opens at its end again
    QApplication.processEvents()
    assert bars[0].value() == bars[0].maximum()


def _text_lines(view) -> list[tuple[float, float]]:
    """(top, bottom) of every laid-out line of a QTextEdit's document, in scroll-bar pixels."""
    lines, block = [], view.document().begin()
    while block.isValid():
        layout = block.layout()
        for i in range(layout.lineCount()):
            line = layout.lineAt(i)
            top = layout.position().y() + line.y()
            lines.append((top, top + line.height()))
        block = block.next()
    return lines


@pytest.mark.parametrize("height", [300, 330, 365, 410])
def test_chat_text_shows_whole_lines(chat_panel, qtbot, height):
    """The rendered chat text is never cut through a line at the top: at its end (where it opens) its top line
    and its last line show whole, and scrolling stops at line tops. No empty line follows the final line break."""
    from PySide6.QtWidgets import QApplication

    p = chat_panel
    p.resize(760, height)
    p.show()
    qtbot.waitExposed(p)
    p.set_messages([Message("user", "What is the capital of France? " * 3), Message("assistant", "Paris.")])
    QApplication.processEvents()
    view, bar = p.text_view, p.text_view.verticalScrollBar()
    lines = _text_lines(view)
    assert len(lines) >= 7 and bar.maximum() > 0  # more lines than the view shows
    assert view.toPlainText().endswith("⏎")  # the generation prompt's line break ends the text, no empty line
    shown = view.viewport().height()

    def cut_at_top(value: int) -> list:
        return [(a, b) for a, b in lines if a < value - 0.5 and b > value + 0.5]

    assert bar.value() == bar.maximum()
    assert not cut_at_top(bar.value())
    assert lines[-1][1] <= bar.value() + shown  # the last line (the assistant's prompt) whole
    assert bar.maximum() + shown - lines[-1][1] < max(b - a for a, b in lines)  # less than a line left empty
    for value in (1, bar.maximum() // 2, bar.maximum() - 1):  # the user scrolls: it stops at a line top
        bar.setValue(value)
        assert not cut_at_top(bar.value()), value


def test_chat_panel_send_and_prediction(chat_panel, demo, qtbot):
    p = chat_panel
    with qtbot.waitSignal(p.textRequested) as sig:
        p.send_button.click()
    assert sig.args == [p.chatml_text(), True]
    assert p.prediction() == []  # nothing analysed yet
    result = demo.analyze(sig.args[0], parse_specials=sig.args[1])
    p.set_result(result)
    pred = p.prediction()
    assert [i for i, _ in pred] == [int(i) for i in result.top_ids[-1][:5]]
    assert [round(x, 6) for _, x in pred] == [round(float(x), 6) for x in result.top_probs[-1][:5]]
    assert len(p.bars.rows) == 5
    assert "first token" in p.prediction_title.text()
    shoot(p, "chat_template", (1100, 650))
    p.set_result(demo.analyze(sig.args[0], parse_specials=False))  # specials typed as text: not a chat
    assert p.prediction() == []
    p.set_result(demo.analyze("something else"))
    assert p.prediction() == [] and p.bars.rows == []


def test_panels_in_dark_theme(compare, bpe, chat_panel, demo):
    from PySide6.QtWidgets import QApplication

    from explainer.ui import theme as th

    r = demo.analyze("Café 🍓 strawberry")
    th.apply_theme(QApplication.instance(), th.DARK)
    try:
        bpe.tabs.setCurrentIndex(2)
        for panel, name in ((compare, "tokenizers_compare_dark"), (bpe, "bpe_bytes_dark"), (chat_panel, "chat_dark")):
            panel.set_theme(th.DARK)
            panel.set_result(r)
            shoot(panel, name)
            assert_dark_and_legible(image_array(panel), name)
    finally:
        th.apply_theme(QApplication.instance(), th.LIGHT)


def test_tooltips(compare, bpe, chat_panel, demo):
    compare.set_result(demo.analyze("Café 🍓"))
    tips = [compare._tooltip(i) for i in range(len(compare.view.chips))]
    assert all("id <b>" in t for t in tips) and any("part of a character" in t for t in tips)
    bpe.set_word("strawberry")
    assert "token id 302" in bpe._merge_tooltip(0)
    assert "special token" in chat_panel._chip_tooltip(0)


def test_variant_rows_sit_together_in_a_tall_panel(bpe):
    bpe.set_word("strawberry")
    shoot(bpe, "bpe_variants_tall", (1000, 1100))
    names = [row[0] for row in bpe.variant_rows if row[0].isVisible()]
    chips = bpe.variant_rows[0][1]
    gaps = [b.y() - a.y() for a, b in zip(names, names[1:])]
    assert len(names) == 5 and max(gaps) < 1.6 * chips.height()  # no large empty gaps between the rows
    for name, view, count in bpe.variant_rows:  # the count next to its variant, the chips after it
        assert name.geometry().right() < count.geometry().left() < view.geometry().left()
