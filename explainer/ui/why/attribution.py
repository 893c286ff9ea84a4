"""Attribution on the token chips: "Why this prediction?" answered by input × gradient.

The Tokens panel's "Why?" toggle turns it on. The prediction explained is the one the next-token panel shows
(after the selected position, else at the end): its top token, or the token chosen by right-clicking a bar
there. The scores (``core.attribution.attribute``: one signed number per token, of the model as analysed, with
any knocked-out heads) are computed on the model's thread on demand, the newest request only; the chips take a
diverging colour (vermillion pushes the prediction up, blue down, the theme's neutral for zero) and show the
score instead of the id, and a legend above them names the target and the scale's numbers.
"""

from __future__ import annotations

import html
import logging

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter
from PySide6.QtWidgets import QBoxLayout, QHBoxLayout, QMenu, QWidget

from explainer.ui import theme as th
from explainer.ui.panels.chips import ChipOverlay
from explainer.ui.panels.next_token import token_label
from explainer.ui.why.colours import diverging
from explainer.ui.widgets.labels import FullTextLabel

log = logging.getLogger(__name__)
ALONE_SCALE = 2.0  # the explanation's line and legend with the tokens panel alone: as large as its chain rule's line


def nice_scale(scores) -> float:
    """The colour scale's end: the largest |score| (never 0)."""
    m = float(np.max(np.abs(scores))) if len(scores) else 0.0
    return m if m > 0 else 1.0


class DivergingLegend(QWidget):
    """A colour bar from −scale (blue, "pushes down") through 0 to +scale (vermillion, "pushes up")."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.theme = th.LIGHT
        self.scale = 1.0
        f = QFont(self.font())
        f.setPointSizeF(th.SMALL_FONT_PT)
        self.setFont(f)
        self.setMinimumWidth(260)

    def set_scale(self, scale: float, theme: th.Theme) -> None:
        self.scale, self.theme = scale, theme
        self.update()

    def sizeHint(self) -> QSize:
        grown = self.font().pointSizeF() / th.SMALL_FONT_PT  # (a larger font: a longer bar too)
        return QSize(int(360 * max(1.0, grown)), int(QFontMetricsF(self.font()).height() + 14))

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        fm = QFontMetricsF(self.font())
        left, right = f"pushes down −{self.scale:.3g}", f"+{self.scale:.3g} pushes up"
        lw, rw = fm.horizontalAdvance(left) + 6, fm.horizontalAdvance(right) + 6
        bar = QRectF(lw, 3, max(20.0, self.width() - lw - rw), self.height() - 6)
        n = 33
        for k in range(n):
            v = self.scale * (2 * (k + 0.5) / n - 1)
            seg = QRectF(bar.left() + bar.width() * k / n, bar.top(), bar.width() / n + 1, bar.height())
            p.fillRect(seg, QColor(diverging(v, self.scale, self.theme)))
        p.setPen(QColor(self.theme.grid))
        p.drawRect(bar)
        p.setPen(QColor(self.theme.text))
        y = bar.center().y() + (fm.ascent() - fm.descent()) / 2
        p.drawText(QPointF(0, y), left)
        p.drawText(QPointF(bar.right() + 6, y), right)
        zero = "0"
        p.drawText(QPointF(bar.center().x() - fm.horizontalAdvance(zero) / 2, y), zero)
        p.end()


class AttributionLink(QObject):
    """Computes the attribution the Tokens panel's "Why?" asks for and lays it over its chips."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.tokens = window.tokens
        self.target: int | None = None  # a chosen token id; None: the top token at the position
        self.attribution = None  # the core Attribution shown
        self._job = None
        self._due = False
        row = QWidget()
        lay = QHBoxLayout(row)
        lay.setContentsMargins(0, 0, 0, 0)
        # one line, shortened with … when narrow (the whole sentence in its tooltip): a wrapped line would ask the
        # tokens panel for a height that depends on its width, which the splitters don't honour
        self.caption = FullTextLabel(min_text="Why …")
        self.legend = DivergingLegend()
        lay.addWidget(self.caption, 1)
        lay.addWidget(self.legend, 0, Qt.AlignLeft | Qt.AlignVCenter)
        self.row = row
        self._fonts = (QFont(self.caption.font()), QFont(self.legend.font()))  # among the other panels
        row.hide()
        self.tokens.body.insertWidget(self.tokens.body.indexOf(self.tokens.chain), row)  # under the chips
        self.tokens.whyToggled.connect(self._on_tokens_why_toggled)
        self.tokens.aloneChanged.connect(self._fit_row)
        self._fit_row(self.tokens.alone)
        window.resultShown.connect(lambda *_: self.request())
        # the next-token panel's position follows a pin or the caret (its slots run first: bound before this)
        window.view.selectedChanged.connect(self._on_state_position_changed)
        window.view.caretChanged.connect(self._on_state_position_changed)
        window.themeChanged.connect(lambda *_: self._draw())
        for bars in (window.next_token.bars, getattr(getattr(window, "knockout", None), "before_after", None)):
            if bars is not None:
                bars.setContextMenuPolicy(Qt.DefaultContextMenu)
                bars.installEventFilter(self)

    @property
    def on(self) -> bool:
        return self.tokens.why.isChecked()

    def _fit_row(self, alone: bool) -> None:
        """With the tokens panel alone (a projector's hero) the explanation is written larger, as the chain rule
        is there, on a line of its own above its legend; among the other panels it is one small line."""
        for widget, base in zip((self.caption, self.legend), self._fonts):
            font = QFont(base)
            if alone:
                font.setPointSizeF(base.pointSizeF() * ALONE_SCALE)
            widget.setFont(font)
        self.row.layout().setDirection(QBoxLayout.TopToBottom if alone else QBoxLayout.LeftToRight)
        self.legend.updateGeometry()

    # --- requests ---------------------------------------------------------------------------------------------
    def explain(self, target: int | None = None) -> None:
        """Explain ``target`` (None: the top token) at the next-token panel's position, on the chips."""
        self.target = target
        self.tokens.set_why(True)
        self.request()

    def wanted(self) -> tuple | None:
        """(ids, position, target, ablated) the chips should explain now, or None. The position is the next-token
        panel's, in its result: None while the window is still handing a newer result to its panels (the selection
        is clamped to the new text first; the new result asks again once it is shown)."""
        nt = self.window.next_token
        r = nt.result
        if not self.on or r is None or r.n_tokens == 0 or not self.tokens.is_model_tokenizer:
            return None
        if r is not self.window.result:
            return None
        pos = nt.position
        target = self.target if self.target is not None else int(r.top_ids[pos, 0])
        return r.ids, pos, target, tuple(r.ablated)

    def _matches(self, a, want) -> bool:
        return (
            a is not None
            and want is not None
            and np.array_equal(a.ids, want[0])
            and (a.position, a.target, tuple(a.ablated)) == want[1:]
        )

    def request(self) -> None:
        want = self.wanted()
        if want is None:
            self._draw()
            return
        if self._matches(self.attribution, want):
            self._draw()
            return
        if self.tokens.overlay is not None:
            self.tokens.set_overlay(None)  # never another text's or prediction's numbers, not even briefly
        self._show_row()  # (what it says while the scores are computed: the first time takes seconds)
        if self.window.controller.busy:  # a newer text is being analysed: its result asks again when shown
            self._say("Computing the attribution…")
            return
        if self._job is not None and not self._job.finished:
            self._due = True  # the newest request starts when this one is done
            return
        ids, pos, target, ablated = want
        ids = np.array(ids)

        def run(engine, job):
            from explainer.core.attribution import attribute  # (torch: imported in the model's thread, not here)

            return attribute(engine, ids, target=target, position=pos, ablated=ablated)

        self._due = False
        self._say("Computing the attribution…")
        self._job = self.window.jobs.start(run, self._on_job_done)

    def _on_job_done(self, attribution, error: str) -> None:
        self._job = None
        if error:
            self.attribution = None
            self._say(error, th.HIGHLIGHT)
        else:
            self.attribution = attribution
        if self._due:
            self.request()
        else:
            self._draw()

    def _on_tokens_why_toggled(self, on: bool) -> None:
        if not on:
            self.target = None
        self.request()

    def _on_state_position_changed(self, _pos: int) -> None:
        a = self.attribution
        if a is not None and a.position == self.window.next_token.position:
            return  # (a caret moved within the explained token, or a pin on it)
        self.target = None  # another position: its own top token
        self.request()

    def _say(self, text: str, colour: str = "") -> None:
        self.caption.setText(text)
        self.caption.setStyleSheet(f"color: {colour}" if colour else "")

    # --- drawing ----------------------------------------------------------------------------------------------
    def _label(self, token_id: int) -> str:
        tok = self.window.controller.tokenizer
        return token_label(tok.token_bytes(int(token_id))) if tok is not None else f"#{token_id}"

    def _show_row(self) -> None:
        """The explanation's line under the chips while "Why?" is on, the chain rule's when it is off."""
        if self.row.isVisibleTo(self.tokens) != self.on:
            self.row.setVisible(self.on)
            self.tokens.chain.setVisible(not self.on)  # its line (the chain rule) is where the explanation goes
            QTimer.singleShot(0, self.window.live.fit)  # the tokens panel's room follows its new line

    def _draw(self) -> None:
        a, want = self.attribution, self.wanted()
        self._show_row()
        if not self._matches(a, want):
            if self.tokens.overlay is not None:
                self.tokens.set_overlay(None)
            if self.on and (self._job is None or self._job.finished) and self.window.result is not None:
                if not self.tokens.is_model_tokenizer:
                    self._say("Attribution needs the model's own tokenizer (choose it on the left).")
            return
        theme = self.window.theme
        scale = nice_scale(a.scores[: a.position + 1])
        n = len(a.scores)
        fills = {i: diverging(float(a.scores[i]), scale, theme) for i in range(min(n, a.position + 1))}
        subs = {i: f"{float(a.scores[i]):+.3f}".replace("-", "−") for i in range(n)}
        for i in range(a.position + 1, n):
            subs[i] = "after"
        target = self._label(a.target)
        r = self.window.result
        where = "at the end" if a.position == n - 1 else f"after token {a.position}"
        knocked = f", {len(a.ablated)} heads knocked out" if a.ablated else ""
        top = np.argsort(-a.scores[: a.position + 1])[:1]
        best = self._label(int(r.ids[top[0]])) if len(top) else ""
        line = (
            f"Why “{target}” ({100 * a.target_prob:.1f} %{knocked}, {where})? "
            f"“{best}” pushes it up most ({float(a.scores[top[0]]):+.3f})."
        )
        self._say(line)
        self.caption.setToolTip(
            f"<p style='max-width: 460px'><b>{html.escape(line)}</b><br>Input × gradient of log P(“{html.escape(target)}”): for each token, its "
            "input embedding times the gradient of the log-probability, summed over the embedding's numbers. "
            "Positive (vermillion): the token pushes the prediction up; negative (blue): down. It is a "
            "first-order estimate of what removing the token's embedding would do, not the exact effect. "
            "Right-click a bar in the next-token panel to explain another token.</p>"
        )
        self.legend.set_scale(scale, theme)
        self.tokens.set_overlay(
            ChipOverlay(
                fills,
                subs,
                "input_x_gradient",
                {i: float(a.scores[i]) for i in range(n)},
                f"why “{target}” {where}: input × gradient of log P",
                {
                    "target": {"id": int(a.target), "text": target, "prob": float(a.target_prob)},
                    "attribution_position": int(a.position),
                    "ablated": [[la + 1, h + 1] for la, h in a.ablated],
                },
            )
        )

    # --- the next-token bars' menu ------------------------------------------------------------------------------
    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.ContextMenu:
            token = self._bar_token(obj, event.pos().y())
            if token is not None:
                menu = QMenu(self.window)
                menu.addAction(
                    f"Why “{self._label(token)}”? Explain it on the token chips", lambda: self.explain(token)
                )
                menu.addAction("Continue the text with it", lambda: self.window.next_token.candidateChosen.emit(token))
                menu.popup(event.globalPos())
                self.menu = menu  # kept for tests
                return True
        return False

    def _bar_token(self, bars, y: float) -> int | None:
        row = bars.row_at(y)
        if row < 0:
            return None
        ids = bars.ids if hasattr(bars, "ids") else self.window.next_token._row_ids
        return int(ids[row]) if row < len(ids) else None
