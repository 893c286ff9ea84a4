"""Colours and fonts shared by every panel: one palette, legible on a projector, colour-blind safe.

Token chips alternate through the Okabe–Ito palette (safe for the common colour-vision deficiencies). Heat
scales (attention, surprisal) use a single sequential map (viridis-like) so values read the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

# Okabe & Ito (2008) colour-blind-safe qualitative palette, light tints for chip backgrounds.
CHIP_COLOURS_LIGHT = ("#cfe8f7", "#fde4b8", "#c9ecdf", "#f9d5c4", "#e6d5ec", "#f7f1b5")
CHIP_COLOURS_DARK = ("#1f4e6b", "#6b4a12", "#1d5a46", "#6e3420", "#4f3a5c", "#5c5716")
# Strong accents (Okabe–Ito): blue, orange, bluish green, vermillion, reddish purple, sky blue, yellow.
ACCENTS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442")
HIGHLIGHT = "#D55E00"  # the linked selection / hover colour in every panel
SPECIAL = "#CC79A7"  # special tokens (start token, <|im_start|> …)


@dataclass(frozen=True)
class Theme:
    name: str
    background: str
    surface: str
    text: str
    muted: str
    grid: str
    chips: tuple[str, ...]
    colormap: str  # pyqtgraph colormap name for heatmaps

    @property
    def is_dark(self) -> bool:
        return self.name == "dark"


LIGHT = Theme("light", "#ffffff", "#f4f5f7", "#1b1d21", "#5d6470", "#d9dce1", CHIP_COLOURS_LIGHT, "viridis")
DARK = Theme("dark", "#16181c", "#1f2228", "#eef0f3", "#a3aab5", "#3a3f47", CHIP_COLOURS_DARK, "viridis")
THEMES = {"light": LIGHT, "dark": DARK}

BASE_FONT_PT = 11
EDITOR_FONT_PT = 18
PRESENTER_SCALE = 1.6


def chip_colour(theme: Theme, index: int) -> str:
    return theme.chips[index % len(theme.chips)]


def surprisal_colour(bits: float, max_bits: float = 16.0) -> str:
    """Sequential white→orange→red scale for surprisal heat over chips (NaN → transparent)."""
    import math

    if bits is None or math.isnan(bits):
        return "#00000000"
    t = max(0.0, min(1.0, bits / max_bits))
    # interpolate from pale yellow (255,247,188) to vermillion (213,94,0)
    r = round(255 + (213 - 255) * t)
    g = round(247 + (94 - 247) * t)
    b = round(188 + (0 - 188) * t)
    return f"#{r:02x}{g:02x}{b:02x}"


_VIRIDIS = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))


def heat_colour(value: float) -> str:
    """Viridis-like ``#rrggbb`` for ``value`` in [0, 1] (the attention heatmaps' scale): linear between five
    stops of viridis."""
    v = min(1.0, max(0.0, float(value))) * (len(_VIRIDIS) - 1)
    i = min(int(v), len(_VIRIDIS) - 2)
    t = v - i
    a, b = _VIRIDIS[i], _VIRIDIS[i + 1]
    r, g, bl = (round(a[c] + (b[c] - a[c]) * t) for c in range(3))
    return f"#{r:02x}{g:02x}{bl:02x}"


# --- sizes (points; Qt scales them for HiDPI) ---------------------------------------------------------------
CHIP_FONT_PT = 15  # token text on chips
SMALL_FONT_PT = 9  # ids under chips, legends
LABEL_FONT_PT = 13  # bar labels, big numbers
WARNING = "#E69F00"  # dropped bytes, truncation
ERROR_BG = {"light": "#fde2d6", "dark": "#5a2612"}


def token_font(base, min_pt: float):
    """``base`` at ``min_pt`` points or more: token labels must be readable on a projector."""
    from PySide6.QtGui import QFont

    f = QFont(base)
    if f.pointSizeF() < min_pt:
        f.setPointSizeF(min_pt)
    return f


def luminance(hex_colour: str) -> float:
    """Relative luminance (WCAG) of ``#rrggbb``."""
    h = hex_colour.lstrip("#")[:6]
    rgb = [int(h[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def text_on(background: str) -> str:
    """Dark or light text, whichever contrasts more with ``background``."""
    return "#1b1d21" if luminance(background) > 0.22 else "#f4f5f7"


def make_palette(theme: Theme):
    """A QPalette for the whole application (Fusion style follows it on every platform)."""
    from PySide6.QtGui import QColor, QPalette

    p = QPalette()
    c = QColor
    roles = {
        QPalette.Window: theme.surface,
        QPalette.WindowText: theme.text,
        QPalette.Base: theme.background,
        QPalette.AlternateBase: theme.surface,
        QPalette.Text: theme.text,
        QPalette.Button: theme.surface,
        QPalette.ButtonText: theme.text,
        QPalette.ToolTipBase: theme.background,
        QPalette.ToolTipText: theme.text,
        QPalette.PlaceholderText: theme.muted,
        QPalette.Highlight: ACCENTS[0],
        QPalette.HighlightedText: "#ffffff",
        QPalette.Link: ACCENTS[5] if theme.is_dark else ACCENTS[0],
        QPalette.BrightText: HIGHLIGHT,
        QPalette.Mid: theme.grid,
        QPalette.Midlight: theme.grid,
        QPalette.Dark: theme.muted,
        QPalette.Light: theme.background,
        QPalette.Shadow: "#000000",
    }
    for role, colour in roles.items():
        p.setColor(role, c(colour))
    for role in (QPalette.Text, QPalette.WindowText, QPalette.ButtonText):
        p.setColor(QPalette.Disabled, role, c(theme.muted))
    return p


_PALETTES: dict[int, Theme] = {}  # id(application) -> the theme of its style and palette


def apply_palette(app, theme: Theme) -> None:
    """Fusion style + the theme's palette on the application, without its style sheet (``apply_theme``): what a
    window being built needs. A widget put into a layout while the application has a style sheet is styled again
    with all its children, at each level: building the window that way took ~0.3 s longer than building it
    without and styling it once at the end. The style is set again with each theme: that also measures the
    widgets again (a spin box kept a size from before otherwise)."""
    if _PALETTES.get(id(app)) == theme:
        return
    _PALETTES[id(app)] = theme
    app.setStyle("Fusion")
    app.setPalette(make_palette(theme))


def style_sheet(theme: Theme) -> str:
    """The application's style sheet for ``theme``: tooltips, muted help text."""
    return (
        f"QToolTip {{ color: {theme.text}; background: {theme.background}; border: 1px solid {theme.grid}; }}"
        f" QLabel#panelHelp {{ color: {theme.muted}; }}"
    )


def apply_theme(app, theme: Theme) -> None:
    """``apply_palette`` and the style sheet on the application; panels get ``set_theme`` from the window. The
    sheet is set only when it differs from the application's (setting one styles every widget again: about
    0.15 s with the window built)."""
    apply_palette(app, theme)
    sheet = style_sheet(theme)
    if app.styleSheet() != sheet:
        app.setStyleSheet(sheet)
