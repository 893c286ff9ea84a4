"""The main window: the text editor on top, the views as tabs below (the four linked live panels first, then the
teaching views), a status bar with the model and timings; presenter mode, scenes and export in its menus.

The window only draws. Keystrokes go to the :class:`~explainer.runtime.controller.Controller`; every fresh
``AnalysisResult`` goes to every panel. What is hovered and selected, which head is shown and which view is where
live in one :class:`~explainer.ui.view_state.ViewState` (``window.view``) that panels follow and send requests
to. :meth:`MainWindow.state` / :meth:`MainWindow.restore` read and write it with the panels' own controls, for
scenes, the autosave and the settings kept at the next start (QSettings, organisation "explainer"; also the
window's geometry, the splitters once the user has moved them, and whether the explanations show inline).

Layout: the live panels share the room by a rule computed from the window's size (``ui.live_area``); any one of
them can be given the whole area (Focus: double-click its title, keys 1–4, View ▸ Focus; Esc or the same key
again brings the others back), and presenter mode shows one hero view (``ui.presenter``).
"""

from __future__ import annotations

import json
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
from explainer.runtime.jobs import WorkerJobs
from explainer.ui import theme as th
from explainer.ui import window_state
from explainer.ui.analysis_menu import AnalysisMenu
from explainer.ui.export_ui import ExportMenu
from explainer.ui.live_area import LiveArea
from explainer.ui.panels.attention import AttentionPanel
from explainer.ui.panels.base import Panel
from explainer.ui.panels.embeddings import EmbeddingsPanel
from explainer.ui.panels.next_token import NextTokenPanel
from explainer.ui.panels.tokens import TokensPanel
from explainer.ui.presenter import CaptionStrip, Presenter
from explainer.ui.scenes_ui import SceneMenu
from explainer.ui.teach_area import TeachArea
from explainer.ui.view_state import LIVE, LIVE_PANELS, ViewState

log = logging.getLogger(__name__)

DEFAULT_TEXT = "How many r's are in strawberry?"
BUSY_DELAY_MS = 150
SETTINGS_VERSION = 5  # bump when the splitter layout changes
EDITOR_LINES = 2  # the editor's height in the normal window (more lines scroll; drag the handle for more)
INLINE_HELP_SIZE = (1600, 1000)  # from this window size on, the explanations show under the titles by default


def app_settings() -> QSettings:
    return QSettings(QSettings.IniFormat, QSettings.UserScope, "explainer", "explainer")


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
        self.view = ViewState(self)
        self._pending_view: tuple[str, dict] | None = None  # view fields to apply again once their text is analysed
        self.setWindowTitle("explainer")
        self.setMinimumSize(800, 560)

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

        # --- panels, the live area, the teaching tabs ---
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
        for p in self.panels.values():
            p.bind_state(self.view)
        self.live = LiveArea({k: self.panels[k] for k in LIVE_PANELS})
        self.jobs = WorkerJobs(controller, self)  # functions run with the engine on the model's thread
        self.teach = TeachArea(self, self.live, self.view)
        self.vsplit = QSplitter(Qt.Vertical)
        self.vsplit.addWidget(top)
        self.vsplit.addWidget(self.teach)
        self.vsplit.setChildrenCollapsible(False)
        self.vsplit.setHandleWidth(6)
        self.vsplit.splitterMoved.connect(self._on_vsplit_moved)
        self.splitters = {"vsplit": self.vsplit, **self.live.splitters}
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.vsplit, 1)
        self.caption = CaptionStrip()
        lay.addWidget(self.caption)
        self.setCentralWidget(central)

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

        # --- presenter mode, scenes, export, menus ---
        self.presenter = Presenter(self, self.caption)
        self.scenes = SceneMenu(self)
        self.exports = ExportMenu(self, self.teach)
        self._build_menus()
        self._connect()
        self._restore_settings(text)
        # autosave the text, scene and settings every ~3 s and on close, and
        # restore them now, also after a crash or kill (an explicit ``text`` wins). See ui/autosave.py.
        from explainer.ui import autosave

        self.autosaver = autosave.attach(self, restore_text=text is None)

    # --- construction -----------------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        m = self.file_menu = self.menuBar().addMenu("&File")
        act = m.addAction("&Open model…", self.open_model_dialog)
        act.setShortcut(QKeySequence.Open)
        m.addAction("Save &screenshot…", self._save_screenshot_dialog)
        for part in (self.scenes, self.exports):
            m.addSeparator()
            part.add_menu_actions(m)
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
        self.help_action = v.addAction('Show "What am I seeing?" under the titles')
        self.help_action.setCheckable(True)
        self.help_action.setChecked(True)
        self.help_action.setToolTip("Off: the explanations take no room and open from their buttons")
        self.help_action.toggled.connect(self.set_help_visible)
        self._build_focus_menu(v.addMenu("&Focus"))
        v.addAction("&Reset layout", self.reset_layout)
        v.addSeparator()
        self.teach.add_menu_actions(v)
        v.addSeparator()
        self.presenter.add_menu_actions(v)
        v.addSeparator()
        self.analysis = AnalysisMenu(self, v)

    def _build_focus_menu(self, menu) -> None:
        """Keys 1–4: that live panel alone (in presenter mode: the hero); Esc: all of them again."""
        self.focus_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        for i, key in enumerate(LIVE_PANELS):
            a = QAction(self.panels[key].title, self, checkable=True)
            a.setShortcut(QKeySequence(str(i + 1)))  # a text field takes the digit itself
            a.setShortcutContext(Qt.WindowShortcut)
            a.triggered.connect(lambda _=False, key=key: self.toggle_focus(key))
            group.addAction(a)
            menu.addAction(a)
            self.addAction(a)
            self.focus_actions[key] = a
        group.setExclusionPolicy(QActionGroup.ExclusionPolicy.ExclusiveOptional)
        menu.addSeparator()
        self.unfocus_action = QAction("All panels", self)
        self.unfocus_action.setShortcut(QKeySequence(Qt.Key_Escape))
        self.unfocus_action.setShortcutContext(Qt.WindowShortcut)
        self.unfocus_action.triggered.connect(self._on_escape)
        menu.addAction(self.unfocus_action)
        self.addAction(self.unfocus_action)

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
        self.next_token.candidateChosen.connect(self._on_next_token_candidate)
        self.live.focusRequested.connect(self.toggle_focus)
        self.view.focusChanged.connect(self._on_view_layout_changed)
        self.view.heroChanged.connect(self._on_view_layout_changed)
        self.view.viewChanged.connect(self._on_view_layout_changed)
        self.themeChanged.connect(self.teach.set_theme)
        self.themeChanged.connect(self.presenter.on_theme_changed)

    # --- the view state ---------------------------------------------------------------------------------------------
    def state(self) -> dict:
        """What the window shows, JSON-able (``ui.window_state``); scenes, the autosave and the settings use it."""
        return window_state.capture(self)

    def restore(self, state: dict, *, scene: bool = False) -> None:
        """Show ``state`` (from :meth:`state`, an older autosave or a scene: ``scene`` resets the panel controls it
        does not mention). Positions, layer and head are applied again once the editor's text is analysed."""
        state = window_state.upgrade(state)
        if scene:
            state = window_state.with_defaults(state)
        name = state.get("theme")
        if isinstance(name, str) and name in th.THEMES and not self.presenter.active:
            self.set_theme(th.THEMES[name])
        window_state.apply_panels(self, state)
        fields = window_state.view_fields(state)
        self.view.restore(fields)
        text = self.editor.toPlainText()
        r = self.result
        settings = self.controller.settings
        ready = (
            r is not None
            and r.text == text
            and (r.start_token, r.specials_parsed) == (settings.start_token, settings.parse_specials)
        )
        self._pending_view = None if ready else (text, fields)

    def apply_view_layout(self) -> None:
        """Show the live panel that has the room: presenter mode's hero, else the focused panel, else all four."""
        v = self.view
        if self.presenter.active:
            self.live.show_only(v.hero if v.view == LIVE else None)
        else:
            self.live.show_only(v.focus or None)
        for key, a in self.focus_actions.items():
            a.setChecked(key == (v.hero if self.presenter.active else v.focus))

    def toggle_focus(self, key: str) -> None:
        """Key 1–4 / a double-click on a title: that panel alone, or all panels when it already is. In presenter
        mode: that panel becomes the hero."""
        if self.presenter.active:
            self.teach.show_view(key)
        else:
            self.view.set_focus("" if self.view.focus == key else key)
            if self.view.focus:
                self.view.set_view(LIVE)

    def _on_escape(self) -> None:
        """Esc: out of presenter mode, else all panels again."""
        if self.presenter.active:
            self.presenter.leave()
        else:
            self.view.set_focus("")

    def _on_view_layout_changed(self, *_args) -> None:
        self.apply_view_layout()

    # --- layout -------------------------------------------------------------------------------------------------------
    def editor_height(self, lines: int) -> int:
        """The editor's part of the window for ``lines`` lines of text (its frame, margins and the banner)."""
        ed = self.editor
        fm = ed.fontMetrics()
        frame = 2 * ed.frameWidth() + 2 * ed.document().documentMargin()
        top = self.vsplit.widget(0)
        m = top.layout().contentsMargins()
        banner = self.banner.sizeHint().height() + top.layout().spacing() if self.banner.isVisible() else 0
        return int(lines * fm.lineSpacing() + frame + m.top() + m.bottom() + banner + 2)

    def fit_editor(self, max_lines: int) -> None:
        """Make the editor as tall as its text needs, up to ``max_lines`` lines (whole lines only)."""
        ed = self.editor
        fm, width = ed.fontMetrics(), max(1, ed.viewport().width() - 8)
        block, lines = ed.document().begin(), 0
        while block.isValid() and lines < max_lines:
            lines += max(1, math.ceil(fm.horizontalAdvance(block.text()) / width))
            block = block.next()
        need = self.editor_height(min(max(lines, 1), max_lines))
        total = sum(self.vsplit.sizes())
        if total > need:
            self.vsplit.setSizes([need, total - need])

    def reset_layout(self) -> None:
        self._layout_auto = True
        self.live.reset()
        self._fit_vsplit()

    def _fit_vsplit(self) -> None:
        if self._layout_auto and not self.presenter.active:
            total = sum(self.vsplit.sizes()) or self.height()
            need = self.editor_height(EDITOR_LINES)
            self.vsplit.setSizes([need, max(1, total - need)])

    def _on_vsplit_moved(self, *_args) -> None:
        self._layout_auto = False
        self.live.auto = False

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_vsplit()

    def save_splitters(self) -> dict:
        return {k: sp.saveState() for k, sp in self.splitters.items()}

    def restore_splitters(self, states: dict) -> None:
        for k, sp in self.splitters.items():
            st = states.get(k)
            if isinstance(st, QByteArray):
                sp.restoreState(st)

    # --- settings -------------------------------------------------------------------------------------------
    def _restore_settings(self, text: str | None) -> None:
        s = app_settings()
        self.geometry_restored = False
        self._layout_auto = True
        current = int(s.value("settings/version", 0)) == SETTINGS_VERSION
        self.set_theme(th.THEMES.get(str(s.value("view/theme", "light")), th.LIGHT))
        if current:
            geom = s.value("window/geometry")
            if isinstance(geom, QByteArray):
                self.geometry_restored = self.restoreGeometry(geom)
            if str(s.value("window/user_layout", "false")).lower() == "true":
                self.restore_splitters({k: s.value(f"window/{k}") for k in self.splitters})
                self._layout_auto = self.live.auto = False
        # explanations: as last time; the first time, inline only on a large window (decided when shown)
        self._help_default_pending = not (current and s.contains("view/help"))
        self.set_help_visible(not current or str(s.value("view/help", "true")).lower() == "true")
        saved = s.value("view/state")
        try:
            state = json.loads(saved) if isinstance(saved, str) else None
        except ValueError:
            state = None
        if state is None:  # settings of an older version: its few keys
            state = {
                "theme": str(s.value("view/theme", "light")),
                "view": str(s.value("view/current", LIVE)),
                "tokens": {
                    "tokenizer": str(s.value("tokens/tokenizer", "smollm2")),
                    "heat": str(s.value("tokens/heat", "false")).lower() == "true",
                },
            }
        if text is None:
            text = str(s.value("editor/text", DEFAULT_TEXT))
        self.editor.setPlainText(text)
        self.editor.moveCursor(QTextCursor.End)
        self.restore(state)

    def save_settings(self) -> None:
        s = app_settings()
        s.setValue("settings/version", SETTINGS_VERSION)
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/user_layout", "false" if self._layout_auto and self.live.auto else "true")
        for key, state in self.save_splitters().items():
            s.setValue(f"window/{key}", state)
        s.setValue("view/theme", self.theme.name)
        s.setValue("view/help", "true" if self.help_action.isChecked() else "false")
        s.setValue("view/state", json.dumps(self.state()))
        s.setValue("editor/text", self.editor.toPlainText())
        s.sync()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._help_default_pending:
            self._help_default_pending = False
            big = self.width() >= INLINE_HELP_SIZE[0] and self.height() >= INLINE_HELP_SIZE[1]
            self.set_help_visible(big)
        self._fit_vsplit()

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
        """The "What am I seeing?" paragraphs under the panels' titles (True) or as popovers only (False)."""
        self.help_action.blockSignals(True)
        self.help_action.setChecked(visible)
        self.help_action.blockSignals(False)
        for p in self.panels.values():
            p.set_help_visible(visible)
        if hasattr(self, "teach"):
            self.teach.set_help_visible(visible)
        if hasattr(self, "live"):
            self.live.fit()

    def set_text(self, text: str) -> None:
        self.editor.setPlainText(text)
        self.editor.moveCursor(QTextCursor.End)

    # --- slots ----------------------------------------------------------------------------------------------
    def _on_editor_changed(self) -> None:
        self.controller.set_text(self.editor.toPlainText())

    def _on_controller_result(self, result: AnalysisResult) -> None:
        first = self.result is None
        self.result = result
        if self.banner.kind == "error":
            self.banner.hide()
            self.banner.kind = ""
        att = result.attention
        self.view.fit_to(result.n_tokens, att.n_layers, att.n_heads)
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
        pending = self._pending_view
        if pending is not None and pending[0] == result.text:
            self._pending_view = None
            self.view.restore(pending[1])
        if first:
            self.live.fit()  # the panels know the model's size now
        self.resultShown.emit(result)

    def _on_controller_error(self, message: str) -> None:
        self.banner.show_message("error", f"{message} The picture shows the last text that worked.", self.theme)

    def _on_controller_model_loaded(self, info) -> None:
        m = self.controller.model
        self.setWindowTitle(f"explainer — {info.name}")
        self.status_model.setText(f"{info.name} · {format_params(info.n_params)} parameters")
        self.status_model.setToolTip(
            f"{info.n_layers} layers, {info.n_heads} heads, width {info.d_model}, "
            f"vocabulary {info.vocab_size:,}\n{info.path}"
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
        self.view.set_selected(-1)  # show the prediction after the new end
        cursor = self.editor.textCursor()
        cursor.movePosition(QTextCursor.End)
        cursor.insertText(t.text)
        self.editor.setTextCursor(cursor)

    # --- dialogs --------------------------------------------------------------------------------------------
    def open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a GGUF model", "", "GGUF models (*.gguf);;All files (*)")
        if path:
            self.open_model(path)

    def open_model(self, path: str) -> None:
        self.controller.load_model(engine_factory(path, device=self.device, backend=self.backend))

    def _save_screenshot_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save a screenshot", "explainer.png", "PNG images (*.png)")
        if path:
            self.grab().save(path)
