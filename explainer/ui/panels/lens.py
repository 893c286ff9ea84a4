"""Logit lens panel: for the selected position, what each layer would predict if the model stopped there, and
the nearest neighbours of the selected token in the input-embedding table.

Rows are layers 0..L (0: the input embedding; l: the residual stream after layer l, numbered from 1 like the
attention panel), columns the top-5 tokens with probability shading, and the rank of the token that actually
follows. Computed by ``core.lens`` from the result (no model call), cached per (result, position).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QSplitter,
    QStyledItemDelegate,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from explainer.core import lens as core_lens
from explainer.ui import theme as th
from explainer.ui.panels import _teach as tc
from explainer.ui.panels.base import Panel

TOP_K = 5
N_NEIGHBOURS = 12
MARK_ROLE = Qt.UserRole + 2  # True on cells holding the actual next token
RIGHT_ROLE = Qt.UserRole + 3  # the right-aligned part of a cell (its percentage)


class _CellDelegate(QStyledItemDelegate):
    """Token text on the left (elided when narrow), the percentage (``RIGHT_ROLE``) on the right, an optional bar
    (``BAR_ROLE``) and an outline on cells whose ``MARK_ROLE`` is set (the token that actually comes next)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.bar_colour = th.ACCENTS[0]
        self.text_colour = "#000000"

    def paint(self, painter: QPainter, option, index) -> None:
        right = index.data(RIGHT_ROLE)
        if right is None:
            super().paint(painter, option, index)
            return
        painter.save()
        rect = QRectF(option.rect)
        bg = index.data(Qt.BackgroundRole)
        if bg is not None:
            painter.fillRect(rect, bg)
        frac = index.data(tc.BAR_ROLE)
        if frac is not None and rect.width() * float(frac) >= 1:
            c = QColor(self.bar_colour)
            c.setAlpha(150)
            painter.fillRect(
                QRectF(rect.left() + 3, rect.top() + 4, (rect.width() - 6) * float(frac), rect.height() - 8), c
            )
        font = index.data(Qt.FontRole) or option.font
        painter.setFont(font)
        fg = index.data(Qt.ForegroundRole)
        painter.setPen(fg.color() if fg is not None else QColor(self.text_colour))
        fm = QFontMetricsF(font)
        inner = rect.adjusted(5, 0, -5, 0)
        rw = fm.horizontalAdvance(right)
        painter.drawText(inner, Qt.AlignRight | Qt.AlignVCenter, right)
        left = fm.elidedText(str(index.data(Qt.DisplayRole) or ""), Qt.ElideRight, max(0.0, inner.width() - rw - 6))
        painter.drawText(inner, Qt.AlignLeft | Qt.AlignVCenter, left)
        if index.data(MARK_ROLE):
            painter.setPen(QPen(QColor(th.HIGHLIGHT), 2.5))
            painter.drawRect(rect.adjusted(1.5, 1.5, -1.5, -1.5))
        painter.restore()


class LensPanel(tc.TokenLabels, Panel):
    title = "Logit lens: predictions layer by layer"
    explanation = (
        "What would the model predict if it stopped after each layer? Every row takes the selected token's "
        "vector after that layer (row 0: its input embedding) through the model's own final normalisation and "
        "output layer — what the last layer's vector goes through — and shows the five most likely next tokens, "
        "shaded by probability. The last row is the model's real prediction. Early layers were not trained to be "
        "read this way, so their guesses are rough; watch the answer form. The outlined cells and the last "
        "column follow the token that actually comes next. <b>Neighbours</b>: the tokens whose input embeddings "
        "point in the most similar direction (cosine similarity): similar tokens sit close together."
    )

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.lens: core_lens.LensResult | None = None
        self._lens_key = None
        self._scrolled_for = None
        self._embedding_table: np.ndarray | None = None
        self._nb_key = None
        self._neighbours: list[tuple[int, float]] = []

        self.info = QLabel()
        self.info.setTextFormat(Qt.RichText)
        self.info.setWordWrap(True)
        self.body.addWidget(self.info)
        self.table = QTableWidget(0, TOP_K + 1)
        tc.style_table(self.table, tc.TABLE_FONT_PT - 1)
        self.cells = _CellDelegate(self.table)
        self.table.setItemDelegate(self.cells)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.Stretch)
        hh.setMinimumSectionSize(70)
        hh.setSectionResizeMode(TOP_K, QHeaderView.Fixed)
        self.table.setColumnWidth(
            TOP_K, int(QFontMetricsF(self.table.font()).horizontalAdvance("#48,888  <0.1 %")) + 24
        )
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.table.setMinimumWidth(480)
        self.nb_title = QLabel()
        self.nb_title.setTextFormat(Qt.RichText)
        self.nb_title.setWordWrap(True)
        self.nb_table = QTableWidget(0, 2)
        tc.style_table(self.nb_table)
        self.nb_table.setHorizontalHeaderLabels(["token", "cosine"])
        self.nb_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeToContents)
        self.nb_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.Stretch)
        self.nb_table.verticalHeader().setVisible(False)
        self.nb_table.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.nb_bars = tc.BarDelegate(th.ACCENTS[2], self.nb_table)
        self.nb_table.setItemDelegateForColumn(1, self.nb_bars)
        side = QWidget()
        sl = QVBoxLayout(side)
        sl.setContentsMargins(4, 0, 0, 0)
        sl.addWidget(self.nb_title)
        sl.addWidget(self.nb_table, 1)
        side.setMinimumWidth(200)
        split = QSplitter(Qt.Horizontal)
        split.addWidget(self.table)
        split.addWidget(side)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        self.body.addWidget(split, 1)

    # --- API ----------------------------------------------------------------------------------------------------
    def set_embedding_table(self, table: np.ndarray) -> None:
        """The input-embedding table ``[V, D]`` for the neighbours (default: the result's unembedding when it is
        tied to the input embeddings, as in SmolLM2)."""
        self._embedding_table = table
        self._nb_key = None
        self.refresh()

    @property
    def position(self) -> int:
        return self.focus_position

    def select_position(self, position: int) -> None:
        super().select_position(position)
        self.refresh()

    def set_theme(self, theme: th.Theme) -> None:
        self.nb_bars.colour = th.ACCENTS[2]
        super().set_theme(theme)

    def top_token(self, layer: int) -> int:
        """The lens's best guess at ``layer`` (0..L) for the shown position."""
        return int(self.lens.top_ids[layer, 0])

    # --- drawing --------------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        r = self.result
        if r is None or r.n_tokens == 0:
            self.lens = None
            self.table.setRowCount(0)
            self.nb_table.setRowCount(0)
            self.info.setText("<i>Waiting for the model…</i>")
            self.nb_title.setText("")
            return
        pos = self.position
        if r.weights is None:
            self.lens = None
            self.table.setRowCount(0)
            self.info.setText("This result carries no model weights (the final normalisation is needed).")
        else:
            key = (id(r), pos)
            if key != self._lens_key:
                self.lens, self._lens_key = core_lens.logit_lens(r, pos, TOP_K), key
            self._fill_table()
        self._fill_neighbours()

    def _fill_table(self) -> None:
        r, lz, pos = self.result, self.lens, self.position
        L = lz.n_rows - 1
        tok = tc.esc(tc.position_label(r, pos))
        if lz.next_id >= 0:
            nxt = tc.esc(self.token_text(lz.next_id))
            self.info.setText(
                f"After “<b>{tok}</b>” (position {pos}) the text continues with “<b>{nxt}</b>”: outlined where it "
                f"appears; the last column gives its rank (1 = top guess) and probability at each layer. The model's "
                f"own answer ranks it <b>{int(lz.next_rank[-1])}</b>."
            )
            last = f"rank of “{self.token_text(lz.next_id)}”"
        else:
            self.info.setText(
                f"After “<b>{tok}</b>” (position {pos}, the last token): what comes next is not in the "
                "text yet. Click another token to follow a known next token."
            )
            last = "next token"
        self.table.setColumnCount(TOP_K + 1)
        self.table.setHorizontalHeaderLabels([f"guess {i + 1}" for i in range(TOP_K)] + [last])
        self.table.setRowCount(L + 1)
        self.table.setVerticalHeaderLabels(
            ["input embedding"] + [f"after layer {i}" for i in range(1, L)] + [f"after layer {L} (output)"]
        )
        bg = self.theme.background
        base = th.ACCENTS[5] if self.theme.is_dark else th.ACCENTS[0]
        bold = QFont(self.table.font())
        bold.setBold(True)
        for row in range(L + 1):
            for c in range(TOP_K):
                tid, p = int(lz.top_ids[row, c]), float(lz.top_probs[row, c])
                item = QTableWidgetItem(self.token_text(tid))
                item.setData(RIGHT_ROLE, tc.percent(p))
                fill = tc.shade(base, min(1.0, p**0.5) * 0.85, bg)  # √p: small probabilities stay visible
                item.setBackground(fill)
                item.setForeground(QColor(th.text_on(fill.name())))
                item.setToolTip(f"id {tid}: probability {p:.4f} if the model stopped here")
                if tid == lz.next_id:
                    item.setData(MARK_ROLE, True)
                    item.setFont(bold)
                self.table.setItem(row, c, item)
            if lz.next_id >= 0:
                rank, p = int(lz.next_rank[row]), float(lz.next_prob[row])
                item = QTableWidgetItem(f"#{rank:,}")
                item.setData(RIGHT_ROLE, tc.percent(p))
                item.setData(tc.BAR_ROLE, float(p))
                if rank == 1:
                    item.setFont(bold)
            else:
                item = QTableWidgetItem("—")
            item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
            self.table.setItem(row, TOP_K, item)
        self.cells.bar_colour, self.cells.text_colour = base, self.theme.text
        if self._scrolled_for != self._lens_key:  # a new position: show the last layers, where the answer forms
            self._scrolled_for = self._lens_key
            QTimer.singleShot(0, self.table, self.table.scrollToBottom)  # after layout; dropped if deleted

    def _fill_neighbours(self) -> None:
        r, pos = self.result, self.position
        table = self._embedding_table if self._embedding_table is not None else core_lens.embedding_table_of(r)
        tok_id = int(r.ids[pos])
        label = tc.esc(tc.position_label(r, pos))
        if table is None:
            self.nb_title.setText("<b>Neighbours</b>: the input-embedding table is not available.")
            self.nb_table.setRowCount(0)
            return
        key = (id(table), tok_id)
        if key != self._nb_key:
            self._neighbours, self._nb_key = core_lens.nearest_neighbours(table, tok_id, N_NEIGHBOURS), key
        self.nb_title.setText(f"<b>Neighbours of “{label}”</b><br>closest input embeddings (cosine similarity)")
        self.nb_table.setRowCount(len(self._neighbours))
        for i, (tid, cos) in enumerate(self._neighbours):
            self.nb_table.setItem(i, 0, QTableWidgetItem(self.token_text(tid)))
            item = QTableWidgetItem(f"{cos:.2f}")
            item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
            item.setData(tc.BAR_ROLE, max(0.0, float(cos)))
            item.setToolTip(f"id {tid}")
            self.nb_table.setItem(i, 1, item)

    # --- scenes and export -----------------------------------------------------------------------------------
    def export_data(self) -> dict:
        lz = self.lens
        if lz is None:
            return {"rows": []}
        rows = []
        for layer in range(lz.n_rows):
            row = {"layer": layer}
            for c in range(lz.top_ids.shape[1]):
                row[f"guess_{c + 1}_text"] = self.token_string(int(lz.top_ids[layer, c]))
                row[f"guess_{c + 1}_label"] = self.token_text(int(lz.top_ids[layer, c]))
                row[f"p_{c + 1}"] = float(lz.top_probs[layer, c])
            if lz.next_id >= 0:
                row["next_token_rank"], row["next_token_p"] = int(lz.next_rank[layer]), float(lz.next_prob[layer])
            rows.append(row)
        return {
            "rows": rows,
            "position": lz.position,
            "next_token_text": self.token_string(lz.next_id) if lz.next_id >= 0 else None,
            "next_token_label": self.token_text(lz.next_id) if lz.next_id >= 0 else None,
        }

    def caption_extra(self) -> str:
        r, pos = self.result, self.position
        return f"logit lens after “{tc.position_label(r, pos)}” (position {pos})" if pos >= 0 else "logit lens"


if __name__ == "__main__":
    from explainer.ui.panels._run_alone import run_alone

    raise SystemExit(run_alone(LensPanel, "The capital of France is Paris. The cat sat on the"))
