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

import logging
import math

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QFont, QTextCursor
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from explainer.core.types import AnalysisResult
from explainer.runtime.controller import Controller, engine_factory
from explainer.runtime.jobs import WorkerJobs
from explainer.ui import keyboard, why, window_layout, window_state
from explainer.ui import theme as th
from explainer.ui.banner import Banner
from explainer.ui.export_ui import ExportMenu
from explainer.ui.live_area import LiveArea
from explainer.ui.panels.attention import AttentionPanel
from explainer.ui.panels.base import Panel
from explainer.ui.panels.embeddings import EmbeddingsPanel
from explainer.ui.panels.next_token import NextTokenPanel
from explainer.ui.panels.tokens import TokensPanel
from explainer.ui.presenter import CaptionStrip, Presenter, is_text_input
from explainer.ui.scenes_ui import SceneMenu
from explainer.ui.teach_area import TeachArea
from explainer.ui.text_flow import TextFlow
from explainer.ui.view_state import LIVE, LIVE_PANELS, ViewState
from explainer.ui.widgets.labels import SteadyBox
from explainer.ui.widgets.status_bar import StatusBar
from explainer.ui.window_menus import build_menus
from explainer.ui.window_settings import (  # noqa: F401
    DEFAULT_TEXT,
    app_settings,
    restore_settings,
    save_settings,
    saved_theme,
)

log = logging.getLogger(__name__)

BUSY_DELAY_MS = 150
INLINE_HELP_SIZE = (1600, 1000)  # from this window size on, the explanations show under the titles by default


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


class MainWindow(QMainWindow):
    resultShown = Signal(object)  # AnalysisResult, after every panel has it
    themeChanged = Signal(object)  # Theme, after the live panels have it

    def __init__(
        self, controller: Controller, *, text: str | None = None, device: str = "auto", backend: str = "torch"
    ):
        super().__init__()
        self.controller = controller
        self.device, self.backend = device, backend
        self.theme = saved_theme()
        self._themed: th.Theme | None = None  # the theme the panels were last given
        app = QApplication.instance()
        if app is not None:  # the style sheet once the widgets exist (see th.apply_palette)
            th.apply_palette(app, self.theme)
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
        window_layout.EditorRoom(self)  # a bar shown under the editor takes no room from its lines
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
        sb = StatusBar(self)
        self.setStatusBar(sb)
        self.status_model, self.status_device = QLabel("loading the model…"), QLabel()
        self.status_tokens, self.status_latency = QLabel(), QLabel()
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # indeterminate
        self.busy.setMaximumSize(90, 12)
        self.busy.setTextVisible(False)
        self.busy.setToolTip("The model is working on the newest text")
        self.busy.hide()
        for w in (self.busy, self.status_tokens, self.status_latency, self.status_model, self.status_device):
            sb.addPermanentWidget(SteadyBox(w) if isinstance(w, QLabel) else w)  # new numbers: no new layout
        self._busy_timer = QTimer(self)
        self._busy_timer.setSingleShot(True)
        self._busy_timer.setInterval(BUSY_DELAY_MS)
        self._busy_timer.timeout.connect(self.busy.show)

        # --- presenter mode, scenes, export, menus ---
        self.presenter = Presenter(self, self.caption)
        self.scenes = SceneMenu(self)
        self.exports = ExportMenu(self, self.teach)
        self.flow = TextFlow(self)  # caret, pins, continuing the text, undo
        build_menus(self)
        why.install(self)  # head knock-out, attribution, two texts
        keyboard.install(self)  # Tab leaves the editor; a ring shows where the keyboard is
        self._connect()
        restore_settings(self, text)
        if app is not None:  # (restore_settings applies another saved theme itself)
            th.apply_theme(app, self.theme)
        # autosave the text, scene and settings every ~3 s and on close, and
        # restore them now, also after a crash or kill (an explicit ``text`` wins). See ui/autosave.py.
        from explainer.ui import autosave

        self.autosaver = autosave.attach(self, restore_text=text is None)

    # --- construction -----------------------------------------------------------------------------------------
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
        self.live.focusRequested.connect(self.toggle_focus)
        self.live.droppedChanged.connect(self._on_live_dropped_changed)
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
        # the view, hero and focus are shown at once; a user who changes them before the text is analysed keeps
        # the change (only what needs the tokens is applied again)
        again = {k: v for k, v in fields.items() if k not in ("view", "hero", "focus")}
        self._pending_view = None if ready else (text, again)

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
        typing = is_text_input(QApplication.focusWidget())
        if self.presenter.active:
            self.teach.show_view(key)
            if not typing:  # the hero that had the keyboard is hidden: Qt gives it to the text, where 2 is a digit
                self.presenter.keyboard_to_views()
        else:
            self.view.set_focus("" if self.view.focus == key else key)
            if self.view.focus:
                self.view.set_view(LIVE)
                if not typing:  # the keys go on to the panel brought forward (↑ ↓ Enter on the next token's bars)
                    self.panels[key].keyboard_target().setFocus(Qt.ShortcutFocusReason)

    def escape(self) -> None:
        """Esc: out of presenter mode; else unpin a pinned position; else all panels again."""
        if self.presenter.active:
            self.presenter.leave()
        elif self.view.selected >= 0:
            self.view.set_selected(-1)
        else:
            self.view.set_focus("")

    def _on_live_dropped_changed(self, key: str) -> None:
        """Say which panel a small window leaves out and how to see it (and take it back when all fit again)."""
        bar = self.statusBar()
        if key and self.isVisible() and not self.presenter.active:  # presenter mode shows one view anyway
            keys = LIVE_PANELS.index(key) + 1
            name = self.panels[key].title.split(":")[0].lower()
            bar.showMessage(f"Small window: {name} hidden; press {keys} to see it.", 10000)
        elif not key and bar.currentMessage().startswith("Small window:"):
            bar.clearMessage()

    def _on_view_layout_changed(self, *_args) -> None:
        self.apply_view_layout()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        window_layout.fit_vsplit(self)

    def reset_layout(self) -> None:
        self.layout_auto = True
        self.live.reset()
        window_layout.fit_vsplit(self)

    def _on_vsplit_moved(self, *_args) -> None:
        self.layout_auto = False
        self.live.auto = False

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.help_default_pending:
            self.help_default_pending = False
            big = self.width() >= INLINE_HELP_SIZE[0] and self.height() >= INLINE_HELP_SIZE[1]
            self.presenter.set_normal_help(big)  # (presenting: for the normal window, after presenter mode)
        window_layout.fit_vsplit(self)

    def closeEvent(self, event) -> None:
        save_settings(self)
        self._busy_timer.stop()
        self.controller.shutdown()
        super().closeEvent(event)

    # --- view -----------------------------------------------------------------------------------------------
    def set_theme(self, theme: th.Theme, style_sheet: bool = True) -> None:
        """``theme`` on the application and every panel. ``style_sheet=False``: its palette only, for a caller that
        sets the application's style sheet (``th.style_sheet``) next, styling the widgets once for several changes."""
        if theme == self._themed:  # every panel has it (the settings, the autosave and scenes restore it again;
            return  # the plots' axes measure themselves anew for each new pen: ~0.05 s a time)
        presenter = getattr(self, "presenter", None)
        if style_sheet and presenter is not None and presenter.scale != 1.0:
            presenter.restyle(theme)  # zoomed fonts: a new style sheet alone would put the unzoomed ones back
            return
        self._themed = theme
        self.theme = theme
        app = QApplication.instance()
        if app is not None:
            (th.apply_theme if style_sheet else th.apply_palette)(app, theme)
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

    def on_theme_action(self, action: QAction) -> None:
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
        self.flow.on_result(result)
        if self.banner.kind == "error":
            self.banner.hide()
            self.banner.kind = ""
        att = result.attention
        self.view.fit_to(result.n_tokens, att.n_layers, att.n_heads)
        self.flow.update_caret()
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
        # lay out what the new result changed now, before the window is drawn: a layout request handled after the
        # drawing would draw the widgets it moves (and the labels it measures) a second time
        QApplication.sendPostedEvents(None, QEvent.LayoutRequest)
        self.resultShown.emit(result)

    def _on_controller_error(self, message: str) -> None:
        after = (
            "The picture shows the last text that worked."
            if self.result is not None
            else "Nothing is shown until a text can be analysed."
        )
        self.banner.show_message("error", f"{message} {after}", self.theme)

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

    def open_model(self, path: str) -> None:
        self.controller.load_model(engine_factory(path, device=self.device, backend=self.backend))

    # --- the window's room (ui.window_layout) -----------------------------------------------------------------
    def fit_editor(self, max_lines: int) -> None:
        window_layout.fit_editor(self, max_lines)

    def save_splitters(self) -> dict:
        return window_layout.save_splitters(self)

    def restore_splitters(self, states: dict) -> None:
        window_layout.restore_splitters(self, states)
