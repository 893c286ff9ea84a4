"""The diverging colour scale of the "why" views: vermillion for what pushes a prediction up (or a probability
that rose), blue for what pushes it down (or fell), the theme's neutral in between. Both ends are Okabe–Ito
accents, as everywhere in the app, so the scale reads for the common colour-vision deficiencies too."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from explainer.ui import theme as th

UP, DOWN = th.ACCENTS[3], th.ACCENTS[0]  # vermillion, blue


def _rgb(hex_colour: str) -> np.ndarray:
    h = hex_colour.lstrip("#")
    return np.array([int(h[i : i + 2], 16) for i in (0, 2, 4)], np.float64)


def neutral(theme: th.Theme) -> str:
    return theme.surface if theme.is_dark else "#ffffff"


def diverging(value: float, scale: float, theme: th.Theme) -> str:
    """``value`` in [-scale, scale] as #rrggbb: blue (negative) … neutral (0) … vermillion (positive)."""
    t = 0.0 if not scale or not np.isfinite(value) else float(np.clip(value / scale, -1.0, 1.0))
    end = _rgb(UP if t >= 0 else DOWN)
    mid = _rgb(neutral(theme))
    rgb = mid + (end - mid) * abs(t)
    return "#" + "".join(f"{int(round(c)):02x}" for c in rgb)


def diverging_map(theme: th.Theme) -> pg.ColorMap:
    """The same scale as a pyqtgraph colour map over [0, 1] (0.5 is zero)."""
    return pg.ColorMap([0.0, 0.5, 1.0], [_rgb(DOWN), _rgb(neutral(theme)), _rgb(UP)])
