"""Make an SVG written by Qt's QSvgGenerator look in any viewer as it does on screen.

Qt writes each run of text (a word in italics, a subscript) as its own ``<text>`` at the x position Qt laid it out
for, in Qt's font family names ("Sans Serif", which no browser knows, so it falls back to a wider serif font);
a thin pen that keeps its width when zoomed as ``vector-effect="non-scaling-stroke"`` inside a scaled group (a
viewer that ignores it draws the stroke scaled up, 50 px wide); a heatmap's few pixels as an image to be scaled
"fast", which viewers smooth into a blur. Here, after writing:

- every font family becomes the real family Qt drew with, then a generic one (``'Noto Sans', sans-serif``);
- every ``<text>`` gets ``textLength``, the width Qt measured, so a viewer with other font metrics still fits
  each run exactly into its place: no gaps around "(query)" or "QKᵀ/√d_k", no labels clipped at their boxes;
- non-scaling strokes get the width they have on screen in the group's units;
- images to be scaled fast (a heatmap's cells) are stored already enlarged, pixel by pixel, so every viewer
  shows crisp cells.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from PySide6.QtGui import QFont, QFontInfo, QFontMetricsF

SVG_NS, XLINK_NS = "http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"
_MATRIX = re.compile(r"matrix\(([^)]*)\)")


def make_portable(path: str | Path, dpi: float, device=None) -> None:
    """Rewrite the SVG at ``path`` (written by QSvgGenerator at ``dpi``); ``device`` gives the font metrics
    (the widget that was drawn, so text is measured as it was laid out)."""
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", XLINK_NS)
    tree = ET.parse(path)
    root = tree.getroot()
    families: dict[str, str] = {}
    for el in root.iter():
        fam = el.get("font-family")
        if fam is not None:
            if fam not in families:
                families[fam] = _css_family(fam)
            el.set("font-family", families[fam])
    for el in root.iter(f"{{{SVG_NS}}}text"):
        _fit_text(el, dpi, device)
    for group in root.iter(f"{{{SVG_NS}}}g"):
        for child in group:
            if child.get("vector-effect") == "non-scaling-stroke":
                _fix_cosmetic_stroke(group, child)
            elif child.tag == f"{{{SVG_NS}}}image" and child.get("image-rendering") == "optimizeSpeed":
                child.set("style", "image-rendering:pixelated")  # viewers that know it
                _enlarge(child, _scale(group))  # and those that don't
    tree.write(path, encoding="utf-8", xml_declaration=True)


def _css_family(qt_family: str) -> str:
    """ "Sans Serif" → "'Noto Sans', sans-serif": the family Qt really drew with, then a generic fallback."""
    name = qt_family.strip().strip("'\"")
    real = QFontInfo(QFont(name)).family() or name
    generic = "monospace" if "mono" in f"{name} {real}".lower() or "courier" in real.lower() else "sans-serif"
    names = [n for n in dict.fromkeys((real, name)) if n.lower() not in ("sans serif", "sans-serif", "monospace")]
    return ", ".join([f"'{n}'" for n in names] + [generic])


def _fit_text(el, dpi: float, device) -> None:
    text = el.text or ""
    if not text.strip():
        return
    try:
        px = float(el.get("font-size", "0"))
    except ValueError:
        return
    if px <= 0:
        return
    font = QFont(_first_family(el.get("font-family", "")))
    font.setPointSizeF(px * 72.0 / dpi)
    try:
        font.setWeight(QFont.Weight(int(el.get("font-weight", "400"))))
    except ValueError:
        pass
    font.setItalic(el.get("font-style", "normal") in ("italic", "oblique"))
    fm = QFontMetricsF(font, device) if device is not None else QFontMetricsF(font)
    width = fm.horizontalAdvance(text)
    if width > 0:
        el.set("textLength", f"{width:.3f}")
        el.set("lengthAdjust", "spacingAndGlyphs")


def _first_family(css: str) -> str:
    return css.split(",")[0].strip().strip("'\"")


def _scale(group) -> float:
    """How much the group's transform enlarges (the square root of its area factor)."""
    m = _MATRIX.search(group.get("transform", ""))
    if m:
        try:
            a, b, c, d = (float(x) for x in re.split(r"[ ,]+", m.group(1).strip())[:4])
            return math.sqrt(abs(a * d - b * c)) or 1.0
        except ValueError:
            pass
    return 1.0


def _enlarge(image, scale: float) -> None:
    """Store a small embedded PNG at about the size it is shown, each pixel a block (at most 4 million pixels)."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QImage

    key = f"{{{XLINK_NS}}}href"
    prefix = "data:image/png;base64,"
    href = image.get(key, "")
    if not href.startswith(prefix):
        return
    img = QImage.fromData(QByteArray.fromBase64(href[len(prefix) :].encode("ascii")), "PNG")
    try:
        shown = max(float(image.get("width", "0")), float(image.get("height", "0"))) * scale
    except ValueError:
        return
    side = max(img.width(), img.height())
    if img.isNull() or side == 0:
        return
    k = min(math.ceil(shown / side), int(math.sqrt(4_000_000 / max(1, img.width() * img.height()))))
    if k <= 1:
        return
    big = img.scaled(img.width() * k, img.height() * k, Qt.IgnoreAspectRatio, Qt.FastTransformation)
    buf = QBuffer()
    buf.open(QIODevice.WriteOnly)
    big.save(buf, "PNG")
    image.set(key, prefix + bytes(buf.data().toBase64()).decode("ascii"))


def _fix_cosmetic_stroke(group, el) -> None:
    """A pen that is ``w`` pixels wide on screen whatever the zoom: ``w / scale`` in the group's units."""
    scale = _scale(group)
    try:
        width = float(el.get("stroke-width") or group.get("stroke-width") or "1")
    except ValueError:
        width = 1.0
    el.set("stroke-width", f"{width / scale:.6g}")
    del el.attrib["vector-effect"]
