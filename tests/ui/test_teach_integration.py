"""The teaching views inside the main window: results, linked tokens and heads, cursor word, chat → editor, the
reference test on the model's thread, the analysis settings and the backend menu."""

from __future__ import annotations

from PySide6.QtCore import QThread
from PySide6.QtGui import QTextCursor

from explainer.ui.teach_area import LIVE, VIEWS, view_key, word_at

TEXT = "The cat sat on the mat. The cat sat on the mat."


def test_view_names_and_cursor_words():
    assert view_key("Head roles") == "heads" and view_key("head-roles") == "heads" and view_key("LIVE") == LIVE
    assert view_key("attention") == "attention" and view_key("chat_template") == "chat"
    assert view_key("nonsense") is None
    text = "How many r's are in strawberry?"
    assert word_at(text, 5) == "many" and word_at(text, 8) == "many"  # just after the word counts
    assert word_at(text, text.index("straw") + 3) == "strawberry"
    assert word_at(text, len(text)) == "" and word_at("", 0) == ""


def test_every_teaching_view_receives_results(qtbot, make_main_window, wait_result):
    w = make_main_window(text=TEXT)
    wait_result(w, TEXT)
    tabs = [w.teach.tabText(i) for i in range(w.teach.count())]
    assert tabs == ["Live"] + [label for _, label, _, _ in VIEWS]
    for key, *_ in VIEWS:
        assert w.teach.show_view(key)
        panel = w.teach.panels[key]
        assert w.teach.current_panel() is panel and panel.result is w.result, key
    # the view on screen follows every new result at once; a hidden one catches up when shown
    w.teach.show_view("lens")
    w.editor.setPlainText(TEXT + " Then")
    wait_result(w, TEXT + " Then")
    assert w.teach.panels["lens"].result is w.result
    assert w.teach.panels["walkthrough"].result is not w.result  # hidden: not recomputed while typing
    w.teach.show_view("walkthrough")
    assert w.teach.panels["walkthrough"].result is w.result
    # the View menu's radio items follow the tabs, and switch them
    assert w.teach.view_actions["walkthrough"].isChecked()
    w.teach.view_actions["chat"].trigger()
    assert w.teach.current_key() == "chat"


def test_token_selection_is_linked_both_ways(qtbot, make_main_window, wait_result):
    w = make_main_window(text=TEXT)
    wait_result(w, TEXT)
    w.tokens.tokenSelected.emit(3)  # as a click on chip 3 does
    w.teach.show_view("lens")
    assert w.teach.panels["lens"].position == 3
    walk = w.teach.panels["walkthrough"]
    w.teach.show_view("walkthrough")
    assert walk.query == 3
    walk.query_box.activated.emit(5)  # choose another query token in the walk-through
    assert all(p.selected_position == 5 for p in w.panels.values())
    assert w.next_token.position == 5


def test_head_selection_is_linked_everywhere(qtbot, make_main_window, wait_result):
    w = make_main_window(text=TEXT)
    wait_result(w, TEXT)
    walk, heads = w.teach.panels["walkthrough"], w.teach.panels["heads"]
    w.attention.select_head(1, 2)
    assert (walk.layer, walk.head) == (1, 2) and heads.grid.selected == (1, 2)
    w.teach.show_view("walkthrough")
    walk.head_spin.setValue(4)  # head 4 on screen = index 3
    assert (w.attention.layer, w.attention.head) == (1, 3) and heads.grid.selected == (1, 3)
    assert walk.walk is not None and walk.walk.head == 3
    w.teach.show_view("heads")
    heads._on_grid_clicked(0, 1)  # a badge click: selected everywhere and opened in the attention panel
    assert (w.attention.layer, w.attention.head) == (0, 1) and (walk.layer, walk.head) == (0, 1)
    assert w.teach.current_key() == LIVE
    w.teach.show_view("walkthrough")
    assert walk.walk.layer == 0 and walk.walk.head == 1


def test_chat_sends_chatml_with_special_tokens_and_no_start_token(qtbot, make_main_window, wait_result):
    w = make_main_window(text=TEXT)
    wait_result(w, TEXT)
    chat = w.teach.panels["chat"]
    w.teach.show_view("chat")
    chat.send_to_editor()
    assert w.editor.toPlainText() == chat.chatml_text() and chat.chatml_text().startswith("<|im_start|>")
    s = w.controller.settings
    assert s.parse_specials and not s.start_token
    wait_result(w, chat.chatml_text())
    r = w.result
    assert r.specials_parsed and not r.start_token and r.tokens[0].special and r.tokens[0].id == 1
    assert chat.prediction()  # the chat view shows the model's guesses for the assistant's first token
    a = w.analysis
    assert a.specials.isChecked() and not a.start.isChecked() and "special tokens" in a.label.text()
    a.specials.trigger()  # View ▸ special tokens off: ordinary text again
    a.start.trigger()
    assert not w.controller.settings.parse_specials and w.controller.settings.start_token
    wait_result(w)
    assert not w.result.specials_parsed and w.result.start_token and not a.label.isVisibleTo(w)


def test_cursor_word_goes_to_the_bpe_view(qtbot, make_main_window, wait_result):
    text = "How many r's are in strawberry?"
    w = make_main_window(text=text)
    wait_result(w, text)
    bpe = w.teach.panels["bpe"]
    c = w.editor.textCursor()
    c.setPosition(6)  # inside "many"
    w.editor.setTextCursor(c)
    qtbot.wait(300)
    w.teach.show_view("bpe")
    assert bpe.field.text() == "many"
    c.setPosition(text.index("straw") + 2)
    w.editor.setTextCursor(c)
    qtbot.waitUntil(lambda: bpe.field.text() == "strawberry", timeout=3000)
    c.movePosition(QTextCursor.End)  # after "?": no word; the last one stays
    w.editor.setTextCursor(c)
    qtbot.wait(300)
    assert bpe.field.text() == "strawberry"


def test_the_bpe_view_never_shows_a_word_from_a_replaced_text(qtbot, make_main_window, wait_result):
    """The cursor sat in a word while another view was shown; then a paste replaced the text with the cursor
    after "?": "Tokens are not letters" shows a word of the text on screen, not the old one."""
    old = "Photosynthesis turns light into sugar"
    w = make_main_window(text=old)
    wait_result(w, old)
    bpe = w.teach.panels["bpe"]
    c = w.editor.textCursor()
    c.setPosition(3)  # inside "Photosynthesis", with the live view in front
    w.editor.setTextCursor(c)
    qtbot.wait(300)
    new = "How many r's are in strawberry?"
    w.editor.selectAll()
    w.editor.insertPlainText(new)  # the cursor after the "?": no word under it
    wait_result(w, new)
    qtbot.wait(300)
    w.teach.show_view("bpe")
    assert bpe.field.text() == "strawberry"
    w.teach.show_view("live")
    c = w.editor.textCursor()
    c.setPosition(new.index("many") + 1)
    w.editor.setTextCursor(c)
    qtbot.wait(300)
    w.teach.show_view("bpe")
    assert bpe.field.text() == "many"  # a word of this text still follows the cursor


def test_reference_test_runs_on_the_model_thread(qtbot, make_main_window, wait_result, monkeypatch):
    from explainer.core import heads as core_heads

    threads = []
    real = core_heads.cached_reference_scores

    def spy(engine, *a, **kw):
        threads.append(QThread.currentThread())
        return real(engine, *a, use_cache=False, **kw)

    monkeypatch.setattr(core_heads, "cached_reference_scores", spy)
    w = make_main_window(text=TEXT)
    wait_result(w, TEXT)
    heads = w.teach.panels["heads"]
    w.teach.show_view("heads")
    heads.run_reference()
    qtbot.waitUntil(lambda: not heads.running, timeout=60000)
    assert heads.reference is not None and heads.source == "reference"
    assert threads == [w.controller.thread] and threads[0] is not QThread.currentThread()


def test_lens_and_chat_get_the_models_decoder_and_embedding_table(qtbot, make_main_window, wait_result):
    from explainer.runtime.controller import engine_factory

    w = make_main_window(engine_factory(demo=True), text=TEXT, projection=True)
    wait_result(w, TEXT)
    qtbot.waitUntil(lambda: w.controller.model is not None)
    lens = w.teach.panels["lens"]
    m = w.controller.model
    assert lens._embedding_table is m.projector.embedding_table
    assert lens._decode == m.tokenizer.token_bytes and w.teach.panels["chat"]._decode == m.tokenizer.token_bytes


def test_backend_menu_reopens_the_model_with_that_backend(qtbot, make_main_window, wait_result, monkeypatch):
    from explainer.runtime import controller as ctl

    asked, real = [], ctl.engine_factory

    def factory_like(model_path=None, *, device="auto", backend="torch", demo=False):
        asked.append((model_path, device, backend))
        make = real(demo=True)
        make.options = {"model_path": model_path, "device": device, "backend": backend, "demo": False}
        return make

    monkeypatch.setattr(ctl, "engine_factory", factory_like)
    w = make_main_window(factory_like("model.gguf", device="cpu"), text=TEXT)
    wait_result(w, TEXT)
    assert w.analysis.backend_actions["torch"].isChecked()
    w.analysis.backend_actions["onnx"].trigger()
    assert asked[-1] == ("model.gguf", "cpu", "onnx") and w.backend == "onnx"
    qtbot.waitUntil(
        lambda: (
            w.controller.factory is not None
            and w.controller.factory.options["backend"] == "onnx"
            and not w.controller.loading
        ),
        timeout=20000,
    )
    assert w.analysis.backend_actions["onnx"].isChecked()
    wait_result(w)
    assert w.status_device.text().endswith(w.result.backend)  # the engine's own backend is shown


def test_the_demo_model_keeps_its_backend(qtbot, make_main_window, wait_result):
    w = make_main_window(text=TEXT)
    wait_result(w, TEXT)
    assert not w.analysis.switch_backend("onnx")
    assert "demo" in w.statusBar().currentMessage() and w.analysis.backend_actions["torch"].isChecked()


def test_a_closed_window_is_freed_with_its_results(qtbot, wait_result):
    """Nothing long-lived (the controller, the application) may hold the window through a connection."""
    import gc
    import weakref

    from explainer.runtime.controller import Controller, engine_factory
    from explainer.ui.main_window import MainWindow

    controller = Controller(engine_factory(demo=True), projection=False)
    w = MainWindow(controller, text=TEXT)
    w.show()
    controller.start()
    wait_result(w, TEXT)
    for key in w.teach.keys:
        w.teach.show_view(key)
    window_ref, result_ref = weakref.ref(w), weakref.ref(w.result)
    from PySide6.QtCore import SIGNAL

    names = ("resultReady(PyObject)", "errorOccurred(QString)", "modelLoaded(PyObject)", "busyChanged(bool)")
    signals = [SIGNAL(n) for n in names]
    assert all(controller.receivers(s) for s in signals)  # the window listens to the controller
    w.close()
    w.deleteLater()
    del w
    qtbot.wait(50)
    gc.collect()
    # freed although ``controller`` is still referenced here, as an application's would be
    assert window_ref() is None and result_ref() is None
    assert not any(controller.receivers(s) for s in signals)  # no connection outlives the window


def test_a_backend_fallback_notice_reaches_the_status_bar(qtbot, make_main_window, wait_result, demo):
    class Proxy:
        notice = "The ONNX backend is not available (no onnxruntime); running with torch."

        def __getattr__(self, name):
            return getattr(demo, name)

    w = make_main_window(lambda progress: Proxy(), text=TEXT)
    wait_result(w, TEXT)
    qtbot.waitUntil(lambda: "ONNX backend is not available" in w.statusBar().currentMessage(), timeout=5000)
