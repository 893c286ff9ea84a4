"""File ▸ Export view… (Ctrl+E): one view as PNG, SVG or data, for a slide, with a caption.

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
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
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
from explainer.ui import file_dialogs
from explainer.ui.export import CAPTION_PX, caption_for, export_data, export_png, export_svg
from explainer.ui.keyboard import focus_kept

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
    """Which view, in which format, its caption, and for a picture the part and (PNG) the size in pixels."""

    def __init__(
        self, fmt: str, panels: dict, current: str, result, parent: QWidget | None = None, part: str | None = None
    ):
        super().__init__(parent)
        self.setWindowTitle("Export view")
        self.panels, self.result = panels, result
        self._wanted_part = part  # the part chosen last time, where this view has it
        form = self.form = QFormLayout(self)
        self.view = QComboBox()
        for key, p in panels.items():
            self.view.addItem(p.title, key)
        self.view.setCurrentIndex(max(0, self.view.findData(current)))
        form.addRow("&View:", self.view)
        self.format = QComboBox()
        for key, label in FORMATS.items():
            self.format.addItem(label, key)
        self.format.setCurrentIndex(max(0, self.format.findData(fmt)))
        form.addRow("&Format:", self.format)
        self.caption = QLineEdit()
        self.caption.setMinimumWidth(480)
        form.addRow("&Caption:", self.caption)
        self.part = QComboBox()
        for key, label in PARTS.items():
            self.part.addItem(label, key)
        form.addRow("&Show:", self.part)
        self.width_box, self.height_box = QSpinBox(), QSpinBox()
        for box in (self.width_box, self.height_box):
            box.setRange(16, 16000)
            box.setSuffix(" px")
        self.size_row = QWidget()
        row = QHBoxLayout(self.size_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.width_box)
        row.addWidget(QLabel("×"))
        row.addWidget(self.height_box)
        row.addStretch(1)
        form.addRow("Si&ze:", self.size_row)
        self.note = QLabel()
        form.addRow("", self.note)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.button(QDialogButtonBox.Ok).setText("Export…")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.view.currentIndexChanged.connect(self._on_view_changed)
        self.part.currentIndexChanged.connect(self._on_part_changed)
        self.format.currentIndexChanged.connect(self._on_format_changed)
        self._on_view_changed()
        self._on_format_changed()

    @property
    def fmt(self) -> str:
        """ "png", "svg" or "data"."""
        return self.format.currentData()

    def _on_format_changed(self, *_args) -> None:
        fmt = self.fmt
        self.form.setRowVisible(self.part, fmt != "data")
        self.form.setRowVisible(self.size_row, fmt == "png")
        self.note.setText(
            {
                "png": "Default size: twice the size on screen, sharp on a slide.",
                "svg": "A vector drawing: sharp at any size.",
                "data": "CSV: the table alone, for spreadsheets. JSON: the table with the caption.",
            }[fmt]
        )
        self.adjustSize()

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
        part = self._wanted_part if self._wanted_part in PARTS else "plot"
        self.part.setCurrentIndex(self.part.findData(part if has_plot else "panel"))
        self._on_part_changed()

    def _on_part_changed(self, *_args) -> None:
        w = self._exported_widget()
        self.width_box.setValue(max(16, 2 * w.width()))
        self.height_box.setValue(max(16, 2 * (w.height() + CAPTION_PX)))


class ExportMenu(QObject):
    """File ▸ Export view… (Ctrl+E). The dialog starts with the view, format and part chosen last time (kept in
    the window's settings): the same view as long as no other view was clicked since, else the one clicked."""

    def __init__(self, window, teach):
        super().__init__(window)
        self.main, self.teach = window, teach
        self.last_path: Path | None = None
        self.last_dialog: QMessageBox | None = None
        self.dialog: ExportDialog | None = None

    def add_menu_actions(self, menu: QMenu, before=None) -> None:
        a = self.action = self.main.addAction("&Export view…")
        a.setShortcut(QKeySequence("Ctrl+E"))
        a.setShortcutContext(Qt.WindowShortcut)
        a.triggered.connect(lambda _=False: self.export_dialog())
        menu.insertAction(before, a) if before is not None else menu.addAction(a)
        menu.aboutToShow.connect(self._name_the_view)

    def _name_the_view(self) -> None:
        title = self.teach.focused_panel().title
        self.action.setStatusTip(f"Exports “{title}” (the view last clicked) as a picture or its numbers.")
        self.action.setToolTip(self.action.statusTip())

    def _remembered(self) -> dict:
        from explainer.ui.window_settings import app_settings

        s = app_settings()
        return {k: str(s.value(f"export/{k}", "")) for k in ("format", "view", "part", "clicked")}

    def _remember(self, **values) -> None:
        from explainer.ui.window_settings import app_settings

        s = app_settings()
        for k, v in values.items():
            s.setValue(f"export/{k}", v)
        s.sync()

    def export_dialog(self, fmt: str | None = None) -> None:
        """The dialog (``fmt``: start with this format, else the one used last), then the file."""
        panels = self.teach.visible_panels()
        clicked = self.teach.focused_key()
        last = self._remembered()
        view = last["view"] if last["clicked"] == clicked and last["view"] in panels else clicked
        fmt = fmt or (last["format"] if last["format"] in FORMATS else "png")
        self.dialog = dlg = ExportDialog(
            fmt, panels, view if view in panels else next(iter(panels)), self.main.result, self.main, last["part"]
        )
        with focus_kept(self.main):
            accepted = dlg.exec() == QDialog.Accepted
        if not accepted:
            return
        fmt, key = dlg.fmt, dlg.view.currentData() or "view"
        self._remember(format=fmt, view=key, part=dlg.part_key, clicked=clicked)
        stem = key.replace("_", "-")
        if fmt == "data":
            path, chosen = file_dialogs.save_file(
                self.main, "export", "Export the view's data", f"{stem}.csv", "CSV table (*.csv);;JSON (*.json)"
            )
            if path and not Path(path).suffix:
                path += ".json" if "json" in chosen.lower() else ".csv"
        else:
            path, _ = file_dialogs.save_file(
                self.main, "export", "Export the view", f"{stem}.{fmt}", f"{FORMATS[fmt]} (*.{fmt})"
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
