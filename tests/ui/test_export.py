"""Export a view for slides: PNG at the asked size, SVG with its caption, data as CSV / JSON with the caption."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PySide6.QtGui import QImage

from explainer.ui.export import CAPTION_PX
from explainer.ui.export_ui import ExportDialog, export_view, panel_caption, plot_of

TEXT = "The cat sat on the mat. The cat sat on the mat."


@pytest.fixture
def window(make_main_window, wait_result):
    w = make_main_window(text=TEXT, size=(1400, 900))
    wait_result(w, TEXT)
    w.attention.select_head(1, 2)
    return w


def test_png_has_the_requested_size(window, tmp_path):
    caption = panel_caption(window.attention, window.result)
    path = export_view(window.attention, "png", tmp_path / "a.png", size=(1234, 567), caption=caption)
    img = QImage(str(path))
    assert (img.width(), img.height()) == (1234, 567)
    assert len({img.pixel(x, y) for x in range(0, 1234, 37) for y in range(0, 540, 29)}) > 5  # not blank


def test_svg_is_xml_and_carries_the_caption(window, tmp_path):
    caption = panel_caption(window.attention, window.result)
    assert "layer 2, head 3" in caption and window.result.model.name in caption
    path = export_view(window.attention, "svg", tmp_path / "a.svg", caption=caption)
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    texts = " ".join(t for t in root.itertext())
    assert caption in texts
    assert caption in path.read_text(encoding="utf-8")


def test_svg_writes_the_plots_text_as_text_though_the_screen_draws_it_from_pixmaps(window, tmp_path):
    """On screen the axes and titles are copied from cached pixmaps; an SVG gets every token label, number and title
    as text (searchable, sharp at any size), and the screen's caches are back after the export."""
    from PySide6.QtWidgets import QGraphicsItem

    w = window
    heat, grid = w.attention.heatmap, w.attention.grid
    cached = [heat.bottom_axis, heat.left_axis.label, heat.colorbar.axis, grid.getPlotItem().getAxis("top")]
    cached += [w.embeddings.map.getPlotItem().getAxis("bottom").label]
    assert all(item.cacheMode() == QGraphicsItem.DeviceCoordinateCache for item in cached)
    texts = {t.text.strip() for t in _svg_texts(export_view(w.attention, "svg", tmp_path / "a.svg", part="panel"))}
    labels = set(heat.bottom_axis.labels) - {""}
    assert "⟨start⟩" in labels and "start" in texts  # its brackets are runs of another font
    assert labels - {"⟨start⟩"} <= texts  # every token named under the matrix
    assert {"0.0", "1.0", heat.titles()[0].strip(), "layer", "head", "1"} <= texts
    assert all(item.cacheMode() == QGraphicsItem.DeviceCoordinateCache for item in cached)


def test_attention_data_as_csv_and_json(window, tmp_path):
    window.attention.set_hide_first(True)
    caption = panel_caption(window.attention, window.result)
    p = export_view(window.attention, "data", tmp_path / "att.csv", caption=caption)
    lines = p.read_text(encoding="utf-8").splitlines()
    rows = list(csv.reader(lines))  # the table from its first line: a spreadsheet reads no caption as data
    tokens = window.result.tokens
    labels = [t.label for t in tokens]  # as the heatmap's axes name them
    assert labels[0] == "⟨start⟩" and window.attention._labels == labels
    assert rows[0] == ["position", "token_text", "token_label"] + labels
    assert [r[:3] for r in rows[1:]] == [[str(i), t.text, t.label] for i, t in enumerate(tokens)]
    assert any(t.text.startswith(" ") and t.label.startswith("·") for t in tokens)  # both, clearly named
    m = window.attention.current_matrix()
    assert float(rows[3][4]) == pytest.approx(float(m[2, 1]), rel=1e-5)
    p = export_view(window.attention, "data", tmp_path / "att.json", caption=caption)
    data = json.loads(p.read_text(encoding="utf-8"))  # strict JSON: no NaN
    assert data["caption"] == caption and data["layer"] == 2 and data["head"] == 3
    assert data["matrix"][1][0] is None  # the hidden first column
    assert data["row_labels"] == labels and data["token_texts"] == [t.text for t in tokens]
    assert np.allclose(np.array(data["matrix"][3][1:4], float), m[3, 1:4])


def test_every_view_exports_its_data(window, tmp_path):
    w = window
    for key in w.teach.keys[1:]:
        w.teach.show_view(key)  # a teaching view draws when shown
    for key, panel in w.teach.all_panels().items():
        data = panel.export_data()
        assert "rows" in data or "matrix" in data, key
        assert data.get("rows", [0]) or np.asarray(data.get("matrix")).size, key
        caption = panel_caption(panel, w.result)
        for suffix in ("csv", "json"):
            p = export_view(panel, "data", tmp_path / f"{key}.{suffix}", caption=caption)
            text = p.read_text(encoding="utf-8")
            if suffix == "csv":
                assert caption not in text and not text.startswith("#"), key
                if data.get("rows") or "matrix" in data:  # a table starts with its header row
                    assert len(next(csv.reader(text.splitlines()))) >= 2, key
            else:
                assert json.loads(text)["caption"] == caption
    rows = w.next_token.export_data()["rows"]
    assert rows[0]["rank"] == 1 and rows[0]["probability"] >= rows[1]["probability"]


def test_export_dialog_defaults_to_twice_the_size(window, qtbot):
    dlg = ExportDialog("png", window.teach.visible_panels(), "attention", window.result, window)
    qtbot.addWidget(dlg)
    a = window.attention
    assert dlg.panel is a and dlg.part_key == "plot"  # a slide wants the picture: the plot alone
    assert dlg.size[0] == 2 * a.heatmap.width() and dlg.size[1] >= 2 * a.heatmap.height()
    assert "head 3" in dlg.caption.text()
    dlg.part.setCurrentIndex(dlg.part.findData("panel"))
    assert dlg.size[0] == 2 * a.width() and dlg.size[1] >= 2 * a.height()
    dlg.view.setCurrentIndex(dlg.view.findData("tokens"))
    assert dlg.panel is window.tokens and dlg.part_key == "plot"
    assert dlg.size[0] == 2 * window.tokens.view.width()


def test_the_view_to_export_follows_the_last_used_panel(window):
    w = window
    assert w.teach.focused_panel() is w.attention  # select_head counts as using it
    w.tokens.tokenSelected.emit(2)
    assert w.teach.focused_panel() is w.tokens
    w.teach.show_view("lens")
    assert w.teach.focused_panel() is w.teach.panels["lens"]
    assert list(w.teach.visible_panels()) == ["lens"]


def test_an_unwritable_path_gives_a_sentence(window, tmp_path):
    assert not window.exports.export(window.attention, "png", tmp_path / "no" / "such" / "folder" / "a.png")
    assert "cannot be written" in window.exports.last_dialog.text()


def test_the_lines_tab_exports_its_lines_alone(window, tmp_path):
    a = window.attention
    a.view_buttons.button(1).click()  # Lines
    assert plot_of(a) is a.lines
    p = export_view(a, "png", tmp_path / "lines.png", caption="c", part="plot")
    img = QImage(str(p))
    assert (img.width(), img.height()) == (a.lines.width(), a.lines.height() + CAPTION_PX)
    a.view_buttons.button(0).click()
    assert plot_of(a) is a.heatmap


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_the_plot_alone_leaves_the_controls_out(window, tmp_path, fmt):
    w = window
    for panel, plot in ((w.attention, w.attention.heatmap), (w.next_token, w.next_token.bars)):
        assert plot_of(panel) is plot
        p = export_view(panel, fmt, tmp_path / f"plot.{fmt}", caption="c", part="plot")
        if fmt == "png":
            img = QImage(str(p))
            assert (img.width(), img.height()) == (plot.width(), plot.height() + CAPTION_PX)
        else:
            root = ET.parse(p).getroot()
            assert root.get("viewBox").split()[2:] == [str(plot.width()), str(plot.height() + CAPTION_PX)]
            texts = " ".join(root.itertext())
            assert "What am I seeing?" not in texts and "Temperature" not in texts and "Reset" not in texts
    whole = export_view(w.next_token, "svg", tmp_path / "whole.svg", caption="c", part="panel")
    assert "What am I seeing?" in " ".join(ET.parse(whole).getroot().itertext())


def _svg_texts(path):
    ns = "{http://www.w3.org/2000/svg}"
    return [t for t in ET.parse(path).getroot().iter(f"{ns}text") if (t.text or "").strip()]


def test_svg_text_keeps_its_place_in_any_viewer(window, tmp_path):
    """Italic and subscript runs are separate <text> elements at Qt's positions: with Qt's point sizes written as
    pixel sizes and its "Sans Serif" family unknown to viewers they drift apart ("( query )", "QK T/√ d k") or get
    clipped ("0: (start)"). Written at the screen's resolution, with real families and each run's measured
    width, they keep their place."""
    from PySide6.QtGui import QFontInfo

    a = window.attention
    window.set_help_visible(True)  # the explanation under the title holds the italic and subscript runs
    p = export_view(a, "svg", tmp_path / "a.svg", caption="c", part="panel")
    texts = _svg_texts(p)
    italic = next(t for t in texts if t.text == "query")
    assert italic.get("font-style") == "italic"
    help_px = QFontInfo(a._help.font()).pixelSize()
    assert float(italic.get("font-size")) == pytest.approx(help_px, abs=0.5)  # pixels, as on screen
    for t in texts:
        assert "Sans Serif" not in t.get("font-family") and t.get("font-family").endswith(("sans-serif", "monospace"))
        assert float(t.get("textLength")) > 0 and t.get("lengthAdjust") == "spacingAndGlyphs"
    sub = next(t for t in texts if t.text == "k" and float(t.get("font-size")) < help_px)  # the k of d_k
    assert float(sub.get("textLength")) < float(italic.get("textLength"))
    raw = p.read_text(encoding="utf-8")
    assert "non-scaling-stroke" not in raw  # a thin frame stays thin where viewers ignore vector-effect


def test_data_keeps_each_tokens_text_and_its_label(window, tmp_path):
    """A spreadsheet needs the token's own text (" cat"), the screen shows a label ("·cat"): both, named; the start
    token is named as on screen."""
    w = window
    caption = panel_caption(w.tokens, w.result)
    p = export_view(w.tokens, "data", tmp_path / "tokens.csv", caption=caption)
    with open(p, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[2]["token_text"] == " cat" and rows[2]["token_label"] == "·cat"
    assert rows[0]["token_label"] == w.tokens.view.chips[0].label == "⟨start⟩"
    assert rows[0]["token_text"] == "<|endoftext|>" and rows[0]["special"] == "True"
    data = json.loads(export_view(w.tokens, "data", tmp_path / "tokens.json", caption=caption).read_text("utf-8"))
    assert data["rows"][0]["token_label"] == "⟨start⟩" and data["rows"][7]["token_text"] == "."
    for row in w.next_token.export_data()["rows"][:5]:
        assert row["token_label"].replace("·", " ").replace("⏎", "\n") == row["token_text"]
    for row in w.embeddings.export_data()["rows"]:
        assert row["token_text"] == w.result.tokens[row["position"]].text
