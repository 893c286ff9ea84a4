"""Presenter mode: large fonts, high contrast, no chrome, keys for scenes and zoom, and everything back after."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from explainer.ui import theme as th
from explainer.ui.presenter import high_contrast, presenter_scale

TEXT = "The cat sat on the mat."


@pytest.fixture
def window(make_main_window, wait_result):
    w = make_main_window(text=TEXT)
    wait_result(w, TEXT)
    w.presenter.fullscreen = False  # keep the test window's size
    return w


def _sizes(w):
    chips = w.tokens.view
    return {
        "app": QApplication.font().pointSizeF(),
        "editor": w.editor.font().pointSizeF(),
        "chips": chips._font.pointSizeF(),
        "bars": w.next_token.bars._font.pointSizeF(),
        "title": w.tokens._title.font().pointSizeF(),
        "table": w.teach.panels["lens"].table.font().pointSizeF(),
    }


def test_enter_and_leave_presenter_mode(qtbot, window):
    w = window
    before = _sizes(w)
    chip_w = w.tokens.view.chips[1].width
    w.set_help_visible(True)
    w.presenter.enter()
    assert w.presenter.active and w.presenter.action.isChecked()
    after = _sizes(w)
    scale = w.presenter.scale
    assert scale == pytest.approx(presenter_scale(w.height())) and scale > 1  # the test window is not full screen
    for k, v in before.items():
        assert after[k] == pytest.approx(v * scale), k
    assert w.tokens.view.chips[1].width > (1 + (scale - 1) / 2) * chip_w  # measured again with the larger font
    assert w.menuBar().isHidden() and w.statusBar().isHidden()
    assert not w.help_action.isChecked() and not w.tokens._help.isVisibleTo(w)
    assert w.theme == high_contrast(th.LIGHT) and w.theme.text == "#000000" and w.theme.name == "light"
    qtbot.keyClick(w.editor, Qt.Key_Escape)
    assert not w.presenter.active and not w.presenter.action.isChecked()
    assert _sizes(w) == pytest.approx(before)
    assert not w.menuBar().isHidden() and not w.statusBar().isHidden()
    assert w.help_action.isChecked() and w.theme is th.LIGHT


def test_f11_toggles_and_dark_stays_dark(qtbot, window):
    w = window
    w.set_theme(th.DARK)
    w.presenter.action.trigger()  # F11 / View ▸ Presenter mode
    assert w.presenter.active and w.theme.is_dark and w.theme.background == "#000000"
    w.presenter.action.trigger()
    assert not w.presenter.active and w.theme is th.DARK


def test_scene_keys_change_the_text(qtbot, window, wait_result):
    w = window
    lecture = w.scenes.lecture
    w.presenter.enter()
    qtbot.keyClick(w.editor, Qt.Key_PageDown)  # from no scene: the first
    assert w.editor.toPlainText() == lecture[0][1].text
    assert w.presenter.caption.isVisibleTo(w) and w.presenter.caption.title.text() == lecture[0][1].title
    qtbot.keyClick(w.editor, Qt.Key_PageDown)
    assert w.editor.toPlainText() == lecture[1][1].text
    qtbot.keyClick(w.editor, Qt.Key_PageUp)
    assert w.editor.toPlainText() == lecture[0][1].text
    wait_result(w, lecture[0][1].text)
    w.editor.clearFocus()  # outside a text field, N and P step too
    qtbot.keyClick(w, Qt.Key_N)
    assert w.editor.toPlainText() == lecture[1][1].text
    qtbot.keyClick(w, Qt.Key_P)
    assert w.editor.toPlainText() == lecture[0][1].text
    w.editor.setFocus()  # in the editor, N is a letter
    w.editor.moveCursor(w.editor.textCursor().MoveOperation.End)
    qtbot.keyClick(w.editor, Qt.Key_N)
    assert w.editor.toPlainText() == lecture[0][1].text + "n"
    w.presenter.leave()
    assert w.presenter.caption.isHidden()
    qtbot.keyClick(w.editor, Qt.Key_PageDown)  # outside presenter mode, PageDown is the editor's again
    assert w.scenes.index == 0


def test_scene_keys_reach_the_presenter_before_the_widget_with_the_keyboard(
    qtbot, make_main_window, wait_result, monkeypatch
):
    """PageDown on a slider steps the scene (the slider keeps its value); the keys are watched on the widget with the
    keyboard, not on every widget: a panel drawn again passes nothing through the presenter's filter."""
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QKeyEvent

    from explainer.ui import main_window
    from explainer.ui.presenter import Presenter

    seen = []

    class Watched(Presenter):
        def eventFilter(self, obj, event) -> bool:
            seen.append(obj)
            return super().eventFilter(obj, event)

    monkeypatch.setattr(main_window, "Presenter", Watched)
    w = make_main_window(text=TEXT)
    wait_result(w, TEXT)
    w.presenter.fullscreen = False
    w.presenter.enter()
    lecture = w.scenes.lecture

    def temperature(scene) -> float:
        return scene.panels.get("next_token", {}).get("temperature", 1.0)

    # a next-token scene whose next scene keeps the temperature: a changed slider would be the key's doing
    first = next(
        i
        for i, (_name, scene) in enumerate(lecture[:-1])
        if scene.view == "next_token" and temperature(scene) == temperature(lecture[i + 1][1])
    )
    w.scenes.open_lecture(first)  # the next-token panel fills the screen
    slider = w.panels["next_token"].temperature
    slider.setFocus()
    focus = QApplication.focusWidget()
    assert focus is not None and (focus is slider or slider.isAncestorOf(focus))
    before = slider.value()
    for kind in (QEvent.KeyPress, QEvent.KeyRelease):
        QApplication.sendEvent(focus, QKeyEvent(kind, Qt.Key_PageDown, Qt.NoModifier))
    assert w.scenes.index == first + 1 and w.editor.toPlainText() == lecture[first + 1][1].text
    assert slider.value() == before
    w.scenes.open_lecture(first)
    bars = w.panels["next_token"].bars
    assert bars.isVisible() and QApplication.focusWidget() is not bars
    seen.clear()
    bars.repaint()
    assert not any(o is bars for o in seen)
    w.presenter.leave()
    seen.clear()
    QApplication.sendEvent(w.editor, QKeyEvent(QEvent.KeyPress, Qt.Key_PageDown, Qt.NoModifier))
    assert not any(o is w.editor for o in seen) and w.scenes.index == first  # left: the keys are the editor's


def test_zoom_keys(qtbot, window):
    w = window
    base = w.editor.font().pointSizeF()
    w.presenter.zoom_in_action.trigger()
    assert w.editor.font().pointSizeF() == pytest.approx(base * 1.15)
    w.presenter.zoom_out_action.trigger()
    w.presenter.zoom_out_action.trigger()
    assert w.editor.font().pointSizeF() == pytest.approx(base / 1.15)
    w.presenter.zoom_reset_action.trigger()
    assert w.editor.font().pointSizeF() == pytest.approx(base)
    shortcuts = {s.toString() for s in w.presenter.zoom_in_action.shortcuts()}
    assert "Ctrl+=" in shortcuts


def test_zoom_from_the_keyboard(qtbot, window):
    """Ctrl+- fires (an action holding the same sequence twice never fires: the sequence is ambiguous)."""
    w = window
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow)
    base = w.editor.font().pointSizeF()
    target = w.next_token.bars
    target.setFocus()
    qtbot.keyClick(target, Qt.Key_Equal, Qt.ControlModifier)
    assert w.editor.font().pointSizeF() == pytest.approx(base * 1.15)
    qtbot.keyClick(target, Qt.Key_Minus, Qt.ControlModifier)
    qtbot.keyClick(target, Qt.Key_Minus, Qt.ControlModifier)
    assert w.editor.font().pointSizeF() == pytest.approx(base / 1.15)
    qtbot.keyClick(target, Qt.Key_0, Qt.ControlModifier)
    assert w.editor.font().pointSizeF() == pytest.approx(base)


def test_a_new_theme_keeps_the_zoomed_fonts(qtbot, window):
    """Zoomed, then another theme: every font stays zoomed (a new style sheet alone put back the editor's and the
    titles' unzoomed fonts, while the rest stayed large)."""
    w = window
    before = _sizes(w)
    w.presenter.zoom_in_action.trigger()
    zoomed = _sizes(w)
    for k, v in before.items():
        assert zoomed[k] == pytest.approx(v * w.presenter.zoom), k
    w.theme_actions["dark"].trigger()
    assert w.theme is th.DARK and _sizes(w) == pytest.approx(zoomed)
    assert QApplication.instance().styleSheet() == th.style_sheet(th.DARK)
    w.presenter.zoom_reset_action.trigger()
    w.theme_actions["light"].trigger()
    assert _sizes(w) == pytest.approx(before)


def test_every_menu_key_works_in_presenter_mode(qtbot, window):
    """Presenter mode hides the menu bar, and a menu's keys work only while its bar shows: every entry with keys
    is the window's too, so Ctrl+Q ends a presentation and Ctrl+O opens a model."""
    from explainer.ui.window_menus import menu_entries

    w = window
    entries, on_window = menu_entries(w), set(w.actions())
    assert {"&Quit", "&Open model…", "&Undo", "&Presenter mode"} <= {a.text() for a in entries}  # (submenus too)
    assert not [a.text() for a in entries if not a.shortcut().isEmpty() and a not in on_window]
    w.presenter.enter()
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow)
    assert w.menuBar().isHidden()
    qtbot.keyClick(w.editor, Qt.Key_Q, Qt.ControlModifier)
    qtbot.waitUntil(lambda: not w.isVisible())


def test_closing_in_presenter_mode_saves_the_normal_window(qtbot, window):
    from explainer.ui.main_window import app_settings

    w = window
    w.set_help_visible(True)
    w.presenter.enter()
    w.close()
    assert str(app_settings().value("view/help")).lower() == "true"
    assert QApplication.font().pointSizeF() == pytest.approx(QApplication.instance()._presenter_base_fonts.pointSizeF())


def test_the_scenes_hero_has_the_room_in_presenter_mode(qtbot, window, wait_result):
    from explainer.ui.scenes_ui import find_scene

    w = window
    w.resize(1600, 1000)
    qtbot.wait(50)
    w.live.hsplit.setSizes([900, 694])
    w.live.hsplit.splitterMoved.emit(900, 1)  # the user's own sizes: they come back after presenter mode
    before = {k: sp.sizes() for k, sp in w.splitters.items()}
    central = w.centralWidget().size()
    w.presenter.enter()
    assert w.teach.tabBar().isHidden()
    for name, hero in (("sink", "attention"), ("bank", "embeddings"), ("close", "next_token"), ("cat", "tokens")):
        w.scenes.open_lecture(find_scene(name, w.scenes.lecture)[0])
        assert w.view.hero == hero, name
        qtbot.wait(10)
        shown = [k for k, p in w.panels.items() if p.isVisibleTo(w)]
        assert shown == [hero], (name, shown)
        assert w.panels[hero].width() >= 0.95 * w.width(), name  # the whole width
    w.scenes.open_lecture(find_scene("sink", w.scenes.lecture)[0])
    wait_result(w, w.scenes.current.text)
    qtbot.wait(50)
    side = w.attention.heatmap.vb.width()
    assert side >= 0.45 * w.height()  # the hero heatmap is large (square, see test_layout)
    w.attention.setFocus()
    qtbot.keyClick(w.attention, Qt.Key_2)  # keys 1-4 choose the hero
    assert w.view.hero == "next_token" and w.next_token.isVisibleTo(w) and not w.attention.isVisibleTo(w)
    w.scenes.open_lecture(find_scene("strawberry", w.scenes.lecture)[0])  # a teaching view is the hero itself
    assert w.teach.current_key() == "bpe"
    w.presenter.leave()
    w.teach.show_view("live")
    # the layout follows the resize from full screen back to the window's size on the next events
    # (the status bar, still in presenter fonts with a long message, is taller for a moment)
    qtbot.waitUntil(
        lambda: all(p.isVisibleTo(w) for p in w.panels.values()) and w.centralWidget().size() == central, timeout=5000
    )
    after = {k: sp.sizes() for k, sp in w.splitters.items()}
    share = {k: [x / sum(v) for x in v] for k, v in before.items()}
    assert all(abs(x / sum(after[k]) - y) < 0.01 for k in after for x, y in zip(after[k], share[k])), (before, after)
    assert all(p.isVisibleTo(w) for p in w.panels.values()) and not w.teach.tabBar().isHidden()


def test_the_editor_shows_whole_lines_in_presenter_mode(qtbot, window, wait_result):
    from explainer.ui.scenes_ui import find_scene

    w = window
    w.resize(1600, 1000)
    w.presenter.enter()
    w.scenes.open_lecture(find_scene("in-context", w.scenes.lecture)[0])  # four short lines
    wait_result(w, w.scenes.current.text)
    qtbot.wait(50)
    line = w.editor.fontMetrics().lineSpacing()
    assert w.editor.viewport().height() >= 4 * line
    w.scenes.open_lecture(find_scene("close", w.scenes.lecture)[0])  # one line: the views get the room
    wait_result(w, w.scenes.current.text)
    qtbot.wait(50)
    assert line <= w.editor.viewport().height() < 2.6 * line


def test_notices_show_over_the_window_in_presenter_mode(qtbot, window, wait_result):
    """The status bar is hidden in presenter mode: its messages ("That was the last scene.") show as a notice over
    the window, above the caption, for a few seconds; not twice when the caption already says it, not outside."""
    from explainer.ui.notice import duration_ms

    w = window
    w.resize(1600, 1000)
    w.presenter.enter()
    overlay = w.presenter.notices.overlay
    w.scenes.open_lecture(len(w.scenes.lecture) - 1)
    assert not overlay.isVisible()  # the scene's title and note are in the caption already
    w.scenes.step(1)
    assert not w.statusBar().isVisible() and overlay.isVisible()
    assert overlay.text() == "That was the last scene."
    caption = w.presenter.caption
    assert caption.isVisible() and overlay.geometry().bottom() < caption.mapTo(w, caption.rect().topLeft()).y()
    assert w.rect().contains(overlay.geometry())
    assert overlay.timer.isActive() and overlay.timer.remainingTime() <= 1.1 * duration_ms(
        overlay.text()
    )  # coarse timer
    qtbot.waitUntil(lambda: not overlay.isVisible(), timeout=duration_ms(overlay.text()) + 2000)
    w.scenes.step(1)
    assert overlay.isVisible()
    w.presenter.leave()
    assert not overlay.isVisible()  # the status bar is back: it says it there
    w.scenes.step(1)
    assert not overlay.isVisible() and w.statusBar().currentMessage() == "That was the last scene."


def test_on_a_small_projector_a_notice_says_the_whole_message_and_never_repeats_the_caption(qtbot, window):
    """The hidden status bar has no room to speak of: the notice still gets the whole message, and a scene's title
    and note (which the caption shows) are recognised as such, whatever their length."""
    w = window
    w.resize(1280, 720)
    w.presenter.enter()
    overlay = w.presenter.notices.overlay
    for i in range(len(w.scenes.lecture)):
        w.scenes.open_lecture(i)
        assert not overlay.isVisible(), w.scenes.lecture[i]
    long = "The model now runs with ONNX Runtime on the weights as the file stores them, " * 3
    w.statusBar().showMessage(long, 5000)
    assert overlay.isVisible() and overlay.text() == long


@pytest.mark.parametrize("size,presenting", [((1920, 1080), False), ((1920, 1080), True), ((1280, 720), True)])
def test_the_token_counts_and_the_legend_are_whole(qtbot, make_main_window, wait_result, size, presenting):
    """The tokens panel's count line ("… tokens (+ start) · … characters · … characters/token") and the surprisal
    legend's labels show whole, in the window and in presenter mode (larger fonts) at projector sizes."""
    from PySide6.QtGui import QFontMetrics

    text = "In 1923, researchers found 12,345 specimens of Drosophila melanogaster near the old river bank."
    w = make_main_window(text=text, size=size)
    wait_result(w, text)
    w.presenter.fullscreen = False
    w.tokens.set_heat(True)
    if presenting:
        w.presenter.enter()
        w.view.set_hero("tokens")
    qtbot.wait(50)
    counts, legend = w.tokens.counts, w.tokens.legend
    assert counts.isVisibleTo(w) and legend.isVisibleTo(w)
    full = counts.full_text()
    assert full.startswith(f"{w.result.n_tokens - 1} tokens (+ start)")
    m = counts.contentsMargins()
    assert counts.width() >= QFontMetrics(counts.font()).horizontalAdvance(full) + m.left() + m.right(), full
    left, right = legend.labels(legend.width())
    assert right == "surprising (16+ bits)"  # the words, where there is this much room
    assert legend.width() >= legend.sizeHint().width() - 80 + 60


def test_a_scene_step_takes_the_keyboard_from_the_text(qtbot, window):
    """A lecturer steps with PageDown, then presses 3: the hero changes and no digit lands in the text."""
    w = window
    w.presenter.enter()
    w.activateWindow()
    w.editor.setFocus()
    qtbot.waitUntil(lambda: w.editor.hasFocus())
    qtbot.keyClick(w.editor, Qt.Key_PageDown)
    text = w.editor.toPlainText()
    assert not w.editor.hasFocus()
    qtbot.keyClick(QApplication.focusWidget() or w, Qt.Key_3)
    assert w.view.hero == "attention"
    assert w.editor.toPlainText() == text
    qtbot.keyClick(QApplication.focusWidget() or w, Qt.Key_Escape)  # the lecture is over: back to typing
    assert not w.presenter.active and w.editor.hasFocus()
    qtbot.keyClicks(w.editor, "!")
    assert w.editor.toPlainText().endswith("!")


def test_presenter_mode_does_not_announce_hidden_panels(qtbot, window):
    w = window
    w.presenter.enter()
    w._on_live_dropped_changed("embeddings")
    assert not w.statusBar().currentMessage()
    w.presenter.leave()
    w._on_live_dropped_changed("embeddings")
    assert w.statusBar().currentMessage().startswith("Small window: embeddings hidden")


def test_tab_takes_the_keyboard_from_the_text_in_presenter_mode(qtbot, window):
    """A lecturer typed into the text on the projector: Tab reaches the hero's controls (the hidden view tabs do not
    swallow it), then 1 makes Tokens the hero and no digit lands in the text; after, Tab works as before."""
    w = window
    w.presenter.enter()
    w.activateWindow()
    w.editor.setFocus()
    qtbot.waitUntil(lambda: w.editor.hasFocus())
    text = w.editor.toPlainText()
    qtbot.keyClick(w.editor, Qt.Key_Tab)
    focus = QApplication.focusWidget()
    assert focus is not w.editor and focus.isVisibleTo(w) and w.panels[w.view.hero].isAncestorOf(focus)
    qtbot.keyClick(focus, Qt.Key_1)
    assert w.view.hero == "tokens" and w.editor.toPlainText() == text
    # one hero after the other: the hidden hero's keyboard does not fall to the text, where 2 would be a digit
    for key, hero in (
        (Qt.Key_2, "next_token"),
        (Qt.Key_3, "attention"),
        (Qt.Key_4, "embeddings"),
        (Qt.Key_1, "tokens"),
    ):
        qtbot.keyClick(QApplication.focusWidget() or w, key)
        assert w.view.hero == hero and w.editor.toPlainText() == text and not w.editor.hasFocus(), hero
        if hero == "next_token":  # the candidates take the keys (↑ ↓ Enter)
            assert w.next_token.bars.hasFocus()
    w.presenter.leave()
    assert w.editor.hasFocus()
    qtbot.keyClick(w.editor, Qt.Key_Tab)
    assert QApplication.focusWidget() is w.teach.tabBar()  # in the window, Tab visits the view tabs first


def test_the_tokens_hero_grows_its_chips_into_its_room(qtbot, window, wait_result):
    """Alone (presenter hero or the focused panel), the chips are magnified as far as they fit without scrolling;
    back among the other panels they are their normal size again."""
    w = window
    w.resize(1280, 720)
    view, scroll = w.tokens.view, w.tokens.scroll
    normal_height = view.chips[1].rect.height()
    w.presenter.enter()
    w.view.set_hero("tokens")
    qtbot.waitUntil(lambda: w.tokens.isVisibleTo(w) and not w.attention.isVisibleTo(w))
    # (laid out: the chips are magnified once the panel has its room, on a busy machine after several passes)
    qtbot.waitUntil(
        lambda: view.fit >= 2.0 and scroll.viewport().height() >= max(c.rect.bottom() for c in view.chips),
        timeout=5000,
    )
    assert view.fit >= 2.0  # a short text in a window-wide panel
    bottom = max(c.rect.bottom() for c in view.chips)
    assert bottom <= scroll.viewport().height()  # all of it, no scrolling
    assert scroll.verticalScrollBar().maximum() == 0
    assert view.chip_at(view.chips[2].rect.center()) == 2  # the pointer finds the magnified chips
    long_text = " ".join([TEXT] * 30)
    w.editor.setPlainText(long_text)
    wait_result(w, long_text)
    qtbot.wait(50)
    assert view.fit < 2.0  # more chips: less magnified
    if view.fit > 1.0:  # magnified only as far as all of them still fit
        assert max(c.rect.bottom() for c in view.chips) <= scroll.viewport().height() + 1
    w.presenter.leave()
    w.editor.setPlainText(TEXT)
    wait_result(w, TEXT)
    qtbot.waitUntil(lambda: w.attention.isVisibleTo(w))
    assert view.fit == 1.0 and view.chips[1].rect.height() == pytest.approx(normal_height)
    assert not scroll.fill


@pytest.mark.parametrize("size, inline", [((1280, 720), False), ((1700, 1050), True)])
def test_a_first_start_in_presenter_mode_leaves_the_first_start_explanations_to_the_window_size(
    qtbot, qt_isolated, size, inline
):
    """The first time, the explanations show under the titles only on a large window. A lecturer whose first
    start is straight into presenter mode (``--presenter``, which hides them) finds that choice afterwards: not
    the explanations forced on in a small window."""
    from explainer.runtime.controller import Controller, engine_factory
    from explainer.ui.main_window import MainWindow, app_settings

    w = MainWindow(Controller(engine_factory(demo=True), projection=False), text="")
    qtbot.addWidget(w)
    w.resize(*size)
    w.presenter.fullscreen = False
    w.presenter.enter()  # as the command line does, before the window is shown
    w.show()
    qtbot.waitExposed(w)
    assert not w.help_action.isChecked()  # presenting: no explanations
    w.presenter.leave()
    assert w.help_action.isChecked() is inline
    w.presenter.enter()
    w.close()  # closing while presenting saves the normal window
    assert str(app_settings().value("view/help")).lower() == str(inline).lower()
