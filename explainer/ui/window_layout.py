"""How the window shares its height between the editor and the views, and its splitters saved and restored. The
live panels' own rule is ``ui.live_area``."""

from __future__ import annotations

import math

from PySide6.QtCore import QByteArray

EDITOR_LINES = 2  # the editor's height in the normal window (more lines scroll; drag the handle for more)


def editor_height(window, lines: int) -> int:
    """The editor's part of the window for ``lines`` lines of text (its frame, margins and the banner)."""
    ed = window.editor
    fm = ed.fontMetrics()
    frame = 2 * ed.frameWidth() + 2 * ed.document().documentMargin()
    top = window.vsplit.widget(0)
    m = top.layout().contentsMargins()
    banner = window.banner.sizeHint().height() + top.layout().spacing() if window.banner.isVisible() else 0
    return int(lines * fm.lineSpacing() + frame + m.top() + m.bottom() + banner + 2)


def fit_editor(window, max_lines: int) -> None:
    """Make the editor as tall as its text needs, up to ``max_lines`` lines (whole lines only)."""
    ed = window.editor
    fm, width = ed.fontMetrics(), max(1, ed.viewport().width() - 8)
    block, lines = ed.document().begin(), 0
    while block.isValid() and lines < max_lines:
        lines += max(1, math.ceil(fm.horizontalAdvance(block.text()) / width))
        block = block.next()
    need = editor_height(window, min(max(lines, 1), max_lines))
    total = sum(window.vsplit.sizes())
    if total > need:
        window.vsplit.setSizes([need, total - need])


def fit_vsplit(window) -> None:
    """The editor at EDITOR_LINES lines, the views the rest (while the sizes are the rule's, not the user's)."""
    if window.layout_auto and not window.presenter.active:
        total = sum(window.vsplit.sizes()) or window.height()
        need = editor_height(window, EDITOR_LINES)
        window.vsplit.setSizes([need, max(1, total - need)])


def save_splitters(window) -> dict:
    """Every splitter's state (the editor's and the live panels')."""
    return {k: sp.saveState() for k, sp in window.splitters.items()}


def restore_splitters(window, states: dict) -> None:
    for k, sp in window.splitters.items():
        st = states.get(k)
        if isinstance(st, QByteArray):
            sp.restoreState(st)
