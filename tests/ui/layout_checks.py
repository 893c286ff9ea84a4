"""Checks that a window is readable: nothing overlapping, clipped or cut short. Used by the layout tests (also in
a subprocess with ``QT_SCALE_FACTOR=2``), so it imports nothing from the test suite."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QAbstractSpinBox,
    QComboBox,
    QLabel,
    QMenu,
    QSplitterHandle,
    QWidget,
)
from superqt import QElidingLabel


def shown(root: QWidget) -> list[QWidget]:
    """Every widget under ``root`` that is on screen (visible, not a separate window, not empty)."""
    out = []
    for w in root.findChildren(QWidget):
        if w.isWindow() or isinstance(w, QMenu) or not w.isVisibleTo(root) or w.width() <= 0 or w.height() <= 0:
            continue
        out.append(w)
    return out


def _inside_scroll_content(w: QWidget) -> bool:
    """Inside what a scroll area or graphics view scrolls (its own geometry rules do not apply there)."""
    p = w.parentWidget()
    while p is not None:
        if isinstance(p, QAbstractScrollArea) and w is not p.verticalScrollBar() and w is not p.horizontalScrollBar():
            viewport = p.viewport()
            if viewport is not None and (w is viewport or viewport.isAncestorOf(w)):
                return True
        p = p.parentWidget()
    return False


def overlaps(root: QWidget) -> list[str]:
    """Pairs of sibling widgets whose rectangles overlap."""
    problems = []
    widgets = shown(root)
    by_parent: dict[int, list[QWidget]] = {}
    for w in widgets:
        if _inside_scroll_content(w) or isinstance(w, QSplitterHandle):
            continue
        if w.testAttribute(Qt.WA_TransparentForMouseEvents):
            continue  # drawn over the window on purpose (the keyboard's focus ring, a presenter notice)
        by_parent.setdefault(id(w.parentWidget()), []).append(w)
    for siblings in by_parent.values():
        for i, a in enumerate(siblings):
            for b in siblings[i + 1 :]:
                if a.geometry().intersected(b.geometry()).isEmpty():
                    continue
                problems.append(f"{_name(a)} overlaps {_name(b)}: {a.geometry()} / {b.geometry()}")
    return problems


def clipped(root: QWidget) -> list[str]:
    """Widgets smaller than they need to show themselves, or sticking out of their parent."""
    problems = []
    for w in shown(root):
        if _inside_scroll_content(w) or isinstance(w, QSplitterHandle):
            continue
        parent = w.parentWidget()
        if parent is not None and not parent.rect().adjusted(-1, -1, 1, 1).contains(w.geometry()):
            problems.append(f"{_name(w)} sticks out of {_name(parent)}: {w.geometry()} in {parent.rect()}")
        hint = w.minimumSizeHint()
        floor_w = max(w.minimumWidth(), hint.width()) if hint.isValid() else w.minimumWidth()
        floor_h = max(w.minimumHeight(), hint.height()) if hint.isValid() else w.minimumHeight()
        if w.layout() is not None and (w.width() < floor_w - 1 or w.height() < floor_h - 1):
            problems.append(f"{_name(w)} is {w.width()}×{w.height()}, needs {floor_w}×{floor_h}")
    return problems


def elided(root: QWidget) -> list[str]:
    """Text cut short without intent: a label, button or box narrower than its text (an eliding label that says
    its whole text in its tooltip is intended)."""
    problems = []
    for w in shown(root):
        if isinstance(w, QElidingLabel):
            if (
                w.text()
                and w.text() not in w.toolTip()
                and QFontMetrics(w.font()).horizontalAdvance(w.text()) > w.width()
            ):
                problems.append(f"{_name(w)} is shortened and has no tooltip with its text")
            continue
        if isinstance(w, QLabel) and not w.wordWrap() and w.text() and w.pixmap().isNull():
            need = w.sizeHint().width()
        elif isinstance(w, (QAbstractButton, QAbstractSpinBox)):
            need = w.sizeHint().width() if isinstance(w, QAbstractButton) else w.minimumSizeHint().width()
        elif isinstance(w, QComboBox):
            fm = QFontMetrics(w.font())
            need = fm.horizontalAdvance(w.currentText()) + 28  # the arrow and the frame
        else:
            continue
        if w.width() < need - 1:
            problems.append(f"{_name(w)} is {w.width()} wide, its text needs {need}")
    return problems


def _name(w: QWidget) -> str:
    text = ""
    for attr in ("text", "currentText", "title"):
        f = getattr(w, attr, None)
        if callable(f):
            try:
                text = str(f())[:30]
            except TypeError:
                continue
            break
    return f"{type(w).__name__}{'(' + repr(text) + ')' if text else ''}"
