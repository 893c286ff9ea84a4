"""File ▸ Export view as PNG… / SVG… / data…: one view, for a slide, with a caption.

"The view" is the teaching tab on screen, or on the Live tab the panel last clicked or focused (the dialog lets
you pick another visible one). The caption names the model, the text, what the view shows (``Panel.caption_extra``:
"attention, layer 3, head 5") and the date; it can be edited. PNG is drawn at the size asked for (default: the
view's size ×2, sharp on a slide); SVG is vector; data is the view's numbers (``Panel.export_data``) as CSV or
JSON. A picture shows the plot alone (``plot_of``: the panel's ``export_plot()``, else its largest visible plot)
or the whole panel with its controls and explanation.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QSpinBox,
    QWidget,
)

from explainer.core.errors import UserError
from explainer.ui.export import CAPTION_PX, caption_for, export_data, export_png, export_svg

log = logging.getLogger(__name__)
FORMATS = {"png": "PNG picture", "svg": "SVG drawing", "data": "data (CSV or JSON)"}
PARTS = {"plot": "The plot alone", "panel": "The whole panel (with its controls and explanation)"}


def plot_of(panel: QWidget) -> QWidget | None:
    """The picture of a view without its controls: what the panel's ``export_plot()`` names, else the largest
    visible pyqtgraph plot inside it; None when it has neither (then only the whole panel can be exported)."""
    own = getattr(panel, "export_plot", None)
    if callable(own):
        return own()
    import pyqtgraph as pg

    plots = [v for v in panel.findChildren(pg.GraphicsView) if v.isVisibleTo(panel) and v.width() * v.height() > 0]
    return max(plots, key=lambda v: v.width() * v.height(), default=None)


def panel_caption(panel, result) -> str:
    try:
        extra = panel.caption_extra()
    except Exception:
        log.exception("caption_extra failed")
        extra = getattr(panel, "title", "")
    return caption_for(result, extra)


def export_view(
    panel: QWidget, fmt: str, path, *, size: tuple[int, int] | None = None, caption: str = "", part: str = "panel"
) -> Path:
    """Write ``panel`` as ``fmt`` ("png", "svg", "data") to ``path``; a picture of ``part`` "plot" (the plot alone,
    ``plot_of``) or "panel" (the whole panel). Raises ``UserError`` with one sentence."""
    if fmt in ("png", "svg"):
        widget = panel
        if part == "plot":
            widget = plot_of(panel)
            if widget is None:
                raise UserError("This view has no plot of its own to export; choose the whole panel.")
        if fmt == "png":
            return export_png(widget, path, size, caption)
        return export_svg(widget, path, caption, title=getattr(panel, "title", "explainer"))
    if fmt == "data":
        p = Path(path)
        if p.suffix.lower() not in (".csv", ".json"):
            p = p.with_suffix(".csv")
        data = panel.export_data()
        if p.suffix.lower() == ".csv" and not ("rows" in data or "matrix" in data):
            raise UserError("This view has no table to write as CSV; choose JSON.")
        return export_data(data, p, caption)
    raise ValueError(f"unknown export format {fmt!r}")


class ExportDialog(QDialog):
    """Which view, its caption, and for PNG the size in pixels."""

    def __init__(self, fmt: str, panels: dict, current: str, result, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Export view as {FORMATS[fmt]}")
        self.fmt, self.panels, self.result = fmt, panels, result
        form = QFormLayout(self)
        self.view = QComboBox()
        for key, p in panels.items():
            self.view.addItem(p.title, key)
        self.view.setCurrentIndex(max(0, self.view.findData(current)))
        form.addRow("View:", self.view)
        self.caption = QLineEdit()
        self.caption.setMinimumWidth(480)
        form.addRow("Caption:", self.caption)
        self.part = QComboBox()
        for key, label in PARTS.items():
            self.part.addItem(label, key)
        if fmt != "data":
            form.addRow("Show:", self.part)
        self.width_box, self.height_box = QSpinBox(), QSpinBox()
        for box in (self.width_box, self.height_box):
            box.setRange(16, 16000)
            box.setSuffix(" px")
        row = QHBoxLayout()
        row.addWidget(self.width_box)
        row.addWidget(QLabel("×"))
        row.addWidget(self.height_box)
        row.addStretch(1)
        if fmt == "png":
            form.addRow("Size:", row)
            form.addRow("", QLabel("Default: twice the size on screen, sharp on a slide."))
        if fmt == "data":
            form.addRow("", QLabel("CSV: the table alone, for spreadsheets. JSON: the table with the caption."))
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.button(QDialogButtonBox.Ok).setText("Export…")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.view.currentIndexChanged.connect(self._on_view_changed)
        self.part.currentIndexChanged.connect(self._on_part_changed)
        self._on_view_changed()

    @property
    def panel(self):
        return self.panels[self.view.currentData()]

    @property
    def part_key(self) -> str:
        """ "plot" or "panel": what the picture shows."""
        return self.part.currentData()

    def _exported_widget(self) -> QWidget:
        plot = plot_of(self.panel) if self.part_key == "plot" else None
        return plot if plot is not None else self.panel

    @property
    def size(self) -> tuple[int, int]:
        return self.width_box.value(), self.height_box.value()

    def _on_view_changed(self, *_args) -> None:
        p = self.panel
        self.caption.setText(panel_caption(p, self.result))
        has_plot = plot_of(p) is not None  # a slide wants the picture: the plot alone where there is one
        item = self.part.model().item(self.part.findData("plot"))
        item.setEnabled(has_plot)
        self.part.setCurrentIndex(self.part.findData("plot" if has_plot else "panel"))
        self._on_part_changed()

    def _on_part_changed(self, *_args) -> None:
        w = self._exported_widget()
        self.width_box.setValue(max(16, 2 * w.width()))
        self.height_box.setValue(max(16, 2 * (w.height() + CAPTION_PX)))


class ExportMenu(QObject):
    def __init__(self, window, teach):
        super().__init__(window)
        self.main, self.teach = window, teach
        self.actions = {}
        self.last_path: Path | None = None
        self.last_dialog: QMessageBox | None = None

    def add_menu_actions(self, menu: QMenu, before=None) -> None:
        for fmt, label in (
            ("png", "Export view as &PNG…"),
            ("svg", "Export view as S&VG…"),
            ("data", "Export view's &data (CSV or JSON)…"),
        ):
            a = self.main.addAction(label)
            a.triggered.connect(lambda _=False, fmt=fmt: self.export_dialog(fmt))
            menu.insertAction(before, a) if before is not None else menu.addAction(a)
            self.actions[fmt] = a
        menu.aboutToShow.connect(self._name_the_view)

    def _name_the_view(self) -> None:
        title = self.teach.focused_panel().title
        for a in self.actions.values():
            a.setStatusTip(f"Exports “{title}” (the view last clicked); the dialog can pick another.")
            a.setToolTip(a.statusTip())

    def export_dialog(self, fmt: str) -> None:
        panels = self.teach.visible_panels()
        current = self.teach.focused_key()
        dlg = ExportDialog(
            fmt, panels, current if current in panels else next(iter(panels)), self.main.result, self.main
        )
        if dlg.exec() != QDialog.Accepted:
            return
        stem = (dlg.view.currentData() or "view").replace("_", "-")
        if fmt == "data":
            path, chosen = QFileDialog.getSaveFileName(
                self.main, "Export the view's data", f"{stem}.csv", "CSV table (*.csv);;JSON (*.json)"
            )
            if path and not Path(path).suffix:
                path += ".json" if "json" in chosen.lower() else ".csv"
        else:
            path, _ = QFileDialog.getSaveFileName(
                self.main, "Export the view", f"{stem}.{fmt}", f"{FORMATS[fmt]} (*.{fmt})"
            )
            if path and not path.lower().endswith(f".{fmt}"):
                path += f".{fmt}"
        if path:
            size = dlg.size if fmt == "png" else None
            self.export(dlg.panel, fmt, path, size=size, caption=dlg.caption.text(), part=dlg.part_key)

    def export(self, panel, fmt: str, path, *, size=None, caption: str | None = None, part: str = "panel") -> bool:
        if caption is None:
            caption = panel_caption(panel, self.main.result)
        try:
            self.last_path = export_view(panel, fmt, path, size=size, caption=caption, part=part)
        except UserError as e:
            box = QMessageBox(QMessageBox.Warning, "Could not export the view", str(e), QMessageBox.Ok, self.main)
            box.setAttribute(Qt.WA_DeleteOnClose)
            box.open()
            self.last_dialog = box
            return False
        self.main.statusBar().showMessage(f"Exported to {self.last_path}.", 6000)
        return True
