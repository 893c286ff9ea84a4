"""The window's views as tabs under the editor: "Live" (the four linked panels) and the teaching views.

::

    editor
    ┌ Live │ Side by side │ Tokens are not letters │ Head roles │ Attention step by step │ Logit lens │ Chat ┐
    │  the tab's view                                                                                      │

Every view shows the newest ``AnalysisResult`` and follows the window's ``ViewState`` (hovered / selected
position, layer and head). A teaching view that is not on screen is brought up to date when its tab is shown (the
logit lens alone costs tens of milliseconds per result; a hidden view must not slow typing down). Choosing a head
in the attention panel, the walk-through or the head roles sets the state's head, which all three show. The word
under the editor's cursor goes to "Tokens are not letters". The chat view's "Send to
editor" puts its ChatML text in the editor with special tokens parsed and no start token.
"""

from __future__ import annotations

import logging
import re

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QApplication, QMenu, QStackedWidget, QTabWidget, QWidget

from explainer.ui.panels.base import Panel
from explainer.ui.panels.bpe_view import BpePanel
from explainer.ui.panels.chat_template import ChatTemplatePanel
from explainer.ui.panels.heads import HeadRolesPanel
from explainer.ui.panels.lens import LensPanel
from explainer.ui.panels.tokenizers_compare import TokenizersComparePanel
from explainer.ui.panels.walkthrough import WalkthroughPanel
from explainer.ui.panels.why_two import TwoTextsPanel
from explainer.ui.view_state import LIVE, LIVE_PANELS, ViewState

log = logging.getLogger(__name__)

# key, tab label, panel class, tooltip
VIEWS = (
    ("compare", "Side by side", TokenizersComparePanel, "The text cut by three tokenizers, lined up"),
    ("bpe", "Tokens are not letters", BpePanel, "The word under the cursor: variants, BPE merges, bytes"),
    ("heads", "Head roles", HeadRolesPanel, "Which heads copy, look back, or park on the first token"),
    ("walkthrough", "Attention step by step", WalkthroughPanel, "One head's computation with the real numbers"),
    ("lens", "Logit lens", LensPanel, "What each layer would predict"),
    ("chat", "Chat template", ChatTemplatePanel, "How a conversation becomes one stream of tokens"),
    (
        "two_texts",
        "Two texts",
        TwoTextsPanel,
        "A clean and a corrupted text compared; where is the difference carried?",
    ),
)
ALIASES = {
    "side_by_side": "compare",
    "tokenizers": "compare",
    "tokens_are_not_letters": "bpe",
    "variants": "bpe",
    "merges": "bpe",
    "head_roles": "heads",
    "attention_step_by_step": "walkthrough",
    "walk": "walkthrough",
    "logit_lens": "lens",
    "chat_template": "chat",
    "patching": "two_texts",
    "compare_two": "two_texts",
    "two": "two_texts",
    "next": "next_token",
    "probabilities": "next_token",
    "embedding": "embeddings",
}
CURSOR_WORD_MS = 150
# the side-by-side view's tokenizers are built in the background at the first pause this long after a picture (the
# building holds Python's lock for a few hundred ms: a keystroke then would wait that long for its picture)
WARM_UP_AFTER_MS = 1500
_WORD = re.compile(r"[^\W_]+", re.UNICODE)  # as the BPE view splits words


def view_key(name: str) -> str | None:
    """A view's key from a key, a label or an alias ("Head roles", "head-roles", "heads"); None if unknown."""
    k = re.sub(r"[\s\-]+", "_", str(name).strip().lower())
    k = ALIASES.get(k, k)
    labels = {re.sub(r"\s+", "_", label.lower()): key for key, label, _, _ in VIEWS}
    k = labels.get(k, k)
    return k if k == LIVE or k in LIVE_PANELS or any(k == v[0] for v in VIEWS) else None


def word_at(text: str, pos: int) -> str:
    """The word touching position ``pos`` of ``text`` (the cursor just after a word counts), or ""."""
    for m in _WORD.finditer(text):
        if m.start() <= pos <= m.end():
            return m.group()
        if m.start() > pos:
            break
    return ""


class TeachArea(QTabWidget):
    """The tabs; ``live`` is the widget of the four live panels (the first tab). Follows and changes the window's
    ``ViewState`` (``view``, ``hero``, hovered / selected position, layer and head)."""

    viewChanged = Signal(str)  # "live" or a teaching view's key

    def __init__(self, window, live: QWidget, state: ViewState):
        super().__init__()
        self.main, self.state = window, state
        self.setObjectName("teachArea")
        self.setDocumentMode(True)
        self.tabBar().setFocusPolicy(Qt.TabFocus)  # ← → switch the views once Tab has reached the tabs
        self.panels: dict[str, Panel] = {key: cls() for key, _, cls, _ in VIEWS}
        self.keys = [LIVE] + [key for key, *_ in VIEWS]
        self.addTab(live, "Live")
        self.setTabToolTip(0, "Tokens, next token, attention and embeddings, linked")
        for key, label, _, tip in VIEWS:
            self.setTabToolTip(self.addTab(self.panels[key], label), tip)
        self._laid_out_for: tuple | None = None  # what the tabs' last layout depended on (see ``event``)
        self._cursor_word = ""  # the last word sent to the BPE view (or skipped)
        self._cursor_word_due = False  # a new cursor word waits for the BPE view's tab to be shown
        self._cursor_timer = QTimer(self, singleShot=True, interval=CURSOR_WORD_MS)
        self._cursor_timer.timeout.connect(self._on_cursor_timer_timeout)
        self._warm_up_timer = QTimer(self, singleShot=True, interval=WARM_UP_AFTER_MS)
        self._warm_up_timer.timeout.connect(self._on_warm_up_timer_timeout)
        self._warm_up_asked = False  # the tokenizers have been asked for
        self.view_actions: dict[str, QAction] = {}
        for p in self.panels.values():
            p.set_theme(window.theme)
        self._connect()

    # --- wiring -------------------------------------------------------------------------------------------------
    def _connect(self) -> None:
        w, st = self.main, self.state
        self.currentChanged.connect(self._on_current_changed)
        st.viewChanged.connect(self._on_state_view_changed)
        st.hoveredChanged.connect(self._on_state_hovered_changed)
        st.selectedChanged.connect(self._on_state_selected_changed)
        st.headChanged.connect(self._on_state_head_changed)
        w.installEventFilter(self)  # its Close: stop the cursor-word timer
        w.resultShown.connect(self._on_window_result_shown)
        w.editor.cursorPositionChanged.connect(self._cursor_timer.start)
        w.controller.modelLoaded.connect(self._on_controller_model_loaded)
        for p in w.panels.values():
            p.tokenSelected.connect(lambda _pos, p=p: self._note_live_panel(p))
        w.attention.headSelected.connect(lambda *_: self._note_live_panel(w.attention))
        w.embeddings.layerChanged.connect(lambda *_: self._note_live_panel(w.embeddings))
        w.next_token.candidateChosen.connect(lambda *_: self._note_live_panel(w.next_token))
        QApplication.instance().focusChanged.connect(self._on_app_focus_changed)
        for p in self.panels.values():
            p.tokenHovered.connect(st.set_hovered)
            p.tokenSelected.connect(st.set_selected)
        self.panels["walkthrough"].headSelected.connect(self._on_teach_head_selected)
        self.panels["heads"].headSelected.connect(self._on_heads_head_selected)
        self.panels["chat"].textRequested.connect(self._on_chat_text_requested)

    def event(self, event) -> bool:
        """A layout request whose inputs are unchanged is answered without laying the tabs out again: a tab
        widget repaints all of itself after every layout, and a panel's label that changes its text at every
        keystroke sends one up to here (the whole window redrawn for a number in one panel)."""
        if event.type() == QEvent.LayoutRequest:
            bar, stack = self.tabBar(), self.findChild(QStackedWidget, "qt_tabwidget_stackedwidget")
            key = (
                self.size().toTuple(),
                self.count(),
                self.currentIndex(),
                bar.isVisible(),
                bar.sizeHint().toTuple(),
                bar.minimumSizeHint().toTuple(),
                *(
                    (stack.sizeHint().toTuple(), stack.minimumSizeHint().toTuple(), stack.maximumSize().toTuple())
                    if stack is not None
                    else ()
                ),
            )
            if key == self._laid_out_for:
                return True
            self._laid_out_for = key
        return super().event(event)

    def eventFilter(self, obj, event) -> bool:
        if obj is self.main and event.type() == QEvent.Close:
            self._cursor_timer.stop()
            self._warm_up_timer.stop()
        return False

    # --- views --------------------------------------------------------------------------------------------------
    def current_key(self) -> str:
        return self.keys[self.currentIndex()]

    def current_panel(self) -> Panel | None:
        """The teaching view on screen, or None when the live panels are."""
        return self.panels.get(self.current_key())

    def focused_key(self) -> str:
        """The view "this view" means: the teaching tab on screen, else the hero (the live panel last used)."""
        key = self.current_key()
        return self.state.hero if key == LIVE else key

    def focused_panel(self) -> Panel:
        key = self.focused_key()
        return self.panels.get(key) or self.main.panels[key]

    def visible_panels(self) -> dict[str, Panel]:
        p = self.current_panel()
        if p is not None:
            return {self.current_key(): p}
        return {k: q for k, q in self.main.panels.items() if not q.isHidden()} or dict(self.main.panels)

    def all_panels(self) -> dict[str, Panel]:
        return {**self.main.panels, **self.panels}

    def _note_live_panel(self, panel: Panel) -> None:
        for key, p in self.main.panels.items():
            if p is panel:
                self.state.set_hero(key)

    def _on_app_focus_changed(self, _old, new) -> None:
        live = set(self.main.panels.values())
        while new is not None:
            if new in live:
                self._note_live_panel(new)
                return
            new = new.parentWidget()

    def show_view(self, name: str) -> bool:
        """Bring a view forward: a teaching tab, "live", or a live panel ("attention": the Live tab, that panel
        becomes the hero and gets the keyboard focus). False when the name is unknown."""
        key = view_key(name)
        if key is None:
            return False
        if key in LIVE_PANELS:
            self.state.set_hero(key)
            self.state.set_view(LIVE)
            panel = self.main.panels[key]
            if panel.focusPolicy() & Qt.TabFocus:  # the attention panel: its arrow keys pick layer and head
                panel.setFocus(Qt.OtherFocusReason)
        else:
            self.state.set_view(key)
        return True

    def add_menu_actions(self, menu: QMenu) -> None:
        """ "Live" and each teaching view as radio items with Ctrl+1…Ctrl+7 (also while the menu bar is hidden)."""
        group = QActionGroup(self)
        for i, key in enumerate(self.keys):
            a = QAction(self.tabText(i), self.main, checkable=True)
            a.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            a.setData(key)
            a.setToolTip(self.tabToolTip(i))
            group.addAction(a)
            menu.addAction(a)
            self.main.addAction(a)  # shortcuts keep working with the menu bar hidden (presenter mode)
            self.view_actions[key] = a
        group.triggered.connect(lambda a: self.show_view(a.data()))
        self.view_actions[self.current_key()].setChecked(True)

    # --- bringing a view up to date --------------------------------------------------------------------------------
    def sync(self, panel: Panel) -> None:
        """Give ``panel`` the newest result, the selected position and the head."""
        st, r = self.state, self.main.result
        pos = st.selected
        if isinstance(panel, WalkthroughPanel):
            drawn = panel.walk
            panel.layer, panel.head = st.layer, st.head
            if panel.result is r and drawn is not None and (drawn.layer, drawn.head) != (st.layer, st.head):
                panel.refresh()
        if isinstance(panel, HeadRolesPanel):
            panel.select_head(st.layer, st.head)
        if isinstance(panel, BpePanel) and self._cursor_word_due:
            self._cursor_word_due = False
            if self._cursor_word not in _WORD.findall(self.main.editor.toPlainText()):
                self._cursor_word = ""  # from a text that has been replaced since: the view picks its own word
            elif panel.field.text() != self._cursor_word:
                panel.set_cursor_word(self._cursor_word)
        if r is not None and panel.result is not r:
            panel.selected_position = pos if pos < r.n_tokens else -1
            panel.hovered_position = -1
            panel.set_result(r)
        elif panel.result is not None and panel.selected_position != pos:
            panel.select_position(pos)

    def sync_visible(self) -> None:
        p = self.current_panel()
        if p is not None:
            self.sync(p)

    def set_theme(self, theme) -> None:
        for p in self.panels.values():
            p.set_theme(theme)

    def set_help_visible(self, visible: bool) -> None:
        for p in self.panels.values():
            p.set_help_visible(visible)

    def _on_current_changed(self, index: int) -> None:
        key = self.keys[index]
        self.state.set_view(key)
        self.sync_visible()
        if key in self.view_actions:
            self.view_actions[key].setChecked(True)
        self.viewChanged.emit(key)

    def _on_state_view_changed(self, key: str) -> None:
        if key in self.keys and key != self.current_key():
            self.setCurrentIndex(self.keys.index(key))

    def _on_window_result_shown(self, _result) -> None:
        self.sync_visible()
        if not self._warm_up_asked:  # a picture is out: the side-by-side tokenizers at the next pause, not now
            self._warm_up_timer.start()  # (each new picture puts it off again)

    def _on_warm_up_timer_timeout(self) -> None:
        if self.main.controller.busy:  # typing again: a picture is on its way
            self._warm_up_timer.start()
            return
        self._warm_up_asked = True
        self.panels["compare"].warm_up()

    # --- linked tokens and heads -------------------------------------------------------------------------------------
    def _on_state_hovered_changed(self, position: int) -> None:
        p = self.current_panel()
        if p is not None and p.result is not None:
            p.highlight_token(position)

    def _on_state_selected_changed(self, _position: int) -> None:
        self.sync_visible()

    def _on_state_head_changed(self, layer: int, head: int) -> None:
        self.panels["heads"].select_head(layer, head)
        walk = self.panels["walkthrough"]
        if walk is self.current_panel():
            if (walk.layer, walk.head) != (layer, head):
                walk.set_head(layer, head)
        else:
            walk.layer, walk.head = layer, head  # drawn when its tab is shown

    def _on_teach_head_selected(self, layer: int, head: int) -> None:
        """A head picked in a teaching view: shown everywhere, and no longer the average of heads."""
        self.state.set_head(layer, head)
        self.state.set_average(False)

    def _on_heads_head_selected(self, layer: int, head: int) -> None:
        """A badge or a table cell in "Head roles": select it everywhere and open it in the attention panel."""
        self._on_teach_head_selected(layer, head)
        self.show_view("attention")
        self.main.statusBar().showMessage(
            f"Layer {layer + 1}, head {head + 1} is open in the Attention panel (and in Attention step by step). "
            "Ctrl+4 goes back to Head roles.",
            8000,
        )

    # --- the editor's cursor word -----------------------------------------------------------------------------------
    def skip_cursor_word(self) -> None:
        """Treat the word now under the cursor as already sent (a scene sets the BPE view's word itself)."""
        self._cursor_timer.stop()
        self._cursor_word = self._word_under_cursor() or self._cursor_word
        self._cursor_word_due = False

    def _word_under_cursor(self) -> str:
        c = self.main.editor.textCursor()
        return word_at(c.block().text(), c.positionInBlock())

    def _on_cursor_timer_timeout(self) -> None:
        word = self._word_under_cursor()
        if not word or word == self._cursor_word:
            return
        self._cursor_word = word
        bpe = self.panels["bpe"]
        if bpe is self.current_panel():
            bpe.set_cursor_word(word)
        else:
            self._cursor_word_due = True  # when its tab is shown (sync)

    # --- model and chat ---------------------------------------------------------------------------------------------
    def _on_controller_model_loaded(self, _info) -> None:
        m = self.main.controller.model
        if m is None:
            return
        lens, chat, heads = self.panels["lens"], self.panels["chat"], self.panels["heads"]
        lens.result = None  # an older model's result must not meet the new model's tables
        if m.tokenizer is not None:
            lens.set_token_decoder(m.tokenizer.token_bytes)
            chat.set_token_decoder(m.tokenizer.token_bytes)
        self._set_chat_model(chat, m)
        table = getattr(m.projector, "embedding_table", None)
        if table is not None:
            lens.set_embedding_table(table)
        heads.reference = None  # the reference test belongs to the previous model
        jobs = getattr(self.main, "jobs", None)
        if jobs is not None and hasattr(m, "info"):
            from explainer.core import heads as core_heads

            heads.set_reference_runner(lambda: jobs.call_blocking(core_heads.cached_reference_scores))
        self.sync_visible()

    @staticmethod
    def _set_chat_model(chat, m) -> None:
        """A model folder brings its own chat template; a GGUF model uses SmolLM2's ChatML."""
        from pathlib import Path

        path = Path(getattr(m.info, "path", "") or ".")
        if not getattr(m.info, "path", "") or not path.is_dir() or m.tokenizer is None:
            chat.set_model_chat(None)
            return
        from explainer.core.chat_jinja import model_chat_template, template_variables

        chat.set_model_chat(m.tokenizer, model_chat_template(path), template_variables(path))

    def _on_chat_text_requested(self, text: str, parse_specials: bool) -> None:
        from explainer.ui.analysis_menu import set_text_and_settings

        # a chat starts with its own special token (<|im_start|>, <|begin_of_text|>…), not with a start-of-text token
        start = not (parse_specials and any(text.lstrip().startswith(s) for s in self.panels["chat"].specials()))
        set_text_and_settings(self.main, text, parse_specials=parse_specials, start_token=start)
        self.main.statusBar().showMessage(
            "The chat is in the editor: special tokens are read as single tokens, and there is no start-of-text "
            "token (View menu).",
            8000,
        )
