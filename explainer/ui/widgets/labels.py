"""Labels: one that shortens its text with … when it has too little room (the whole text in its tooltip: an
intended elision, never a clipped word), and a box that keeps the window's layout still while a label's text
changes at every keystroke."""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QRectF, QSize, Qt
from PySide6.QtGui import QAbstractTextDocumentLayout, QFontMetrics, QPainter, QPalette, QTextDocument, QTextOption
from PySide6.QtWidgets import QLabel, QWidget
from superqt import QElidingLabel


class FullTextLabel(QElidingLabel):
    """``short``: a whole shorter wording (a title's part before its colon) shown instead of an elided text when
    the full one does not fit; shorter still, that is elided too."""

    _short = _full = ""  # (QElidingLabel's constructor already sets a text)

    def __init__(self, text: str = "", parent=None, *, min_text: str = "…", short: str = ""):
        super().__init__("", parent)
        self._min_text = min_text  # the label never gets narrower than this text
        self._short = short
        self._full = ""
        self.setText(text)

    def setText(self, text: str) -> None:
        if text == self._full and text == self.toolTip():
            return  # (asked again at every result: the same text stays as shown)
        self._full = text
        self.setToolTip(text)
        self._choose()

    def setContentsMargins(self, *margins) -> None:
        super().setContentsMargins(*margins)
        m = self.contentsMargins()
        self.setEllipsesWidth(2 + m.left() + m.right())  # elided to the room inside the margins, not the width

    def _choose(self) -> None:
        """Give the eliding label the full text, or the short one when the full one does not fit."""
        shown = self._full
        if self._short:
            m = self.contentsMargins()
            room = self.width() - m.left() - m.right()
            if QFontMetrics(self.font()).horizontalAdvance(self._full) > room:
                shown = self._short
        if shown != super().text():
            super().setText(shown)

    def resizeEvent(self, event) -> None:
        self._choose()
        super().resizeEvent(event)

    def changeEvent(self, event) -> None:
        if event.type() == QEvent.FontChange:
            self._choose()
        super().changeEvent(event)

    def sizeHint(self) -> QSize:
        fm = QFontMetrics(self.font())
        m = self.contentsMargins()
        return QSize(fm.horizontalAdvance(self._full) + 4 + m.left() + m.right(), super().minimumSizeHint().height())

    def minimumSizeHint(self) -> QSize:
        fm = QFontMetrics(self.font())
        m = self.contentsMargins()
        return QSize(
            fm.horizontalAdvance(self._min_text) + 4 + m.left() + m.right(), super().minimumSizeHint().height()
        )


class SteadyBox(QWidget):
    """Holds one widget (a label whose text changes with every result) and takes its room in a layout, so that
    the layout around it is done again only when the child's size hints change.

    A label asks its parent's layout to be done again at every new text, even when it takes the same room; that
    layout request travels up through the panel and the splitters to the window, and everything it passes is laid
    out and repainted (the whole window, for a number in one panel). Here the request stops: the box compares the
    child's size hints (and its height at the box's width) with those the layout last used and passes the request
    on only when they differ. The child is shown and hidden with its box."""

    def __init__(self, child: QWidget, parent: QWidget | None = None):
        super().__init__(parent)
        self.child = child
        child.setParent(self)
        self.setSizePolicy(child.sizePolicy())
        if child.isHidden() and child.testAttribute(Qt.WA_WState_ExplicitShowHide):
            self.hide()
        self._hints: tuple | None = None  # what the layout around the box last used
        child.installEventFilter(self)

    def _measure(self) -> tuple:
        """What the layout around the box uses: a word-wrapped label's height at the box's width (its widths
        are those of its longest word and of an ideal paragraph, which a column of controls never narrows to, and
        measuring them lays a rich text out three more times), else its size hints."""
        c = self.child
        if c.hasHeightForWidth():
            return c.heightForWidth(self.width()), c.maximumSize().toTuple()
        return c.sizeHint().toTuple(), c.minimumSizeHint().toTuple(), c.maximumSize().toTuple()

    def sizeHint(self) -> QSize:
        return self.child.sizeHint()

    def minimumSizeHint(self) -> QSize:
        return self.child.minimumSizeHint()

    def hasHeightForWidth(self) -> bool:
        return self.child.hasHeightForWidth()

    def heightForWidth(self, width: int) -> int:
        return self.child.heightForWidth(width)

    def resizeEvent(self, event) -> None:
        self.child.setGeometry(self.rect())
        self._hints = self._measure()
        super().resizeEvent(event)

    def event(self, event) -> bool:
        if event.type() == QEvent.LayoutRequest:
            hints = self._measure()
            if hints != self._hints:
                self._hints = hints
                self.setSizePolicy(self.child.sizePolicy())
                self.updateGeometry()
            return True
        return super().event(event)

    def eventFilter(self, obj, event) -> bool:
        if obj is self.child:
            kind = event.type()
            if kind == QEvent.ShowToParent and self.isHidden():
                self.show()
            elif kind == QEvent.HideToParent and not self.isHidden():
                self.hide()
        return False


class LiveTextLabel(QLabel):
    """A word-wrapped rich-text label whose text changes at every result (a sentence of numbers under a view).

    A QLabel lays its rich text out again to tell its height at a width, again for its size hints and again to
    draw it, at each new text. This one parses the text into one document laid out at the label's width, which
    both the height it tells (``heightForWidth``: what ``SteadyBox`` asks at every new text) and the drawing use.
    It reads, draws and sizes like a QLabel with ``Qt.RichText`` and word wrap: the QLabel's own text, which its
    size hints come from, follows only when a layout asks for them."""

    def __init__(self, text: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.setTextFormat(Qt.RichText)
        self.setWordWrap(True)
        self._doc = QTextDocument(self)
        self._doc.setUndoRedoEnabled(False)
        self._doc.setDocumentMargin(0)  # as a QLabel's
        option = QTextOption()
        option.setWrapMode(QTextOption.WordWrap)
        self._doc.setDefaultTextOption(option)
        self._doc.setDefaultFont(self.font())
        self._html = ""
        self._width = -1.0  # the width the document is laid out at (-1: not yet)
        self._label_text_stale = False  # QLabel's own text lags behind (see _sync)
        self.setText(text)

    def text(self) -> str:
        return self._html

    def setText(self, text: str) -> None:
        if text == self._html:
            return
        self._html = text
        self._doc.setHtml(text)
        self._label_text_stale = True
        self.updateGeometry()
        self.update()

    def _sync(self) -> None:
        """Give the QLabel its text: its size hints (longest word, ideal paragraph) are measured from it."""
        if self._label_text_stale:
            self._label_text_stale = False
            super().setText(self._html)

    def _laid_out_height(self, width: float) -> float:
        if width != self._width:
            self._doc.setTextWidth(max(width, 1.0))
            self._width = width
        return self._doc.size().height()

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        m = self.contentsMargins()
        return math.ceil(self._laid_out_height(width - m.left() - m.right())) + m.top() + m.bottom()

    def sizeHint(self) -> QSize:
        self._sync()
        return super().sizeHint()

    def minimumSizeHint(self) -> QSize:
        self._sync()
        return super().minimumSizeHint()

    def changeEvent(self, event) -> None:
        if event.type() in (QEvent.FontChange, QEvent.StyleChange):
            self._doc.setDefaultFont(self.font())
            self._width = -1.0
        super().changeEvent(event)

    def paintEvent(self, event) -> None:
        r = self.contentsRect()
        height = self._laid_out_height(r.width())
        top = r.top()
        align = self.alignment()
        if align & Qt.AlignBottom:
            top = r.bottom() + 1 - math.ceil(height)
        elif not align & Qt.AlignTop:  # a QLabel centres its text vertically unless told otherwise
            top = r.top() + (r.height() - math.ceil(height)) // 2  # whole pixels: text on a pixel row
        p = QPainter(self)
        p.translate(r.left(), top)
        ctx = QAbstractTextDocumentLayout.PaintContext()
        palette = QPalette(self.palette())
        palette.setCurrentColorGroup(QPalette.Active if self.isEnabled() else QPalette.Disabled)
        palette.setColor(QPalette.Text, palette.color(self.foregroundRole()))  # as a QLabel colours its text
        ctx.palette = palette
        ctx.clip = QRectF(event.rect()).translated(-r.left(), -top)
        self._doc.documentLayout().draw(p, ctx)
        p.end()
