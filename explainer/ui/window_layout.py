"""How the window shares its height between the editor and the views, and its splitters saved and restored. The
live panels' own rule is ``ui.live_area``."""

from __future__ import annotations

import math

from PySide6.QtCore import QByteArray, QEvent, QObject

EDITOR_LINES = 2  # the editor's height in the normal window (more lines scroll; drag the handle for more)


def editor_height(window, lines: int) -> int:
    """The editor's part of the window for ``lines`` lines of text (its frame, margins and the bars under it)."""
    ed = window.editor
    fm = ed.fontMetrics()
    frame = 2 * ed.frameWidth() + 2 * ed.document().documentMargin()
    m = window.vsplit.widget(0).layout().contentsMargins()
    return int(lines * fm.lineSpacing() + frame + m.top() + m.bottom() + under_editor(window) + 2)


def under_editor(window) -> int:
    """The height the shown bars under the editor take (the loading banner, the knock-out bar), with spacing: a bar
    whose text wraps at the window's width is measured at that width."""
    top = window.vsplit.widget(0)
    lay = top.layout()
    m = lay.contentsMargins()
    width = top.width() - m.left() - m.right()

    def height(w) -> int:
        return w.heightForWidth(width) if width > 0 and w.hasHeightForWidth() else w.sizeHint().height()

    items = (lay.itemAt(i).widget() for i in range(lay.count()))
    return sum(
        height(w) + lay.spacing() for w in items if w is not None and w is not window.editor and not w.isHidden()
    )


class EditorRoom(QObject):
    """Gives the editor its lines again when a bar under it appears, goes or changes its height (a scene that knocks
    heads out shows the knock-out bar: without this the bar took its room from the editor's second line)."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self._under: int | None = None
        window.vsplit.widget(0).installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.LayoutRequest:
            under = under_editor(self.window)
            if under != self._under:
                self._under = under
                presenter = getattr(self.window, "presenter", None)
                if presenter is not None and presenter.active:
                    presenter.fit_editor()
                elif presenter is not None:
                    fit_vsplit(self.window)
        return False


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
