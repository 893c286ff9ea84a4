"""Redrawing only what changed: a number changing in one panel repaints that panel's widgets, not the window."""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication, QStackedWidget

from explainer.runtime.controller import Controller, engine_factory
from explainer.ui.main_window import MainWindow


class Paints(QObject):
    def __init__(self, *widgets):
        super().__init__()
        self.count = {w: 0 for w in widgets}
        for w in widgets:
            w.installEventFilter(self)

    def eventFilter(self, obj, event):
        if event.type() == QEvent.Paint and obj in self.count:
            self.count[obj] += 1
        return False


def settle(qtbot) -> None:
    for _ in range(5):
        QApplication.processEvents()
        qtbot.wait(20)


def shown_window(qtbot) -> MainWindow:
    controller = Controller(engine_factory(demo=True))
    w = MainWindow(controller, text="The cat sat")
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    controller.start()
    qtbot.waitUntil(lambda: w.result is not None and not controller.busy, timeout=20000)
    settle(qtbot)
    return w


def test_a_label_changing_in_one_panel_does_not_repaint_the_tabs_or_the_other_panels(qtbot, temp_cache):
    w = shown_window(qtbot)
    try:
        label = w.next_token.summary
        assert label.isVisible() and label.wordWrap()
        paints = Paints(label, w.teach.tabBar(), w.tokens, w.attention)
        label.setText(label.text() + " A longer paragraph now, so that the label asks for a new layout.")
        settle(qtbot)
        assert paints.count[label] >= 1  # the change itself is drawn
        assert paints.count[w.teach.tabBar()] == 0
        assert paints.count[w.tokens] == 0 and paints.count[w.attention] == 0
    finally:
        if shiboken6.isValid(w):
            w.close()


def test_the_tabs_are_laid_out_again_when_what_they_depend_on_changes(qtbot, temp_cache):
    w = shown_window(qtbot)
    try:
        stack = w.teach.findChild(QStackedWidget, "qt_tabwidget_stackedwidget")
        top = stack.geometry().top()
        assert top > 0  # under the tab bar
        w.teach.tabBar().hide()
        settle(qtbot)
        assert stack.geometry().top() < top  # the pages take the bar's room
        w.teach.tabBar().show()
        settle(qtbot)
        assert stack.geometry().top() == top
    finally:
        if shiboken6.isValid(w):
            w.close()


def test_a_new_result_is_drawn_in_one_pass(qtbot, temp_cache):
    """A typed character's result is laid out before it is drawn: the labels it changes and the splitters
    around the panels are painted once, not again after a layout that follows the drawing."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QTextCursor

    w = shown_window(qtbot)
    try:
        summary, chain = w.next_token.summary, w.tokens.chain
        shown: list = []
        w.resultShown.connect(shown.append)
        w.editor.moveCursor(QTextCursor.End)
        for typed in ("The cat sats", "The cat satst"):  # the first keystroke also meets the map's axes arriving
            paints = Paints(summary, chain, w.live.hsplit, w.live.left)
            before = summary.text()
            qtbot.keyClick(w.editor, typed[-1], Qt.NoModifier)
            qtbot.waitUntil(lambda typed=typed: bool(shown) and shown[-1].text == typed, timeout=20000)
            qtbot.waitUntil(lambda: w.embeddings._axes() is not None, timeout=20000)
            settle(qtbot)
        assert summary.text() != before  # the label changed …
        assert paints.count[summary] == 1  # … and is drawn once
        assert paints.count[chain] <= 1
        assert paints.count[w.live.hsplit] <= 1 and paints.count[w.live.left] <= 1
    finally:
        if shiboken6.isValid(w):
            w.close()


def test_every_widget_drawn_in_a_window_is_drawn_in_a_pass_the_window_is_told_of(qtbot):
    """``explainer bench`` knows a picture is drawn when an event-loop pass brings the window no repaint pass
    (an UpdateRequest): a changed label and a changed plot (a graphics scene, which draws at once) each bring one."""
    import numpy as np

    from explainer.bench_window import paint_counter

    w = shown_window(qtbot)
    try:
        passes = paint_counter(QEvent.UpdateRequest)
        w.installEventFilter(passes)
        heatmap = w.panels["attention"].heatmap
        label = w.panels["next_token"].summary
        drawn = Paints(heatmap.viewport(), label)
        settle(qtbot)
        matrix = np.tril(np.full((3, 3), 0.5, np.float32))
        for change, widget in (
            (lambda: label.setText("another <b>sentence</b>"), label),
            (lambda: heatmap.set_matrix(matrix, list("abc")), heatmap.viewport()),
        ):
            before_passes, before_paints = passes.count, drawn.count[widget]
            change()
            QApplication.processEvents()
            assert drawn.count[widget] > before_paints
            assert passes.count > before_passes
    finally:
        if shiboken6.isValid(w):
            w.close()
