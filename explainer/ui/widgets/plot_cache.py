"""Parts of a plot that seldom change (axis titles, plain axes, text items) are drawn once into a pixmap, which
each new picture only copies (Qt's device coordinate cache; a part is drawn again when it changes, moves to
another scale or the theme changes). Exports draw every part anew, so that an SVG keeps its text as text.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pyqtgraph as pg
from PySide6.QtWidgets import QGraphicsItem, QGraphicsTextItem, QGraphicsView, QWidget


def _has_text(item: QGraphicsItem) -> bool:
    return isinstance(item, (QGraphicsTextItem, pg.AxisItem))


def cache(item: QGraphicsItem) -> None:
    """Draw ``item`` from a pixmap while it is unchanged (for text items and axes added later)."""
    item.setCacheMode(QGraphicsItem.DeviceCoordinateCache)


def cache_fixed_parts(view: QGraphicsView) -> None:
    """Draw the text items and the axes of ``view``'s scene from a pixmap while they are unchanged."""
    for item in view.scene().items():
        if _has_text(item):
            cache(item)


@contextmanager
def drawn_anew(widget: QWidget) -> Iterator[None]:
    """Within the block the text items and axes shown by ``widget`` or its children draw themselves, not their
    cached pixmaps (an SVG export then has text as text); the caches are restored after it. (A cached cloud of
    thousands of dots stays one picture.)"""
    views = widget.findChildren(QGraphicsView)
    if isinstance(widget, QGraphicsView):
        views.append(widget)
    saved = [
        (item, item.cacheMode())
        for view in views
        if view.scene() is not None
        for item in view.scene().items()
        if _has_text(item) and item.cacheMode() != QGraphicsItem.NoCache
    ]
    for item, _mode in saved:
        item.setCacheMode(QGraphicsItem.NoCache)
    try:
        yield
    finally:
        for item, mode in saved:
            item.setCacheMode(mode)
