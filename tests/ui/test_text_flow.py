"""Continuing the text with a next-token candidate, undo from anywhere, the prediction following the caret, pins."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent, QTextCursor
from PySide6.QtWidgets import QApplication

from explainer.ui.text_flow import caret_token, char_index, utf16_index

TEXT = "How many r's are in strawberry?"


@pytest.fixture
def window(make_main_window, wait_result, qtbot):
    w = make_main_window(text=TEXT)
    wait_result(w, TEXT)
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow)
    return w


def position_of(w, label: str) -> int:
    return next(i for i, t in enumerate(w.result.tokens) if t.display == label)


def plain_row(w) -> tuple[int, str]:
    """A row of the bars whose token is plain ASCII text, and that text."""
    tok = w.controller.tokenizer
    for row, tid in enumerate(w.next_token._row_ids):
        data = tok.token_bytes(tid)
        if not tok.is_special(tid) and data.isascii() and data.strip():
            return row, data.decode()
    raise AssertionError("no plain candidate")


def choose_with_keys(qtbot, w, row: int) -> None:
    bars = w.next_token.bars
    bars.setFocus()
    qtbot.waitUntil(bars.hasFocus)
    bars.set_current(row)
    qtbot.keyClick(bars, Qt.Key_Return)


def type_into(w, text: str) -> None:
    for ch in text:
        for kind in (QEvent.KeyPress, QEvent.KeyRelease):
            QApplication.sendEvent(w.editor, QKeyEvent(kind, 0, Qt.NoModifier, ch))


def test_a_candidate_after_an_earlier_token_replaces_the_rest_of_the_text(qtbot, window, wait_result):
    w = window
    are = position_of(w, "·are")
    w.tokens.view.chipClicked.emit(are)  # pin the prediction after "·are"
    assert w.next_token.position == are and w.view.selected == are
    row, piece = plain_row(w)
    choose_with_keys(qtbot, w, row)
    assert w.editor.toPlainText() == "How many r's are" + piece
    assert w.view.selected == -1  # the pin is gone: the prediction follows the caret, now after the new token
    wait_result(w, "How many r's are" + piece)
    assert w.next_token.position == w.result.n_tokens - 1


def test_undo_takes_back_the_candidate_wherever_the_focus_is(qtbot, window, wait_result):
    w = window
    w.tokens.view.chipClicked.emit(position_of(w, "·are"))
    row, piece = plain_row(w)
    choose_with_keys(qtbot, w, row)
    assert w.editor.toPlainText() == "How many r's are" + piece
    assert w.next_token.bars.hasFocus()
    qtbot.keyClick(w.next_token.bars, Qt.Key_Z, Qt.ControlModifier)  # the focus is on the bars, not the editor
    assert w.editor.toPlainText() == TEXT
    wait_result(w, TEXT)
    w.tokens.selector.setFocus()
    qtbot.keyClick(w.tokens.selector, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)  # redo, from elsewhere
    assert w.editor.toPlainText() == "How many r's are" + piece


def test_after_undo_the_caret_is_after_the_text_given_back(qtbot, window, wait_result):
    w = window
    are = position_of(w, "·are")
    w.tokens.view.chipClicked.emit(are)
    row, _piece = plain_row(w)
    choose_with_keys(qtbot, w, row)
    w.flow.undo_action.trigger()
    assert w.editor.toPlainText() == TEXT
    c = w.editor.textCursor()
    assert c.position() == len(TEXT) and not c.hasSelection()  # after the text it gave back, not at the start
    wait_result(w, TEXT)
    assert w.next_token.position == w.result.n_tokens - 1  # the prediction follows the caret


def test_typing_and_the_continuation_are_separate_undo_steps(qtbot, window, wait_result):
    w = window
    w.editor.setFocus()
    w.editor.moveCursor(QTextCursor.End)
    type_into(w, " Two")
    wait_result(w, TEXT + " Two")
    row, piece = plain_row(w)
    w.next_token.bars.rowClicked.emit(row)
    assert w.editor.toPlainText() == TEXT + " Two" + piece
    type_into(w, "!!")
    w.editor.setFocus()
    steps = [TEXT + " Two" + piece, TEXT + " Two", TEXT]
    for expected in steps:
        qtbot.keyClick(w.editor, Qt.Key_Z, Qt.ControlModifier)
        assert w.editor.toPlainText() == expected


def test_the_prediction_follows_the_caret_until_a_position_is_pinned(qtbot, window, wait_result):
    w = window
    are = position_of(w, "·are")
    cursor = w.editor.textCursor()
    cursor.setPosition(TEXT.index(" in"))  # just after "are"
    w.editor.setTextCursor(cursor)
    assert w.view.caret == are and w.next_token.position == are
    cursor.setPosition(TEXT.index("berry"))  # inside "·strawberry": after the token that holds "w"
    w.editor.setTextCursor(cursor)
    assert w.next_token.position == position_of(w, "·strawberry")
    w.editor.moveCursor(QTextCursor.End)
    assert w.view.caret == -1 and w.next_token.position == w.result.n_tokens - 1
    many = position_of(w, "·many")
    w.tokens.view.chipClicked.emit(many)  # a pin wins over the caret
    assert w.next_token.pin.isVisibleTo(w) and "·many" in w.next_token.pin.text()
    cursor.setPosition(TEXT.index(" in"))
    w.editor.setTextCursor(cursor)
    assert w.next_token.position == many
    w.next_token.pin.click()  # the pin's button unpins
    assert w.view.selected == -1 and not w.next_token.pin.isVisibleTo(w) and w.next_token.position == are
    w.tokens.view.chipClicked.emit(many)
    qtbot.keyClick(w.next_token.bars, Qt.Key_Escape)  # so does Esc
    assert w.view.selected == -1 and w.next_token.position == are


def test_a_pin_whose_token_is_gone_is_dropped(qtbot, window, wait_result):
    w = window
    w.tokens.view.chipClicked.emit(5)
    new = "Cats sleep most of the day and hunt at night, far from home."
    w.editor.selectAll()
    type_into(w, new)  # the sentence is replaced: position 5 of the old one no longer exists
    wait_result(w, new)
    assert w.result.n_tokens > 5
    assert w.view.selected == -1 and w.next_token.position == w.result.n_tokens - 1
    assert not w.next_token.pin.isVisibleTo(w)
    w.tokens.view.chipClicked.emit(3)  # a pin before the caret holds while the text after it grows
    w.editor.moveCursor(QTextCursor.End)
    type_into(w, " Zzz")
    wait_result(w, new + " Zzz")
    assert w.view.selected == 3 and w.next_token.position == 3


def test_special_and_partial_candidates_are_refused_in_one_sentence(qtbot, window):
    w = window
    tok = w.controller.tokenizer
    end = next(i for i in range(200) if tok.is_special(i))
    assert not w.flow.continue_with(end)
    assert "special token" in w.statusBar().currentMessage() and w.editor.toPlainText() == TEXT
    piece = next(i for i in range(tok.vocab_size) if not tok.is_special(i) and _partial(tok.token_bytes(i)))
    assert not w.flow.continue_with(piece)
    assert "part of a character" in w.statusBar().currentMessage() and w.editor.toPlainText() == TEXT


def _partial(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


def test_caret_positions_count_characters_not_utf16_units(demo):
    text = "a 😀 b é c"
    r = demo.analyze(text)
    for i in range(len(text) + 1):
        assert char_index(text, utf16_index(text, i)) == i
    assert caret_token(r, len(text)) == -1
    assert caret_token(r, 0) == 0  # the start token: what the model expects first
    after_emoji = caret_token(r, text.index(" b"))
    assert r.tokens[after_emoji].end == text.index(" b")  # the last token of the emoji


def test_a_sampling_scene_shows_its_next_sample_and_ctrl_g_draws_it(qtbot, window, wait_result):
    """The close-call scene sets a seed: under the bars the panel names the token that Sample (Ctrl+G) draws next,
    with the settings as they are now; Ctrl+G draws that token, and the next draw is shown after Ctrl+Z."""
    import re

    from explainer.core import sampling
    from explainer.ui.scenes_ui import find_scene

    w = window
    w.scenes.open_lecture(find_scene("close", w.scenes.lecture)[0])
    text = w.scenes.current.text
    wait_result(w, text)
    nt = w.next_token

    def shown() -> str:
        return re.sub(r"<[^>]+>", "", nt.footer.text())

    assert nt.seed == w.scenes.current.panels["next_token"]["seed"] and nt.draws == 0
    for t in (0.3, 1.0, 1.9):  # the shown choice follows the temperature
        nt.temperature.setValue(t)
        want = sampling.draw(nt.sampled_distribution(), nt.seed, 0)
        assert nt.next_sample() == want
        assert f"Next sample (Ctrl+G): “{nt.candidate_label(want)}”, draw 1 of seed {nt.seed}" in shown()
    upcoming = nt.next_sample()
    piece = w.controller.tokenizer.token_bytes(upcoming).decode("utf-8", "replace")
    w.flow.sample_action.trigger()
    assert nt.draws == 1 and f"Sampled “{nt.candidate_label(upcoming)}”" in w.statusBar().currentMessage()
    if w.editor.toPlainText() != text:  # a whole token: the text goes on with it, one undo step
        assert w.editor.toPlainText() == text + piece
        w.flow.undo_action.trigger()
        assert w.editor.toPlainText() == text
    wait_result(w, text)
    assert nt.next_sample() == sampling.draw(nt.sampled_distribution(), nt.seed, 1)
    assert "draw 2 of seed" in shown()
