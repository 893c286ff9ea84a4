"""The status bar's passing message: shortened with "…" to the room its permanent widgets leave, never cut."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QMainWindow, QStatusBar

from explainer.ui.widgets.status_bar import StatusBar

LONG = (
    "Induction heads copy a pattern — Layer 19, head 7 is the model's strongest induction head. In the second copy "
    "each token looks at the token after its earlier copy."
)


def _window(qtbot, width: int):
    w = QMainWindow()
    qtbot.addWidget(w)
    bar = StatusBar(w)
    w.setStatusBar(bar)
    labels = [QLabel("40 tokens"), QLabel("update 231 ms (model 230 ms)")]
    for label in labels:
        bar.addPermanentWidget(label)
    w.resize(width, 300)
    w.show()
    qtbot.waitExposed(w)
    return w, bar, labels


def _drawn(bar: StatusBar) -> str:
    return QStatusBar.currentMessage(bar)  # what Qt draws


def test_a_long_message_ends_in_an_ellipsis_before_the_permanent_widgets(qtbot):
    w, bar, labels = _window(qtbot, 700)
    bar.showMessage(LONG, 5000)
    drawn = _drawn(bar)
    assert drawn.endswith("…") and LONG.startswith(drawn[:-1])
    assert bar.fontMetrics().horizontalAdvance(drawn) <= bar.message_room()
    assert bar.message_room() < labels[0].x()  # the room ends where the first permanent widget starts
    assert bar.currentMessage() == LONG and bar.toolTip() == LONG


def test_a_message_that_fits_is_shown_whole_without_a_tooltip(qtbot):
    w, bar, _labels = _window(qtbot, 700)
    bar.showMessage("Scene saved.", 5000)
    assert _drawn(bar) == "Scene saved." == bar.currentMessage() and bar.toolTip() == ""


def test_more_room_shows_more_of_the_message_and_less_room_less(qtbot):
    w, bar, labels = _window(qtbot, 900)
    bar.showMessage(LONG)
    before = _drawn(bar)
    labels[1].setText("update 1234567 ms (model 1234567 ms), a longer permanent text")  # the room shrinks
    qtbot.waitUntil(lambda: _drawn(bar) != before)
    assert len(_drawn(bar)) < len(before) and bar.fontMetrics().horizontalAdvance(_drawn(bar)) <= bar.message_room()
    w.resize(2000, 300)  # and grows
    qtbot.waitUntil(lambda: _drawn(bar) == LONG)
    assert bar.toolTip() == ""


def test_the_message_still_goes_after_its_time_and_its_tooltip_with_it(qtbot):
    w, bar, _labels = _window(qtbot, 700)
    bar.showMessage(LONG, 300)
    w.resize(900, 300)  # shortened again: the time left is kept, not started anew
    qtbot.waitUntil(lambda: bar.currentMessage() == "", timeout=2000)
    assert _drawn(bar) == "" and bar.toolTip() == ""
