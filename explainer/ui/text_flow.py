"""The text and its continuation: the editor's caret in the window's ``ViewState``, pins that hold only while
their token does, continuing the text with a next-token candidate (clicked, chosen with Enter, or sampled), and
undo from anywhere in the window.

- Caret: ``ViewState.caret`` is the token the editor's caret stands after (the token holding the character
  before it; -1 when the caret is at the end of the text). The prediction views follow it while nothing is
  pinned, so moving the caret into a sentence shows what the model expected there.
- Pin: clicking a token (chip, heatmap row, map point) pins its position (``ViewState.selected``); the pin holds
  while the text up to and including that token stays the same, and is dropped as soon as a new analysis no
  longer has that token there (an edit before it, a replaced sentence). Esc or the pin button in the next-token
  panel unpins.
- Continuing: a candidate predicted after token i replaces the text after token i (after the end: it is
  appended). It is one undo step, apart from the typing before and after it. Special tokens and pieces of a
  character are refused in one sentence.
- Edit ▸ Undo / Redo (Ctrl+Z / Ctrl+Shift+Z): the editor's undo from wherever the focus is (a text field with an
  undo of its own keeps its keys). Edit ▸ Sample the next token (Ctrl+G, the panel's "Sample" button): a seeded
  draw from the sampling distribution, applied like a click.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence, QTextCursor

from explainer.core.types import AnalysisResult, Token
from explainer.ui.keys import key_list

log = logging.getLogger(__name__)


def utf16_index(text: str, index: int) -> int:
    """The editor's position (UTF-16 code units) of character ``index`` of ``text``."""
    head = text[:index]
    return index if head.isascii() else len(head.encode("utf-16-le", "surrogatepass")) // 2


def char_index(text: str, position: int) -> int:
    """The character index in ``text`` of the editor's position ``position`` (UTF-16 code units)."""
    if text.isascii():
        return min(position, len(text))
    units = text.encode("utf-16-le", "surrogatepass")[: 2 * position]
    return len(units.decode("utf-16-le", "ignore"))


def caret_token(result: AnalysisResult, caret: int) -> int:
    """The position of the token the caret (a character index) stands after: the last token that starts before
    it (at character 0: the first position, the start token if there is one); -1 when the caret is at the end."""
    if caret >= len(result.text) or result.n_tokens == 0:
        return -1
    found = 0
    for i, t in enumerate(result.tokens):
        if t.added:
            continue
        if t.start >= caret:
            break
        found = i
    return found


def pin_of(result: AnalysisResult, position: int) -> tuple[int, int, str] | None:
    """What a pin at ``position`` holds on to: (position, token id, the text up to the token's end)."""
    if not 0 <= position < result.n_tokens:
        return None
    t = result.tokens[position]
    return position, int(t.id), result.text[: t.end]


def pin_holds(pin: tuple[int, int, str], result: AnalysisResult) -> bool:
    """Whether the pinned token is still there in ``result``: the same token at the same position, after the same
    text."""
    position, token_id, before = pin
    if position >= result.n_tokens:
        return False
    t = result.tokens[position]
    return int(t.id) == token_id and result.text[: t.end] == before


def continuation_cut(result: AnalysisResult, position: int) -> int | None:
    """The character of ``result.text`` after which a candidate predicted at ``position`` goes (the text after it
    is replaced); None when the token at ``position`` is only part of a character."""
    t = result.tokens[position]
    if position == result.n_tokens - 1:
        return len(result.text)
    nxt = result.tokens[position + 1]
    if t.incomplete or (not nxt.added and nxt.start < t.end):
        return None
    return t.end


class TextFlow(QObject):
    """Owns the caret, the pin's validity, continuing the text and the Edit menu's actions for a main window."""

    def __init__(self, window):
        super().__init__(window)
        self.main = window
        self.view = window.view
        self.editor = window.editor
        self._pin: tuple[int, int, str] | None = None
        self.editor.cursorPositionChanged.connect(self.update_caret)
        self.view.selectedChanged.connect(self._on_view_selected_changed)
        window.next_token.candidateChosen.connect(self.continue_with)
        window.next_token.sampleRequested.connect(self.sample)
        doc = self.editor.document()
        self.undo_action = self._action("&Undo", key_list(QKeySequence.Undo, "Ctrl+Z"), self.editor.undo)
        self.redo_action = self._action(
            "&Redo", key_list(QKeySequence.Redo, "Ctrl+Shift+Z", "Ctrl+Y"), self.editor.redo
        )
        self.undo_action.setEnabled(doc.isUndoAvailable())
        self.redo_action.setEnabled(doc.isRedoAvailable())
        doc.undoAvailable.connect(self.undo_action.setEnabled)
        doc.redoAvailable.connect(self.redo_action.setEnabled)
        self.sample_action = self._action("&Sample the next token", [QKeySequence("Ctrl+G")], self.sample)
        self.sample_action.setToolTip(window.next_token.sample_button.toolTip())
        self.unpin_action = self._action("U&npin the position", [], lambda: self.view.set_selected(-1))
        self.unpin_action.setToolTip("The prediction follows the caret again (Esc)")
        self.unpin_action.setEnabled(False)

    def _action(self, text: str, keys, slot) -> QAction:
        a = QAction(text, self.main)
        a.setShortcuts(keys)
        a.setShortcutContext(Qt.WindowShortcut)
        a.triggered.connect(lambda *_: slot())
        self.main.addAction(a)  # also while the menu bar is hidden (presenter mode)
        return a

    def add_menu_actions(self, menu) -> None:
        for a in (self.undo_action, self.redo_action):
            menu.addAction(a)
        menu.addSeparator()
        menu.addAction(self.sample_action)
        menu.addAction(self.unpin_action)

    # --- caret and pin ----------------------------------------------------------------------------------------------
    def update_caret(self) -> None:
        """Put the caret's token into the view state (when the shown result is of the editor's text)."""
        text, r = self.editor.toPlainText(), self.main.result
        caret = char_index(text, self.editor.textCursor().position())
        if caret >= len(text):
            self.view.set_caret(-1)
        elif r is not None and r.text == text:
            self.view.set_caret(caret_token(r, caret))

    def on_result(self, result: AnalysisResult) -> None:
        """A new result is about to be shown: drop a pin whose token is gone, then follow the caret."""
        if self.view.selected >= 0:
            if self._pin is None:
                self._pin = pin_of(result, self.view.selected)
            elif not pin_holds(self._pin, result):
                self.view.set_selected(-1)

    def _on_view_selected_changed(self, position: int) -> None:
        r = self.main.result
        self._pin = pin_of(r, position) if r is not None and position >= 0 else None
        self.unpin_action.setEnabled(position >= 0)

    # --- continuing the text ----------------------------------------------------------------------------------------
    def continue_with(self, token_id: int, how: str = "") -> bool:
        """Continue the text after the shown position with ``token_id`` (one undo step); False, with one sentence
        in the status bar, when that cannot be done. ``how`` starts the sentence ("Sampled …: ")."""
        tok, r = self.main.controller.tokenizer, self.main.result
        if tok is None or r is None or r.n_tokens == 0:
            return False
        data = tok.token_bytes(token_id)
        t = Token(token_id, data, 0, 0, special=bool(getattr(tok, "is_special", lambda i: False)(token_id)))
        if t.special:
            return self._refuse(
                how + f"{t.text} is a special token (it marks the end of a turn or text); it is not typed as text."
            )
        if t.incomplete:
            return self._refuse(
                how + f"This token is only part of a character (bytes {t.display}); it cannot be added as text on "
                "its own."
            )
        position = self.main.next_token.position
        cut = continuation_cut(r, position)
        if cut is None:
            return self._refuse(
                f"Token {position} is only part of a character; pin a whole character to continue from there."
            )
        text = self.editor.toPlainText()
        if not text.startswith(r.text[:cut]):
            return self._refuse("The text changed since this prediction; choose again once it is updated.")
        self.view.set_selected(-1)  # the prediction follows the caret: after the new token
        cursor = QTextCursor(self.editor.document())
        cursor.setPosition(utf16_index(text, cut))  # before the block: Ctrl+Z puts the caret back here
        cursor.beginEditBlock()
        cursor.movePosition(QTextCursor.End, QTextCursor.KeepAnchor)
        cursor.insertText(t.text)
        cursor.endEditBlock()
        self.editor.setTextCursor(cursor)
        # typing after the token merges into its undo step unless the document counts as unmodified here
        self.editor.document().setModified(False)
        self.editor.ensureCursorVisible()
        if how:
            self.main.statusBar().showMessage(how.rstrip(": ") + ".", 6000)
        return True

    def sample(self) -> bool:
        """Draw the next token with the next-token panel's seed and settings and continue the text with it."""
        nt = self.main.next_token
        if self.main.result is None or nt.result is not self.main.result:
            return False
        token = nt.sample_token()
        if token is None:
            return False
        t, k, p = nt.sampling_settings()
        label = nt.candidate_label(token)
        how = f"Sampled “{label}” (draw {nt.draws} of seed {nt.seed}, temperature {t:g}"
        how += (f", top-k {k}" if k else "") + (f", top-p {p:g}" if p < 1 else "") + "): "
        return self.continue_with(token, how)

    def _refuse(self, sentence: str) -> bool:
        self.main.statusBar().showMessage(sentence, 6000)
        return False
