"""Export any view for slides: PNG (at a chosen size), SVG (vector, via QSvgGenerator — pyqtgraph's own SVG
exporter fails on PySide6 6.11), and its data as CSV or JSON. Pictures and JSON carry a caption: model, text,
layer/head where it applies, and the date; a CSV file is only its table, for spreadsheets.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter
from PySide6.QtWidgets import QWidget

from explainer.core.errors import UserError
from explainer.ui.widgets.plot_cache import drawn_anew

CAPTION_PX = 28


def caption_for(result, extra: str = "") -> str:
    """ "SmolLM2-135M-Instruct · "The cat sat…" · layer 3, head 5 · 2026-11-23"."""
    parts = []
    if result is not None:
        text = result.text.replace("\n", " ⏎ ")
        parts += [result.model.name, f"“{text[:60]}{'…' if len(text) > 60 else ''}”"]
    if extra:
        parts.append(extra)
    parts.append(_dt.date.today().isoformat())
    return " · ".join(parts)


def _paint(widget: QWidget, painter: QPainter, size: QSize, caption: str, background: QColor) -> None:
    painter.fillRect(QRect(QPoint(0, 0), size), background)
    body_h = size.height() - (CAPTION_PX if caption else 0)
    src = widget.size()
    scale = min(size.width() / max(1, src.width()), body_h / max(1, src.height()))
    painter.save()
    painter.scale(scale, scale)
    with drawn_anew(widget):  # not the plots' cached pixmaps: text and lines stay sharp (and text in an SVG)
        QWidget.render(widget, painter, QPoint(0, 0))  # the widget's own paint (a plot view overrides render())
    painter.restore()
    if caption:
        f = QFont(widget.font())
        f.setPixelSize(int(CAPTION_PX * 0.55))
        painter.setFont(f)
        painter.setPen(QColor("#5d6470") if background.lightness() > 128 else QColor("#a3aab5"))
        painter.drawText(QRect(8, body_h, size.width() - 16, CAPTION_PX), Qt.AlignVCenter | Qt.AlignLeft, caption)


def export_png(
    widget: QWidget, path: str | Path, size: QSize | tuple[int, int] | None = None, caption: str = ""
) -> Path:
    """Render ``widget`` into a PNG of exactly ``size`` pixels (default: the widget's size + caption)."""
    if size is None:
        size = QSize(widget.width(), widget.height() + (CAPTION_PX if caption else 0))
    elif isinstance(size, tuple):
        size = QSize(*size)
    if size.width() < 16 or size.height() < 16 or size.width() * size.height() > 16000 * 16000:
        raise UserError(
            f"An export size of {size.width()}×{size.height()} pixels is not possible; choose 16 to 16000 per side."
        )
    img = QImage(size, QImage.Format_ARGB32)
    painter = QPainter(img)
    try:
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setRenderHint(QPainter.TextAntialiasing)
        _paint(widget, painter, size, caption, widget.palette().window().color())
    finally:
        painter.end()
    p = Path(path)
    if not img.save(str(p), "PNG"):
        raise UserError(f"The picture cannot be written to {p}; check the folder exists and is writable.")
    return p


def export_svg(widget: QWidget, path: str | Path, caption: str = "", title: str = "explainer") -> Path:
    """``widget`` as an SVG drawing of its size in pixels (plus the caption), with text that keeps its place in
    any viewer (``svg_portable``)."""
    from PySide6.QtSvg import QSvgGenerator

    from explainer.ui.svg_portable import make_portable

    size = QSize(widget.width(), widget.height() + (CAPTION_PX if caption else 0))
    p = Path(path)
    gen = QSvgGenerator()  # SVG Tiny 1.2: Qt 6.11's SVG 1.1 clip paths cut away most of a plot
    gen.setFileName(str(p))
    gen.setSize(size)
    gen.setViewBox(QRect(QPoint(0, 0), size))
    # text is laid out at the screen's resolution, as on screen (the default, 72 dpi, writes point sizes as
    # pixel sizes: every font comes out a quarter too small, with gaps between the runs of text)
    dpi = widget.logicalDpiX()
    gen.setResolution(dpi)
    gen.setTitle(title)
    gen.setDescription(caption)
    painter = QPainter()
    if not painter.begin(gen):
        raise UserError(f"The SVG cannot be written to {p}; check the folder exists and is writable.")
    try:
        _paint(widget, painter, size, caption, widget.palette().window().color())
    finally:
        painter.end()
    try:
        make_portable(p, dpi, widget)
    except OSError as e:
        raise UserError(f"The SVG cannot be written to {p} ({e.strerror}).") from None
    return p


def export_data(data: dict, path: str | Path, caption: str = "") -> Path:
    """Write a panel's data. ``.json``: {"caption", **data} with arrays as lists. ``.csv``: only the table, so a
    spreadsheet reads it as it is: ``data["rows"]`` (list of dicts) or the 2-D array ``data["matrix"]`` with
    ``data["row_labels"]`` / ``data["col_labels"]`` (where the rows are tokens, ``data["token_texts"]``: each row
    then starts with its position, the token's own text and its label as on screen), a header row first (the caption
    and the view's settings are in the JSON)."""
    p = Path(path)
    try:
        if p.suffix.lower() == ".csv":
            p.write_text(_to_csv(data), encoding="utf-8", newline="")
        else:
            payload = {"caption": caption, **{k: _plain(v) for k, v in data.items()}}
            p.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
    except OSError as e:
        raise UserError(f"The data cannot be written to {p} ({e.strerror}).") from None
    return p


def _plain(v):
    if isinstance(v, np.ndarray):
        return _plain(v.tolist())
    if isinstance(v, (np.floating, np.integer, np.bool_)):
        return _plain(v.item())
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no NaN or infinity (a hidden attention column, a missing probability)
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _to_csv(data: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    if "rows" in data:
        rows = data["rows"]
        cols = list(rows[0]) if rows else []
        w.writerow(cols)
        for r in rows:
            w.writerow([_plain(r[c]) for c in cols])
    elif "matrix" in data:
        m = np.asarray(data["matrix"])
        cols = data.get("col_labels") or [str(i) for i in range(m.shape[1])]
        rows = data.get("row_labels") or [str(i) for i in range(m.shape[0])]
        texts = data.get("token_texts")
        if texts is not None:  # rows are tokens: their position, own text and screen label before the numbers
            w.writerow(["position", "token_text", "token_label"] + list(cols))
            for i, (text, label, row) in enumerate(zip(texts, rows, m)):
                w.writerow([i, text, label] + [f"{x:.6g}" for x in row])
        else:
            w.writerow([""] + list(cols))
            for label, row in zip(rows, m):
                w.writerow([label] + [f"{x:.6g}" for x in row])
    else:
        raise ValueError("export_data needs 'rows' or 'matrix'")
    return buf.getvalue()
