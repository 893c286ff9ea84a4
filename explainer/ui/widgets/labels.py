"""Labels: one that shortens its text with … when it has too little room (the whole text in its tooltip: an
intended elision, never a clipped word), and a box that keeps the window's layout still while a label's text
changes at every keystroke."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QWidget
from superqt import QElidingLabel


class FullTextLabel(QElidingLabel):
    """``short``: a whole shorter wording (a title's part before its colon) shown instead of an elided text when
    the full one does not fit; shorter still, that is elided too."""

    _short = ""  # (QElidingLabel's constructor already sets a text)

    def __init__(self, text: str = "", parent=None, *, min_text: str = "…", short: str = ""):
        super().__init__("", parent)
        self._min_text = min_text  # the label never gets narrower than this text
        self._short = short
        self._full = ""
        self.setText(text)

    def setText(self, text: str) -> None:
        self._full = text
        self.setToolTip(text)
        self._choose()

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
