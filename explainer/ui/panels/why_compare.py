"""Two texts side by side: their next-token distributions (one set of bars, the change highlighted), each token's
surprisal, and one head's attention difference (clean − corrupted, same token length only)."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSpinBox, QSplitter, QVBoxLayout, QWidget

from explainer.ui import theme as th
from explainer.ui.panels.chips import Chip, ChipView
from explainer.ui.panels.next_token import token_label
from explainer.ui.theme import token_font
from explainer.ui.why.before_after import BeforeAfterBars, compare_rows, softmax
from explainer.ui.why.colours import diverging_map


def surprisal_chips(result) -> list[Chip]:
    chips = []
    for i, t in enumerate(result.tokens):
        bits = float(result.surprisal_bits[i])
        fill = th.SPECIAL if t.special else th.surprisal_colour(bits) if not math.isnan(bits) else "#e6e8eb"
        chips.append(Chip(t.label, "—" if math.isnan(bits) else f"{bits:.1f} bits", fill, italic=t.added))
    return chips


def next_distributions(*results) -> tuple[np.ndarray, ...]:
    """Each result's next-token distribution after its last token (a result without tokens: None)."""
    return tuple(softmax(r.logits_at(r.n_tokens - 1)) if r.n_tokens else None for r in results)


class CompareView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.theme = th.LIGHT
        self.pair = None  # (clean AnalysisResult, corrupted AnalysisResult)
        self.decode = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        split = QSplitter(Qt.Horizontal)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        self.next_title = QLabel()
        self.next_title.setTextFormat(Qt.RichText)
        self.next_title.setWordWrap(True)
        self.bars = BeforeAfterBars(titles=("clean text", "corrupted text"))
        ll.addWidget(self.next_title)
        ll.addWidget(self.bars, 1)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        head_row = QHBoxLayout()
        self.layer_spin = QSpinBox(prefix="Layer ", minimum=1, maximum=1)
        self.head_spin = QSpinBox(prefix="Head ", minimum=1, maximum=1)
        self.attn_title = QLabel()
        self.attn_title.setWordWrap(True)
        head_row.addWidget(QLabel("Attention difference (clean − corrupted):"))
        head_row.addWidget(self.layer_spin)
        head_row.addWidget(self.head_spin)
        head_row.addStretch(1)
        rl.addLayout(head_row)
        self.attn = pg.PlotWidget(enableMenu=False)
        self.attn.setFocusPolicy(Qt.NoFocus)
        item = self.attn.getPlotItem()
        item.hideButtons()
        item.setMouseEnabled(x=False, y=False)
        item.setLabel("left", "query")
        item.setLabel("bottom", "key position")
        item.getViewBox().invertY(True)
        self.attn_image = pg.ImageItem(axisOrder="row-major")
        item.addItem(self.attn_image)
        rl.addWidget(self.attn, 1)
        rl.addWidget(self.attn_title)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        lay.addWidget(split, 1)
        self.surprisal_title = QLabel("Surprisal of each token (−log₂ P, given the tokens before it):")
        lay.addWidget(self.surprisal_title)
        self.chips_clean, self.chips_corrupt = ChipView(), ChipView()
        for label, view in (("clean", self.chips_clean), ("corrupted", self.chips_corrupt)):
            row = QHBoxLayout()
            name = QLabel(label)
            name.setMinimumWidth(70)
            row.addWidget(name)
            row.addWidget(view, 1)
            lay.addLayout(row)
        self.layer_spin.valueChanged.connect(lambda *_: self._draw_attention())
        self.head_spin.valueChanged.connect(lambda *_: self._draw_attention())
        self.diff = np.zeros((0, 0), np.float32)

    def set_theme(self, theme: th.Theme) -> None:
        self.theme = theme
        self.bars.theme = theme
        self.attn.setBackground(theme.background)
        font = token_font(self.font(), 11)
        for name in ("left", "bottom"):
            ax = self.attn.getPlotItem().getAxis(name)
            ax.setStyle(tickFont=font, tickLength=0)
            ax.setTextPen(theme.text)
            ax.setPen(theme.muted)
        self.attn_image.setColorMap(diverging_map(theme))
        for v in (self.chips_clean, self.chips_corrupt):
            v.set_theme(theme)
        self.bars.update()

    def set_head(self, layer: int, head: int) -> None:
        self.layer_spin.setValue(layer + 1)
        self.head_spin.setValue(head + 1)

    def _label(self, token_id: int) -> str:
        return token_label(self.decode(int(token_id))) if self.decode else f"#{token_id}"

    def set_pair(self, clean, corrupt, next_probs: tuple | None = None) -> None:
        """Show two results; ``next_probs``: their ``next_distributions`` when already computed (in the model's
        thread: each is a product with the whole vocabulary table)."""
        if clean.n_tokens == 0 or corrupt.n_tokens == 0:
            self.pair = None
            self.bars.set_rows([], [], [], [])
            self.next_title.setText("Type a text in both fields to compare them.")
            return
        self.pair = (clean, corrupt)
        p_a, p_b = next_probs if next_probs is not None else next_distributions(clean, corrupt)
        ids = compare_rows(p_a, p_b, 8)
        self.bars.set_rows(
            ids, [self._label(i) for i in ids], [float(p_a[i]) for i in ids], [float(p_b[i]) for i in ids]
        )
        top_a, top_b = int(np.argmax(p_a)), int(np.argmax(p_b))
        self.next_title.setText(
            f"<b>Next token</b>: the clean text expects “{self._label(top_a)}” ({100 * p_a[top_a]:.1f} %), the "
            f"corrupted one “{self._label(top_b)}” ({100 * p_b[top_b]:.1f} %). The largest change is outlined."
        )
        self.chips_clean.set_chips(surprisal_chips(clean))
        self.chips_corrupt.set_chips(surprisal_chips(corrupt))
        att = clean.attention
        self.layer_spin.setMaximum(att.n_layers)
        self.head_spin.setMaximum(att.n_heads)
        self._draw_attention()

    def _draw_attention(self) -> None:
        if self.pair is None:
            return
        a, b = self.pair
        layer, head = self.layer_spin.value() - 1, self.head_spin.value() - 1
        if a.n_tokens != b.n_tokens:
            self.diff = np.zeros((0, 0), np.float32)
            self.attn_image.clear()
            self.attn_title.setText(
                f"The clean text has {a.n_tokens} tokens and the corrupted text has {b.n_tokens}; the attention "
                "difference needs texts of the same token length."
            )
            return
        self.diff = np.asarray(a.attention.head(layer, head), np.float32) - np.asarray(
            b.attention.head(layer, head), np.float32
        )
        scale = float(np.max(np.abs(self.diff))) or 1.0
        self.attn_image.setImage(self.diff, levels=(-scale, scale), autoLevels=False)
        T = a.n_tokens
        self.attn_image.setRect(QRectF(0, 0, T, T))
        labels = [
            (i + 0.5, f"{i} " + (ta.label if ta.id == tb.id else f"{ta.label}/{tb.label}"))
            for i, (ta, tb) in enumerate(zip(a.tokens, b.tokens))
        ]
        item = self.attn.getPlotItem()
        step = max(1, T // 12)
        item.getAxis("bottom").setTicks([[(i + 0.5, str(i)) for i in range(0, T, step)]])
        item.getAxis("left").setTicks([labels])
        item.getViewBox().setRange(QRectF(0, 0, T, T), padding=0)
        i, j = np.unravel_index(int(np.argmax(np.abs(self.diff))), self.diff.shape)
        self.attn_title.setText(
            f"Vermillion: the clean text's head attends more; blue: less (scale ±{scale:.2f}). Largest: query "
            f"{i} → key {j}, {self.diff[i, j]:+.2f}."
        )

    def export_data(self) -> dict:
        if self.pair is None:
            return {"rows": []}
        a, b = self.pair
        b_ = self.bars
        rows = [
            {"id": i, "token": lab, "clean_text": c, "corrupted_text": k, "change": k - c}
            for i, lab, c, k in zip(b_.ids, b_.labels, b_.clean, b_.knocked)
        ]

        def surprisal(r):
            return [
                {"token": t.display, "surprisal_bits": None if math.isnan(float(s)) else float(s)}
                for t, s in zip(r.tokens, r.surprisal_bits)
            ]

        return {
            "rows": rows,
            "clean": a.text,
            "corrupt": b.text,
            "clean_surprisal": surprisal(a),
            "corrupt_surprisal": surprisal(b),
            "attention_difference": {
                "layer": self.layer_spin.value(),
                "head": self.head_spin.value(),
                "matrix": self.diff,
            },
        }
