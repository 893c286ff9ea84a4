"""The window and model folders: a GPT-2 folder opens and every view adapts; broken or unsupported folders give
one sentence while the old model keeps answering; File lists recent models and the models in the Hugging Face
cache; the View menu names the model's own start token."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from explainer.core import hf_folder
from tests.hf_factory import CHATML, write_folder
from tests.robustness.conftest import wait_for_result
from tests.robustness.test_ui_resilience import tiny_factory

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("ui") / "tiny-gpt2", "gpt2", n_layers=3, n_heads=2)


@pytest.fixture(scope="module")
def qwen2(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("ui") / "tiny-qwen2", "qwen2", n_kv_heads=2, chat_template=CHATML)


def _broken(kind, gpt2, tmp_path):
    f = tmp_path / kind
    shutil.copytree(gpt2, f)
    cfg = json.loads((f / "config.json").read_text())
    if kind == "unsupported":
        cfg["architectures"] = ["MistralForCausalLM"]
    elif kind == "remote_code":
        cfg["auto_map"] = {"AutoModelForCausalLM": "modeling.X"}
    elif kind == "pickle_only":
        (f / "model.safetensors").rename(f / "pytorch_model.bin")
    elif kind == "no_tokenizer":
        (f / "tokenizer.json").unlink()
    (f / "config.json").write_text(json.dumps(cfg))
    return f


@pytest.mark.parametrize("kind", ["unsupported", "remote_code", "pickle_only", "no_tokenizer", "too_large"])
def test_a_bad_folder_says_why_and_the_old_model_answers(
    kind, qtbot, make_main_window, dialogs, tmp_path, gpt2, tiny_engine, monkeypatch
):
    w = make_main_window(tiny_factory(tiny_engine), text="The lecture goes on")
    wait_for_result(qtbot, w)
    model = w.controller.model
    if kind == "too_large":
        monkeypatch.setattr(hf_folder, "available_memory", lambda: 1000)
        folder = gpt2
    else:
        folder = _broken(kind, gpt2, tmp_path)
    w.open_model(str(folder))
    qtbot.waitUntil(lambda: bool(dialogs), timeout=60000)
    qtbot.waitUntil(lambda: not w.controller.loading, timeout=5000)
    ((_, _, text),) = dialogs
    sentence = text.split("\n\n")[0]
    assert "current model stays" in text and "\n" not in sentence and "Traceback" not in text
    assert w.controller.model is model
    w.set_text("The lecture goes on, and on")
    wait_for_result(qtbot, w)
    assert w.result.model is model.info


def test_gpt2_folder_every_view_adapts(qtbot, make_main_window, dialogs, gpt2):
    from explainer.runtime.controller import engine_factory

    w = make_main_window(engine_factory(str(gpt2), backend="auto"), text="The cat sat on the mat. The cat")
    wait_for_result(qtbot, w, timeout=120000)
    r = w.result
    assert (r.model.arch, r.model.positions, r.model.n_layers, r.model.n_heads) == ("gpt2", "learned", 3, 2)
    assert r.tokens[0].added and r.tokens[0].text == "<|endoftext|>"
    assert (
        w.windowTitle() == "explainer — tiny-gpt2" and "GPT-2: learned positions, LayerNorm" in w.status_model.toolTip()
    )
    assert w.analysis.start.text() == f"Add a start-of-text token: <|endoftext|> (id {r.tokens[0].id})"
    assert "documents" in w.analysis.start.toolTip()
    assert w.tokens.selector.itemText(0) == "tiny-gpt2 (this model)" and w.tokens._tokens == r.tokens
    assert w.attention.layer_spin.maximum() == 3 and w.attention.head_spin.maximum() == 2
    assert "its own keys and values" in w.attention.info.text()
    for name in ("walkthrough", "lens", "heads", "compare", "chat"):
        assert w.teach.show_view(name)
        qtbot.wait(50)
    walk = w.teach.panels["walkthrough"]
    assert "learned positions" in walk.rope.text() and "LayerNorm" in walk.steps.text()
    compare = w.teach.panels["compare"]
    assert compare.tokenizations["smollm2"].ids == [t.id for t in r.tokens if not t.added]
    assert "no chat template" in w.teach.panels["chat"].summary.text()
    assert not w.teach.panels["chat"].send_button.isEnabled()
    assert not dialogs


def test_qwen2_chat_template_and_models_menu(qtbot, make_main_window, dialogs, qwen2, gpt2, tmp_path, monkeypatch):
    from explainer.runtime.controller import engine_factory

    cache = tmp_path / "hub"
    snap = cache / "models--someone--tiny-gpt2" / "snapshots" / "abc"
    shutil.copytree(gpt2, snap)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    w = make_main_window(engine_factory(str(qwen2)), text="Hello")
    wait_for_result(qtbot, w, timeout=120000)
    chat = w.teach.panels["chat"]
    w.teach.show_view("chat")
    qtbot.waitUntil(lambda: chat.tokenization is not None and chat.text.startswith("<|im_start|>user"), timeout=10000)
    assert chat.tokenization.tokens[0].special and chat.send_button.isEnabled()
    chat.send_to_editor()
    wait_for_result(qtbot, w, timeout=60000)
    assert w.result.specials_parsed and not w.result.start_token  # a chat starts with its own special token
    assert len(chat.prediction()) == 5
    menu = w.models_menu
    assert os.path.realpath(menu.recent()[0]) == os.path.realpath(qwen2)
    menu.local_menu.aboutToShow.emit()
    labels = [a.text() for a in menu.local_menu.actions()]
    assert len(labels) == 1 and labels[0].startswith("someone/tiny-gpt2 (GPT-2")
    menu.local_menu.actions()[0].trigger()  # opens the cached snapshot
    qtbot.waitUntil(lambda: w.result is not None and w.result.model.arch == "gpt2", timeout=120000)
    menu.recent_menu.aboutToShow.emit()
    assert [a.text() for a in menu.recent_menu.actions()][:2] == [
        "someone/tiny-gpt2",
        f"{qwen2.parent.name}/tiny-qwen2",
    ]
    assert not dialogs
