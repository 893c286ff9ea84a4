"""Drawing part of a plot again in the window's next repaint, not in a repaint of its own.

An item that calls its own ``update()`` is marked dirty in its scene. The scene gathers its dirty items in a
queued call, asks its views to draw their areas, and then makes the window repaint at once: every plot whose
items changed costs the whole window one more repaint pass (each pass walks the window's dirty widgets and
copies the result to the screen). The items whose pictures change at every keystroke (a heatmap's cells, the
map's points) ask their views instead to draw their area again: Qt draws it, with every other item there, in
the one pass that draws the rest of the window.

Only for items that draw themselves at every paint: an item drawn from a cache (``setCacheMode``) must be told
through ``update()``, or its cache would be shown unchanged.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QGraphicsItem

MARGIN_PX = 2  # what a view adds around an item's area when it draws it again (antialiased edges)


def redraw_in_views(item: QGraphicsItem, rect: QRectF | None = None) -> bool:
    """Ask every view showing ``item`` to draw ``rect`` (item coordinates; None or a null rectangle: the whole
    item) again in the window's next repaint. False, and nothing asked, when the item is in no scene or drawn
    from a cache: then ``update()`` is what marks it for drawing."""
    scene = item.scene()
    if scene is None or item.cacheMode() != QGraphicsItem.NoCache:
        return False
    if not item.isVisible():
        return True  # nothing of it to draw (showing it draws it)
    area = item.boundingRect() if rect is None or rect.isNull() else rect
    in_scene = item.mapToScene(area)
    for view in scene.views():
        box = view.mapFromScene(in_scene).boundingRect()
        view.viewport().update(box.adjusted(-MARGIN_PX, -MARGIN_PX, MARGIN_PX, MARGIN_PX))
    return True
