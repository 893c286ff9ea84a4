"""Head knock-out in the window: choose heads, and every view shows the model without them.

The knocked-out heads are the ``ViewState``'s ``knocked_out`` field (saved with scenes and the autosave). Ways to
change it: Ctrl- or Shift-click a head in the attention panel's grid, its right-click menu, the "Knock out"
button in the attention panel's title row (the head shown), "Knock out the top induction heads" in Head roles,
and "Restore" in the bar under the editor, which names the heads while any are out. The controller analyses
every text with those heads zeroed (``AnalysisSettings.ablated``) and the clean model too; the next-token panel
then shows both distributions side by side (``before_after``).
"""

from __future__ import annotations

import html
import logging

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QMenu, QPushButton, QToolButton

from explainer.core.knockout import heads_label
from explainer.ui.panels.next_token import token_label
from explainer.ui.why.before_after import BeforeAfterBars, compare_rows, softmax

log = logging.getLogger(__name__)
TOP_INDUCTION = 3  # "knock out the top induction heads" takes this many


def heads_phrase(heads) -> str:
    n = len(heads)
    return f"{n} head{'s' if n != 1 else ''} knocked out ({heads_label(sorted(heads))})"


class KnockoutBar(QFrame):
    """The line under the editor while heads are knocked out: which ones, and one click to restore them."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("knockoutBar")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 2, 4, 2)
        self.label = QLabel()
        self.label.setTextFormat(Qt.RichText)
        self.label.setWordWrap(True)
        self.restore = QPushButton("Restore all heads")
        self.restore.setToolTip("Bring every knocked-out head back: the views show the clean model again")
        lay.addWidget(self.label, 1)
        lay.addWidget(self.restore)
        self.hide()

    def show_heads(self, heads, theme) -> None:
        if not heads:
            self.hide()
            return
        self.setStyleSheet(
            f"QFrame#knockoutBar {{ background: {theme.surface}; border: 2px solid #D55E00; border-radius: 6px; }}"
        )
        self.label.setText(
            f"<b>✂ {html.escape(heads_phrase(heads))}</b> — every view shows the knocked-out model; "
            "the next-token panel compares it with the clean one."
        )
        self.show()


class KnockoutLink(QObject):
    """Wires the knock-out controls of a ``MainWindow`` to its view state and controller."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.state = window.view
        self.bar = KnockoutBar()
        window.banner.parentWidget().layout().addWidget(self.bar)
        self.bar.restore.clicked.connect(self.restore)
        # the attention panel: its grid and a button for the head it shows
        att = window.attention
        self.button = QToolButton(text="Knock out", checkable=True, focusPolicy=Qt.NoFocus)
        self.button.setToolTip(
            "Switch the head shown off in every view (its output set to zero). Ctrl- or Shift-click heads in the "
            "grid to knock out several; right-click one for its menu."
        )
        self._beside(
            att, att.measure_box, self.button
        )  # on the line that names the head (it elides, the title row not)
        self.button.clicked.connect(self._on_button_clicked)
        att.grid.headToggled.connect(self.toggle)
        att.grid.headMenuRequested.connect(self._on_grid_menu)
        # head roles: the top induction heads
        roles = window.teach.panels["heads"]
        self.induction_button = QPushButton(f"Knock out the top {TOP_INDUCTION} induction heads")
        self.induction_button.setToolTip(
            "Switch off the heads with the highest induction scores (the reference test's, once run; else this "
            "text's) and watch the copying prediction in the next-token panel."
        )
        roles.add_header_widget(self.induction_button)
        self.induction_button.clicked.connect(self.knock_out_top_induction)
        # the next-token panel: before / after
        nt = window.next_token
        self.before_after = BeforeAfterBars()
        self.before_after.hide()
        nt.body.insertWidget(nt.body.indexOf(nt.bars) + 1, self.before_after, 1)
        self.before_after.rowClicked.connect(nt.candidateChosen)
        self.before_after.capacityChanged.connect(self.update_before_after)
        self.before_after.export_data = lambda: {"knocked_out": self.export_data()}
        nt.replacement = self.before_after
        self.state.knockedOutChanged.connect(self._on_state_knocked_out_changed)
        self.state.headChanged.connect(lambda *_: self._update_button())
        self.state.averageChanged.connect(lambda *_: self._update_button())
        nt.refreshed.connect(self.update_before_after)  # a new result, caret or pin: the panel's position
        window.themeChanged.connect(self._on_window_theme_changed)
        window.controller.modelLoaded.connect(self._on_controller_model_loaded)  # a method: no lambda outlives us
        self._on_state_knocked_out_changed(self.state.knocked_out)

    @staticmethod
    def _beside(panel, widget, new) -> None:
        """Put ``new`` just before ``widget`` in the panel's row that holds it."""
        for i in range(panel.body.count()):
            row = panel.body.itemAt(i).layout()
            if row is not None and row.indexOf(widget) >= 0:
                row.insertWidget(row.indexOf(widget), new)
                return
        panel.add_header_widget(new)

    # --- requests ---------------------------------------------------------------------------------------------
    def toggle(self, layer: int, head: int) -> None:
        self.state.set_knocked_out(self.state.knocked_out ^ {(layer, head)})

    def restore(self) -> None:
        self.state.set_knocked_out(())

    def knock_out_top_induction(self) -> None:
        from explainer.core import heads as core_heads

        roles = self.window.teach.panels["heads"]
        scores = roles.reference
        if scores is None:
            r = self.window.controller.baseline or self.window.result  # the clean model's heads
            if r is None or r.n_tokens == 0:
                return
            scores = core_heads.scores_from_result(r)
        top = [(la, h) for la, h, _ in scores.top("induction", TOP_INDUCTION)]
        if not top:
            self.window.statusBar().showMessage(
                "This text repeats no tokens, so it gives no induction scores; run the reference test first.", 8000
            )
            return
        self.state.set_knocked_out(top)

    # --- drawing ----------------------------------------------------------------------------------------------
    def fitting(self, heads) -> frozenset[tuple[int, int]]:
        """Of ``heads``, those the loaded model has (a scene made for a larger model); all before a model is."""
        heads = frozenset(heads)
        model = self.window.controller.model
        if model is None:
            return heads
        return frozenset((la, h) for la, h in heads if la < model.info.n_layers and h < model.info.n_heads)

    def _on_state_knocked_out_changed(self, heads) -> None:
        heads = frozenset(heads)
        w = self.window
        kept = self.fitting(heads)
        if kept != heads:
            self.state.set_knocked_out(kept)
            return
        if w.controller.settings.ablated != tuple(sorted(heads)):
            w.controller.set_settings(ablated=tuple(sorted(heads)))
        self.bar.show_heads(heads, w.theme)
        w.attention.grid.set_marked(heads)
        self._update_button()
        self.update_before_after()

    def _on_controller_model_loaded(self, _info) -> None:
        self._on_state_knocked_out_changed(self.state.knocked_out)  # keep the heads the new model has

    def _on_window_theme_changed(self, theme) -> None:
        self.before_after.theme = theme
        self.bar.show_heads(self.state.knocked_out, theme)

    def _update_button(self) -> None:
        st = self.state
        self.button.setEnabled(not st.average)
        self.button.setChecked((st.layer, st.head) in st.knocked_out)
        self.button.setText("Knocked out" if self.button.isChecked() else "Knock out")

    def _on_button_clicked(self, _checked: bool) -> None:
        if not self.state.average:
            self.toggle(self.state.layer, self.state.head)

    def _on_grid_menu(self, layer: int, head: int, at) -> None:
        menu = QMenu(self.window)
        out = (layer, head) in self.state.knocked_out
        menu.addAction(
            f"Show layer {layer + 1}, head {head + 1}", lambda: self.window.attention.select_head(layer, head)
        )
        menu.addAction(
            f"{'Bring back' if out else 'Knock out'} layer {layer + 1}, head {head + 1}",
            lambda: self.toggle(layer, head),
        )
        n_heads = self.window.attention.grid.n_heads
        menu.addAction(
            f"Knock out every head of layer {layer + 1}",
            lambda: self.state.set_knocked_out(self.state.knocked_out | {(layer, h) for h in range(n_heads)}),
        )
        restore = menu.addAction("Restore all heads", self.restore)
        restore.setEnabled(bool(self.state.knocked_out))
        menu.popup(at)
        self.menu = menu  # kept for tests

    def update_before_after(self) -> None:
        """Both distributions at the next-token panel's position (the one its title names), when its result is a
        knocked-out one and the clean result of the same text is at hand; otherwise the panel's own bars."""
        w, nt = self.window, self.window.next_token
        r, clean = nt.result, w.controller.baseline
        on = (
            r is not None
            and bool(r.ablated)
            and clean is not None
            and clean.text == r.text
            and clean.n_tokens == r.n_tokens
            and r.n_tokens > 0
        )
        nt.bars.setVisible(not on)
        self.before_after.setVisible(on)
        if not on:
            return
        pos = nt.position
        p_clean, p_knocked = softmax(clean.logits_at(pos)), softmax(r.logits_at(pos))
        ids = compare_rows(p_clean, p_knocked, self.before_after.capacity())
        decode = w.controller.tokenizer.token_bytes if w.controller.tokenizer is not None else None
        labels = [token_label(decode(i)) if decode else f"#{i}" for i in ids]
        self.before_after.theme = w.theme
        self.before_after.set_rows(ids, labels, [float(p_clean[i]) for i in ids], [float(p_knocked[i]) for i in ids])

    def export_data(self) -> dict:
        """The heads and both distributions' rows, for the next-token panel's export."""
        b = self.before_after
        return {
            "heads": [[la + 1, h + 1] for la, h in sorted(self.state.knocked_out)],
            "position": self.window.next_token.position,
            "rows": [
                {"id": i, "token": lab, "clean": c, "knocked_out": k, "change": k - c}
                for i, lab, c, k in zip(b.ids, b.labels, b.clean, b.knocked)
            ],
        }
