"""The main window: the text editor on top, four linked panels below, a status bar with the model and timings.

The window only draws. Keystrokes go to the :class:`~explainer.runtime.controller.Controller`; every fresh
``AnalysisResult`` goes to every panel. Hover / selection in any panel is forwarded to all panels. Layout,
theme, text and panel options are restored at the next start (QSettings, organisation "explainer").
"""

from __future__ import annotations

import logging
import math

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QFont, QKeySequence, QTextCursor
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from explainer.core.types import AnalysisResult, Token
from explainer.runtime.controller import Controller, engine_factory
from explainer.ui import theme as th
from explainer.ui.panels.attention import AttentionPanel
from explainer.ui.panels.base import Panel
from explainer.ui.panels.embeddings import EmbeddingsPanel
from explainer.ui.panels.next_token import NextTokenPanel
from explainer.ui.panels.tokens import TokensPanel

log = logging.getLogger(__name__)

DEFAULT_TEXT = "How many r's are in strawberry?"
BUSY_DELAY_MS = 150
SETTINGS_VERSION = 4  # bump when the splitter layout changes


def app_settings() -> QSettings:
    return QSettings(QSettings.IniFormat, QSettings.UserScope, "explainer", "explainer")


def describe_architecture(info) -> str:
    """One line on how the model is built and what starts a text, for the status bar's tooltip."""
    arch = {"llama": "Llama", "qwen2": "Qwen2", "gpt2": "GPT-2"}.get(info.arch, info.arch)
    pos = "learned positions" if info.positions == "learned" else "rotary positions"
    norm = "LayerNorm" if info.norm == "layer" else "RMSNorm"
    start = info.start.description if info.start is not None else ""
    return f"{arch}: {pos}, {norm}, {'tied' if info.tied else 'separate'} output embeddings. {start}".strip()


def format_params(n: int) -> str:
    if n >= 1e9:
        return f"{n / 1e9:.2f} B"
    if n >= 1e6:
        return f"{n / 1e6:.1f} M"
    return f"{n / 1e3:.1f} k"


class Banner(QFrame):
    """A hideable one-line message under the editor (analysis errors, model loading)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("banner")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 4, 4, 4)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(True)
        close = QToolButton(text="✕")
        close.setAutoRaise(True)
        close.setToolTip("Hide this message")
        close.clicked.connect(self.hide)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.progress)
        lay.addWidget(close)
        self.kind = ""
        self.hide()

    def show_message(self, kind: str, text: str, theme: th.Theme, fraction: float | None = None) -> None:
        self.kind = kind
        bg = th.ERROR_BG["dark" if theme.is_dark else "light"] if kind == "error" else theme.surface
        self.setStyleSheet(f"QFrame#banner {{ background: {bg}; border: 1px solid {theme.grid}; border-radius: 6px; }}")
        self.label.setText(("⚠ " if kind == "error" else "") + text)
        self.progress.setVisible(fraction is not None)
        if fraction is not None:
            self.progress.setValue(int(round(100 * max(0.0, min(1.0, fraction)))))
        self.show()


class MainWindow(QMainWindow):
    resultShown = Signal(object)  # AnalysisResult, after every panel has it
    themeChanged = Signal(object)  # Theme, after the live panels have it

    def __init__(
        self, controller: Controller, *, text: str | None = None, device: str = "auto", backend: str = "torch"
    ):
        super().__init__()
        self.controller = controller
        self.device, self.backend = device, backend
        self.theme = th.LIGHT
        self.result: AnalysisResult | None = None
        self.setWindowTitle("explainer")
        self.setMinimumSize(960, 600)

        # --- editor and banner ---
        top = QWidget()
        top_lay = QVBoxLayout(top)
        top_lay.setContentsMargins(6, 6, 6, 2)
        top_lay.setSpacing(4)
        self.editor = QPlainTextEdit()
        font = QFont(self.editor.font())
        font.setPointSizeF(th.EDITOR_FONT_PT)
        self.editor.setFont(font)
        self.editor.setPlaceholderText("Type any text here…")
        self.editor.setMinimumHeight(int(self.editor.fontMetrics().lineSpacing() * 1.6 + 12))
        self.banner = Banner()
        top_lay.addWidget(self.editor, 1)
        top_lay.addWidget(self.banner)

        # --- panels ---
        self.tokens = TokensPanel()
        self.next_token = NextTokenPanel()
        self.attention = AttentionPanel()
        self.embeddings = EmbeddingsPanel()
        self.panels: dict[str, Panel] = {
            "tokens": self.tokens,
            "embeddings": self.embeddings,
            "attention": self.attention,
            "next_token": self.next_token,
        }
        # editor on top; below: [Tokens over Next token] | [Attention over Embeddings]
        self.left_split = QSplitter(Qt.Vertical)
        self.left_split.addWidget(self.tokens)
        self.left_split.addWidget(self.next_token)
        self.right_split = QSplitter(Qt.Vertical)
        self.right_split.addWidget(self.attention)
        self.right_split.addWidget(self.embeddings)
        self.hsplit = QSplitter(Qt.Horizontal)
        self.hsplit.addWidget(self.left_split)
        self.hsplit.addWidget(self.right_split)
        self.vsplit = QSplitter(Qt.Vertical)
        self.vsplit.addWidget(top)
        self.vsplit.addWidget(self.hsplit)
        self.splitters = {
            "vsplit": self.vsplit,
            "hsplit": self.hsplit,
            "left": self.left_split,
            "right": self.right_split,
        }
        for sp in self.splitters.values():
            sp.setChildrenCollapsible(False)
            sp.setHandleWidth(6)
        self.setCentralWidget(self.vsplit)
        self._default_layout()

        # --- status bar ---
        sb = self.statusBar()
        self.status_model, self.status_device = QLabel("loading the model…"), QLabel()
        self.status_tokens, self.status_latency = QLabel(), QLabel()
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # indeterminate
        self.busy.setMaximumSize(90, 12)
        self.busy.setTextVisible(False)
        self.busy.setToolTip("The model is working on the newest text")
        self.busy.hide()
        for w in (self.busy, self.status_tokens, self.status_latency, self.status_model, self.status_device):
            if isinstance(w, QLabel):
                w.setContentsMargins(10, 0, 10, 0)
            sb.addPermanentWidget(w)
        self._busy_timer = QTimer(self)
        self._busy_timer.setSingleShot(True)
        self._busy_timer.setInterval(BUSY_DELAY_MS)
        self._busy_timer.timeout.connect(self.busy.show)

        self._build_menus()
        self._connect()
        self._restore(text)
        # teaching views as tabs, presenter mode, scenes, export, backend menu (ui/integration.py)
        from explainer.ui import integration

        integration.install(self, app_settings())
        # autosave the text, scene and settings every ~3 s and on close, and
        # restore them now, also after a crash or kill (an explicit ``text`` wins). See ui/autosave.py.
        from explainer.ui import autosave

        self.autosaver = autosave.attach(self, restore_text=text is None)

    # --- construction -----------------------------------------------------------------------------------------
    def _default_layout(self) -> None:
        self.vsplit.setSizes([100, 860])
        self.hsplit.setSizes([720, 880])
        self.left_split.setSizes([310, 550])
        self.right_split.setSizes([520, 340])

    def _build_menus(self) -> None:
        m = self.file_menu = self.menuBar().addMenu("&File")
        act = m.addAction("&Open model…", self.open_model_dialog)
        act.setShortcut(QKeySequence.Open)
        m.addAction("Save &screenshot…", self._save_screenshot_dialog)
        m.addSeparator()
        act = m.addAction("&Quit", self.close)
        act.setShortcut(QKeySequence.Quit)
        v = self.view_menu = self.menuBar().addMenu("&View")
        group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        for name, label in (("light", "&Light theme"), ("dark", "&Dark theme")):
            a = v.addAction(label)
            a.setCheckable(True)
            a.setData(name)
            group.addAction(a)
            self.theme_actions[name] = a
        group.triggered.connect(self._on_theme_action)
        v.addSeparator()
        self.help_action = v.addAction("Show \"What am I seeing?\" texts")
        self.help_action.setCheckable(True)
        self.help_action.setChecked(True)
        self.help_action.toggled.connect(self.set_help_visible)
        v.addAction("&Reset layout", self._default_layout)

    def _connect(self) -> None:
        c = self.controller
        self.editor.textChanged.connect(self._on_editor_changed)
        c.resultReady.connect(self._on_controller_result)
        c.errorOccurred.connect(self._on_controller_error)
        c.modelLoaded.connect(self._on_controller_model_loaded)
        c.modelLoadFailed.connect(self._on_controller_load_failed)
        c.progressChanged.connect(self._on_controller_progress)
        c.busyChanged.connect(self._on_controller_busy)
        c.projectionReady.connect(self._on_controller_projection_ready)
        for p in self.panels.values():
            p.tokenHovered.connect(self._on_panel_token_hovered)
            p.tokenSelected.connect(self._on_panel_token_selected)
        self.next_token.candidateChosen.connect(self._on_next_token_candidate)

    # --- settings -------------------------------------------------------------------------------------------
    def _restore(self, text: str | None) -> None:
        s = app_settings()
        self.geometry_restored = False
        self.set_theme(th.THEMES.get(str(s.value("view/theme", "light")), th.LIGHT))
        if int(s.value("settings/version", 0)) == SETTINGS_VERSION:
            for key, split in self.splitters.items():
                state = s.value(f"window/{key}")
                if isinstance(state, QByteArray):
                    split.restoreState(state)
            geom = s.value("window/geometry")
            if isinstance(geom, QByteArray):
                self.geometry_restored = self.restoreGeometry(geom)
        # explanations: as last time; the first time, on unless the window is small (decided when shown)
        self._help_default_pending = not s.contains("view/help")
        self.help_action.setChecked(str(s.value("view/help", "true")).lower() == "true")
        self.tokens.set_tokenizer(str(s.value("tokens/tokenizer", "smollm2")))
        self.tokens.set_heat(str(s.value("tokens/heat", "false")).lower() == "true")
        if text is None:
            text = str(s.value("editor/text", DEFAULT_TEXT))
        self.editor.setPlainText(text)
        self.editor.moveCursor(QTextCursor.End)

    def save_settings(self) -> None:
        s = app_settings()
        s.setValue("settings/version", SETTINGS_VERSION)
        s.setValue("window/geometry", self.saveGeometry())
        for key, split in self.splitters.items():
            s.setValue(f"window/{key}", split.saveState())
        s.setValue("view/theme", self.theme.name)
        s.setValue("view/help", "true" if self.help_action.isChecked() else "false")
        s.setValue("tokens/tokenizer", self.tokens.tokenizer_name)
        s.setValue("tokens/heat", "true" if self.tokens.heat.isChecked() else "false")
        s.setValue("editor/text", self.editor.toPlainText())
        s.sync()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._help_default_pending:
            self._help_default_pending = False
            self.set_help_visible(self.height() >= 900)

    def closeEvent(self, event) -> None:
        self.save_settings()
        self._busy_timer.stop()
        self.controller.shutdown()
        super().closeEvent(event)

    # --- view -----------------------------------------------------------------------------------------------
    def set_theme(self, theme: th.Theme) -> None:
        self.theme = theme
        app = QApplication.instance()
        if app is not None:
            th.apply_theme(app, theme)
        self.theme_actions[theme.name].setChecked(True)
        for p in self.panels.values():
            p.set_theme(theme)
        self.themeChanged.emit(theme)
        if self.banner.isVisible():
            self.banner.show_message(
                self.banner.kind,
                self.banner.label.text().lstrip("⚠ "),
                theme,
                self.banner.progress.value() / 100 if self.banner.progress.isVisible() else None,
            )

    def _on_theme_action(self, action: QAction) -> None:
        self.set_theme(th.THEMES[action.data()])

    def resize_to_fit(self, width: int = 1600, height: int = 1000) -> None:
        """The default size, shrunk to the screen's available area (a laptop may be smaller)."""
        screen = self.screen() or QApplication.primaryScreen()
        if screen is not None:
            avail = screen.availableGeometry()
            width, height = min(width, avail.width()), min(height, avail.height())
        self.resize(max(width, self.minimumWidth()), max(height, self.minimumHeight()))

    def set_help_visible(self, visible: bool) -> None:
        self.help_action.setChecked(visible)
        for p in self.panels.values():
            p.set_help_visible(visible)

    def set_text(self, text: str) -> None:
        self.editor.setPlainText(text)
        self.editor.moveCursor(QTextCursor.End)

    # --- slots ----------------------------------------------------------------------------------------------
    def _on_editor_changed(self) -> None:
        self.controller.set_text(self.editor.toPlainText())

    def _on_controller_result(self, result: AnalysisResult) -> None:
        self.result = result
        if self.banner.kind == "error":
            self.banner.hide()
            self.banner.kind = ""
        for p in self.panels.values():
            try:
                p.set_result(result)
            except Exception:
                log.exception("panel %s failed to draw", type(p).__name__)
        typed = sum(1 for t in result.tokens if not t.added)
        self.status_tokens.setText(f"{typed} tokens" + (" (cut)" if result.truncated else ""))
        lat = self.controller.last_latency_ms
        self.status_latency.setText(
            f"update {lat:.0f} ms (model {result.latency_ms:.0f} ms)" if math.isfinite(lat) else ""
        )
        self.status_device.setText(f"{result.device} · {result.backend}")
        self.resultShown.emit(result)

    def _on_controller_error(self, message: str) -> None:
        self.banner.show_message("error", f"{message} The picture shows the last text that worked.", self.theme)

    def _on_controller_model_loaded(self, info) -> None:
        m = self.controller.model
        self.setWindowTitle(f"explainer — {info.name}")
        self.status_model.setText(f"{info.name} · {format_params(info.n_params)} parameters")
        self.status_model.setToolTip(
            f"{info.n_layers} layers, {info.n_heads} heads, width {info.d_model}, "
            f"vocabulary {info.vocab_size:,}\n{describe_architecture(info)}\n{info.path}"
        )
        self.status_device.setText(f"{m.device} · {m.backend}" if m else "")
        if m is not None and m.tokenizer is not None:
            self.next_token.set_token_decoder(m.tokenizer.token_bytes)
        if m is not None:
            self.embeddings.set_projector(m.projector)  # cached axes show at once; the rest after preparing
        if self.banner.kind == "progress":
            self.banner.hide()
            self.banner.kind = ""

    def _on_controller_projection_ready(self, projector) -> None:
        if projector is not None and projector is self.embeddings.projector:
            self.embeddings.set_projector(projector)  # every layer's axes exist now

    def _on_controller_load_failed(self, message: str) -> None:
        if self.banner.kind == "progress":
            self.banner.hide()
        if self.controller.model is None:
            self.status_model.setText("no model")
            self.banner.show_message("error", f"The model could not be loaded: {message}", self.theme)
            return
        box = QMessageBox(
            QMessageBox.Warning,
            "Could not open the model",
            f"{message}\n\nThe current model stays in use.",
            QMessageBox.Ok,
            self,
        )
        box.setAttribute(Qt.WA_DeleteOnClose)
        box.open()
        self.last_dialog = box

    def _on_controller_progress(self, message: str, fraction: float) -> None:
        self.banner.show_message(
            "progress", f"Preparing the model (only slow the first time): {message}", self.theme, fraction
        )

    def _on_controller_busy(self, busy: bool) -> None:
        if busy:
            if not self.busy.isVisible() and not self._busy_timer.isActive():
                self._busy_timer.start()
        else:
            self._busy_timer.stop()
            self.busy.hide()

    def _on_panel_token_hovered(self, position: int) -> None:
        for p in self.panels.values():
            p.highlight_token(position)

    def _on_panel_token_selected(self, position: int) -> None:
        for p in self.panels.values():
            p.select_position(position)

    def _on_next_token_candidate(self, token_id: int) -> None:
        tok = self.controller.tokenizer
        if tok is None:
            return
        data = tok.token_bytes(token_id)
        t = Token(token_id, data, 0, 0, special=bool(getattr(tok, "is_special", lambda i: False)(token_id)))
        if t.special:
            self.statusBar().showMessage(
                f"{t.text} is a special token (it marks the end of a turn or text); it is not typed as text.", 6000
            )
            return
        if t.incomplete:
            self.statusBar().showMessage(
                f"This token is only part of a character (bytes {t.display}); it cannot be added as text on its own.",
                6000,
            )
            return
        for p in self.panels.values():
            p.select_position(-1)  # show the prediction after the new end
        cursor = self.editor.textCursor()
        cursor.movePosition(QTextCursor.End)
        cursor.insertText(t.text)
        self.editor.setTextCursor(cursor)

    # --- dialogs --------------------------------------------------------------------------------------------
    def open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Open a model: a GGUF file, or the config.json of a model folder",
            "",
            "Models (*.gguf config.json);;GGUF models (*.gguf);;Model folders (config.json);;All files (*)",
        )
        if path:
            self.open_model(path)

    def open_model(self, path: str) -> None:
        self.controller.load_model(engine_factory(path, device=self.device, backend=self.backend))

    def _save_screenshot_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save a screenshot", "explainer.png", "PNG images (*.png)")
        if path:
            self.grab().save(path)
