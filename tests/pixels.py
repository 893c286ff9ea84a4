"""Reading rendered widgets as pixels, for tests that check what is drawn rather than that something is."""

from __future__ import annotations

import numpy as np


def image_array(widget_or_image) -> np.ndarray:
    """``[height, width, 3]`` uint8 RGB of a widget's rendering (``grab()``) or of a QImage."""
    from PySide6.QtGui import QImage

    img = widget_or_image if isinstance(widget_or_image, QImage) else widget_or_image.grab().toImage()
    img = img.convertToFormat(QImage.Format_RGB32)  # 0xffRRGGBB per pixel: B, G, R, A in memory
    h, w = img.height(), img.width()
    rows = np.frombuffer(img.constBits(), np.uint8, count=h * img.bytesPerLine()).reshape(h, img.bytesPerLine())
    return rows[:, : 4 * w].reshape(h, w, 4)[:, :, 2::-1].copy()


def rgb(colour) -> np.ndarray:
    """A colour (``QColor``, "#rrggbb" or a name) as ``[3]`` RGB ints."""
    from PySide6.QtGui import QColor

    c = QColor(colour)
    return np.array([c.red(), c.green(), c.blue()])


def luminance(pixels: np.ndarray) -> np.ndarray:
    """Relative luminance (0 black … 1 white) of RGB pixels, sRGB → linear, WCAG weights."""
    c = np.asarray(pixels, np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return lin @ np.array([0.2126, 0.7152, 0.0722])


def distinct_colours(pixels: np.ndarray) -> int:
    return len(np.unique(np.asarray(pixels).reshape(-1, 3), axis=0))


def assert_dark_and_legible(pixels: np.ndarray, what: str = "picture") -> None:
    """A dark-theme rendering: mostly dark (median luminance ≤ 0.05; the dark theme's surfaces are ~0.01-0.02)
    with light text on it (some pixels ≥ 0.6)."""
    lum = luminance(np.asarray(pixels).reshape(-1, 3))
    assert np.median(lum) <= 0.05, f"{what} is not dark: median luminance {np.median(lum):.2f}"
    assert lum.max() >= 0.6, f"{what} has no light text: brightest luminance {lum.max():.2f}"


def screenshot_alone(panel: str, path, *args: str, env: dict | None = None, timeout: float = 240) -> np.ndarray:
    """Run ``python -m explainer.ui.panels.<panel> --screenshot path *args`` (the panel alone on the demo
    engine) and return the saved picture's pixels."""
    import os
    import subprocess
    import sys

    from PySide6.QtGui import QImage

    proc = subprocess.run(
        [sys.executable, "-m", f"explainer.ui.panels.{panel}", "--screenshot", str(path), *args],
        env=dict(os.environ, **(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return image_array(QImage(str(path)))


def colour_share(pixels: np.ndarray, colours, tol: int = 0) -> float:
    """The share of pixels within ``tol`` (per channel) of any of ``colours``."""
    flat = np.asarray(pixels, np.int16).reshape(-1, 1, 3)
    targets = np.array([rgb(c) for c in colours], np.int16).reshape(1, -1, 3)
    return float((np.abs(flat - targets).max(-1) <= tol).any(-1).mean())


def painted_area(widget):
    """An event filter installed on ``widget`` that adds up the pixels of its Paint events' regions (``.area``):
    how much of it was drawn again."""
    from PySide6.QtCore import QEvent, QObject

    class PaintedArea(QObject):
        area = 0

        def eventFilter(self, obj, event):
            if event.type() == QEvent.Paint:
                self.area += sum(r.width() * r.height() for r in event.region())
            return False

    counter = PaintedArea(widget)
    widget.installEventFilter(counter)
    return counter


def exposed(qtbot, widget, size):
    """``widget`` (kept by ``qtbot``) at ``size``, shown and exposed: ready to be drawn."""
    qtbot.addWidget(widget)
    widget.resize(*size)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def on_screen(widget):
    """What the window of ``widget`` shows on the screen now, as a QImage: what its partial redraws left there
    (``grab()`` would draw the whole widget anew). Handles the pending events first, without drawing anew."""
    from PySide6.QtWidgets import QApplication

    for _ in range(3):
        QApplication.processEvents()
    return QApplication.primaryScreen().grabWindow(widget.winId()).toImage()
