"""Export a view for slides: PNG at the asked size, SVG with its caption, data as CSV / JSON with the caption."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PySide6.QtGui import QImage

from explainer.ui.export_ui import ExportDialog, export_view, panel_caption

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


def test_attention_data_as_csv_and_json(window, tmp_path):
    window.attention.set_hide_first(True)
    caption = panel_caption(window.attention, window.result)
    p = export_view(window.attention, "data", tmp_path / "att.csv", caption=caption)
    lines = p.read_text(encoding="utf-8").splitlines()
    assert lines[0] == f"# {caption}"
    rows = list(csv.reader(lines[1:]))
    labels = [t.display for t in window.result.tokens]
    assert rows[0] == [""] + labels and [r[0] for r in rows[1:]] == labels
    m = window.attention.current_matrix()
    assert float(rows[3][2]) == pytest.approx(float(m[2, 1]), rel=1e-5)
    p = export_view(window.attention, "data", tmp_path / "att.json", caption=caption)
    data = json.loads(p.read_text(encoding="utf-8"))  # strict JSON: no NaN
    assert data["caption"] == caption and data["layer"] == 2 and data["head"] == 3
    assert data["matrix"][1][0] is None  # the hidden first column
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
            assert text.startswith(f"# {caption}") if suffix == "csv" else json.loads(text)["caption"] == caption
    rows = w.next_token.export_data()["rows"]
    assert rows[0]["rank"] == 1 and rows[0]["probability"] >= rows[1]["probability"]


def test_export_dialog_defaults_to_twice_the_size(window, qtbot):
    dlg = ExportDialog("png", window.teach.visible_panels(), "attention", window.result, window)
    qtbot.addWidget(dlg)
    a = window.attention
    assert dlg.panel is a and dlg.size[0] == 2 * a.width() and dlg.size[1] >= 2 * a.height()
    assert "head 3" in dlg.caption.text()
    dlg.view.setCurrentIndex(dlg.view.findData("tokens"))
    assert dlg.panel is window.tokens and dlg.size[0] == 2 * window.tokens.width()


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
