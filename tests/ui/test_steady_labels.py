"""A label in a SteadyBox: a new text that takes the same room does not lay the window out again; one that needs
more room does, and the label gets it; the box is shown and hidden with its label."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QApplication, QLabel, QVBoxLayout, QWidget

from explainer.ui.widgets.labels import SteadyBox


class LayoutRequests(QObject):
    def __init__(self, widget):
        super().__init__()
        self.count = 0
        widget.installEventFilter(self)

    def eventFilter(self, obj, event):
        if event.type() == QEvent.LayoutRequest:
            self.count += 1
        return False


def settle(qtbot) -> None:
    for _ in range(3):
        QApplication.processEvents()
        qtbot.wait(10)


def column(qtbot, label: QLabel):
    outer = QWidget()
    qtbot.addWidget(outer)
    lay = QVBoxLayout(outer)
    box = SteadyBox(label)
    lay.addWidget(box)
    below = QLabel("below")
    lay.addWidget(below)
    lay.addStretch(1)
    outer.resize(300, 400)
    outer.show()
    qtbot.waitExposed(outer)
    settle(qtbot)
    return outer, box, below


def test_a_new_text_of_the_same_size_does_not_lay_out_the_parent(qtbot):
    label = QLabel("<b>entropy 3.21 bits</b>")
    label.setTextFormat(Qt.RichText)
    label.setWordWrap(True)
    outer, box, below = column(qtbot, label)
    requests = LayoutRequests(outer)
    label.setText("<b>entropy 3.47 bits</b>")
    settle(qtbot)
    assert requests.count == 0
    assert label.geometry() == box.rect()


def test_a_text_needing_more_lines_gets_them(qtbot):
    label = QLabel("one line")
    label.setWordWrap(True)
    outer, box, below = column(qtbot, label)
    one_line, top_below = box.height(), below.geometry().top()
    requests = LayoutRequests(outer)
    label.setText(" ".join(["a longer paragraph that wraps"] * 8))
    settle(qtbot)
    assert requests.count >= 1
    assert box.height() == label.heightForWidth(box.width()) > one_line
    assert label.height() == box.height()
    assert below.geometry().top() > top_below  # what follows moved down to make room


def test_a_wider_one_line_text_asks_for_its_width(qtbot):
    label = QLabel("12 tokens")
    outer, box, _below = column(qtbot, label)
    label.setText("12 tokens · 64 characters · 5.33 characters/token")
    settle(qtbot)
    assert box.sizeHint() == label.sizeHint()
    assert box.width() >= label.sizeHint().width()


def test_the_box_is_hidden_and_shown_with_its_label(qtbot):
    label = QLabel("shown")
    outer, box, below = column(qtbot, label)
    top_below = below.geometry().top()
    label.hide()
    settle(qtbot)
    assert box.isHidden()
    assert below.geometry().top() < top_below  # the box gave its room away
    label.show()
    settle(qtbot)
    assert box.isVisible() and label.isVisible()
    assert below.geometry().top() == top_below


def test_a_title_too_long_for_its_room_shows_its_short_wording_whole(qtbot):
    from PySide6.QtGui import QFontMetrics

    from explainer.ui.widgets.labels import FullTextLabel

    title = "Embeddings: a 2-D map of the token vectors"
    label = FullTextLabel(title, min_text="Embeddings…", short="Embeddings")
    qtbot.addWidget(label)
    fm = QFontMetrics(label.font())
    label.resize(fm.horizontalAdvance(title) + 20, 30)
    label.show()
    assert label.text() == title and label.toolTip() == title
    label.resize(fm.horizontalAdvance("Embeddings: a 2-D") + 10, 30)
    assert label.text() == "Embeddings"  # whole, no ellipsis
    assert label.sizeHint().width() >= fm.horizontalAdvance(title)  # still asks for the whole title
    assert label.toolTip() == title
    label.resize(fm.horizontalAdvance(title) + 20, 30)
    assert label.text() == title
    label.setText("Tokens: how the text is split")  # a new text is fitted at once
    assert label.text() == "Tokens: how the text is split"


def test_a_label_with_margins_is_elided_to_the_room_inside_them_so_its_ellipsis_shows(qtbot):
    """The token counts sit between margins in the title row: elided to the whole width, their end (the "…") fell in
    the right margin and was cut off ("3.42 character")."""
    from PySide6.QtGui import QFontMetrics
    from PySide6.QtWidgets import QLabel

    from explainer.ui.widgets.labels import FullTextLabel

    text = "40 tokens (+ start) · 137 characters · 3.42 characters/token"
    label = FullTextLabel(text)
    label.setContentsMargins(12, 0, 12, 0)
    qtbot.addWidget(label)
    fm = QFontMetrics(label.font())
    label.resize(fm.horizontalAdvance(text) // 2 + 24, 30)
    label.show()
    shown = QLabel.text(label)  # what is drawn
    assert shown.endswith("…") and text.startswith(shown[:-1])
    assert fm.horizontalAdvance(shown) <= label.contentsRect().width()
    assert label.text() == text and label.toolTip() == text
    label.resize(fm.horizontalAdvance(text) + 24 + 4, 30)
    assert QLabel.text(label) == text


def test_a_title_given_its_own_text_again_is_left_as_it_is(qtbot):
    """Panels set their counts at every result, mostly unchanged: nothing is measured or set again then; a tooltip
    set meanwhile is replaced by the text's, as by any setText."""
    from explainer.ui.widgets.labels import FullTextLabel

    label = FullTextLabel("3 tokens · 12 characters")
    qtbot.addWidget(label)
    label.show()
    changes = []

    class Watch(QObject):
        def eventFilter(self, obj, event):
            if event.type() in (QEvent.ToolTipChange, QEvent.LayoutRequest):
                changes.append(event.type())
            return False

    watch = Watch()
    label.installEventFilter(watch)
    settle(qtbot)
    changes.clear()
    label.setText("3 tokens · 12 characters")
    settle(qtbot)
    assert changes == []
    label.setToolTip("something else")
    label.setText("3 tokens · 12 characters")
    assert label.toolTip() == "3 tokens · 12 characters"
    label.setText("4 tokens · 13 characters")
    assert label.text() == label.toolTip() == "4 tokens · 13 characters"


LIVE_TEXTS = [
    "After “<b>…the cat sat on the</b>” (at the end): entropy <b>5.03 bits</b> (as uncertain as a choice among "
    "32.6 equally likely tokens) → sampling <b>5.03 bits</b>, 49,152 tokens left to choose from.",
    "The model expected “<b style='color:#D55E00'>·mat</b>” (41.2 %), rank 1 of 49,152.<br>The 6 bars hold "
    "64.1 % of the model's probability; the other 49,146 tokens share 35.9 %.",
    "<span style='color:#009E73'>■</span> Next sample (Ctrl+G): “<b>·dog</b>”, draw 3 of seed 7.",
    "<i>Waiting for the model…</i>",
    "short",
    "",
]


def test_a_live_text_label_measures_sizes_and_draws_as_a_qlabel(qtbot):
    """The label that keeps one layout of its rich text tells the same height at every width, the same size hints,
    and draws the same pixels as a QLabel with rich text and word wrap, before and after a font change."""
    from PySide6.QtGui import QFont

    from explainer.ui.widgets.labels import LiveTextLabel
    from tests.pixels import image_array

    live, plain = LiveTextLabel(), QLabel()
    plain.setTextFormat(Qt.RichText)
    plain.setWordWrap(True)
    for w in (live, plain):
        qtbot.addWidget(w)
    big = QFont(live.font())
    big.setPointSizeF(big.pointSizeF() * 1.8)
    for font in (None, big):
        for w in (live, plain):
            if font is not None:
                w.setFont(font)
        for text in LIVE_TEXTS:
            live.setText(text)
            plain.setText(text)
            assert live.text() == plain.text() == text
            for width in (90, 233, 420, 900):
                assert live.heightForWidth(width) == plain.heightForWidth(width), (text, width)
            assert live.sizeHint() == plain.sizeHint() and live.minimumSizeHint() == plain.minimumSizeHint()
            for w in (live, plain):
                w.resize(300, plain.heightForWidth(300) + 10)  # (a little taller: centred the same way)
            a, b = image_array(live), image_array(plain)
            assert a.shape == b.shape and (a != b).any(-1).mean() < 0.002, text
    assert live.text() == LIVE_TEXTS[-1]
