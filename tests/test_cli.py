"""The CLI contract: analyze / tokenize JSON schema, exit 2 with one sentence for user errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from explainer.cli import main
from explainer.core.tokenizers import get_tokenizer


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_tokenize_json(capsys):
    code, out, err = run(capsys, "tokenize", "--json", "strawberry", " strawberry")
    assert code == 0, err
    rows = json.loads(out)
    assert rows[0]["ids"] == [302, 1709, 9500] and rows[1]["ids"] == [35199]
    # NOTES says "str" "aw" "berry"; the vocabulary itself says ids 302/1709/9500 are "st" "raw" "berry"
    assert [t["text"] for t in rows[0]["tokens"]] == ["st", "raw", "berry"]
    assert rows[0]["tokens"][1] == {"id": 1709, "text": "raw", "bytes": "726177", "start": 2, "end": 5}


@pytest.mark.parametrize("name,ids", [("cl100k_base", [496, 675, 15717]), ("o200k_base", [302, 1618, 19772])])
def test_tokenize_openai(capsys, name, ids):
    code, out, _ = run(capsys, "tokenize", "--json", "--tokenizer", name, "strawberry")
    assert code == 0 and json.loads(out)[0]["ids"] == ids


def test_unknown_tokenizer_is_exit_2(capsys):
    code, out, err = run(capsys, "tokenize", "--tokenizer", "gpt7", "hi")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "gpt7" in err and "Traceback" not in err


def test_analyze_json_schema_tiny(capsys, tmp_path, bundled_gguf):
    from explainer.core.engine import TINY_CONFIG
    from explainer.core.llama import random_weights
    from tests.gguf_factory import write_tiny_llama

    model = write_tiny_llama(tmp_path / "tiny.gguf", TINY_CONFIG, random_weights(TINY_CONFIG), bundled_gguf)
    code, out, err = run(
        capsys, "analyze", "--model", str(model), "--json", "--top-k", "3", "--attention", "The cat", ""
    )
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 2
    r = rows[0]
    assert set(r) >= {"text", "model", "device", "truncated", "tokens", "positions", "sentence_logprob", "attention"}
    assert r["text"] == "The cat" and r["truncated"] is False and r["device"] == "cpu"
    assert r["tokens"][0] == {"id": 0, "text": "<|endoftext|>", "bytes": b"<|endoftext|>".hex(), "special": True}
    assert [t["id"] for t in r["tokens"][1:]] == [504, 2644]
    assert r["positions"][0]["prob"] is None and r["positions"][0]["surprisal_bits"] is None
    for p in r["positions"][1:]:
        assert 0 < p["prob"] <= 1 and p["surprisal_bits"] == pytest.approx(-math.log2(p["prob"]), rel=1e-4)
    for p in r["positions"]:
        assert len(p["top"]) == 3 and set(p["top"][0]) == {"id", "text", "prob"}
        assert p["top"][0]["prob"] >= p["top"][1]["prob"] >= p["top"][2]["prob"]
    assert r["sentence_logprob"] == pytest.approx(sum(math.log(p["prob"]) for p in r["positions"][1:]), rel=1e-5)
    att = r["attention"]
    assert len(att) == TINY_CONFIG.n_layers and len(att[0]) == TINY_CONFIG.n_heads and len(att[0][0]) == 3
    assert rows[1]["tokens"][0]["special"] and len(rows[1]["tokens"]) == 1  # empty text: only the start token
    code, out, _ = run(
        capsys, "analyze", "--model", str(model), "--json", "--no-start-token", "--max-tokens", "2", "The cat sat"
    )
    r = json.loads(out)[0]
    assert r["truncated"] is True and len(r["tokens"]) == 2 and r["positions"][0]["prob"] is None
    assert "attention" not in r


def test_text_file_and_stdin(capsys, tmp_path, monkeypatch):
    f = tmp_path / "t.txt"
    f.write_bytes("caf\xe9 \xff bad bytes".encode("latin-1"))
    code, out, err = run(capsys, "tokenize", "--json", "--text-file", str(f))
    assert code == 0 and json.loads(out)[0]["text"] == "caf\ufffd \ufffd bad bytes"
    for bad in (str(tmp_path / "missing.txt"), str(tmp_path)):
        code, out, err = run(capsys, "tokenize", "--text-file", bad)
        assert code == 2 and err.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        ["analyze"],
        ["analyze", "--top-k", "0", "x"],
        ["analyze", "--max-tokens", "x", "y"],
        ["analyze", "--bogus", "x"],
        ["analyze", "--model", "/no/such/file.gguf", "x"],
    ],
)
def test_user_errors_exit_2_with_one_sentence(capsys, args):
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith("explainer: ") and err.count("\n") == 1 and "Traceback" not in err


def test_subprocess_bad_model_no_traceback(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 10)
    p = subprocess.run(
        [sys.executable, "-m", "explainer", "analyze", "--model", str(bad), "hi"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2 and "Traceback" not in p.stderr and p.stderr.count("\n") == 1


@pytest.mark.slow
@pytest.mark.reference
def test_analyze_json_has_transformers_numbers(capsys, hf_model):
    """The JSON's ids, token probabilities and top candidates are transformers' on the same GGUF."""
    import torch

    code, out, err = run(capsys, "analyze", "--json", "--top-k", "5", "The cat sat on the")
    assert code == 0, err
    r = json.loads(out)[0]
    assert r["model"] == "SmolLM2-135M-Instruct"
    ids = [t["id"] for t in r["tokens"]]
    assert ids == [0, *get_tokenizer("smollm2").encode("The cat sat on the")]  # the start token first
    with torch.no_grad():
        p = torch.softmax(hf_model(torch.tensor([ids])).logits[0].double(), -1)
    for i, pos in enumerate(r["positions"]):
        best = torch.topk(p[i], 5)
        assert [t["id"] for t in pos["top"]] == best.indices.tolist()
        assert [t["prob"] for t in pos["top"]] == pytest.approx(best.values.tolist(), rel=3e-4, abs=1e-7)
        if i:
            assert pos["prob"] == pytest.approx(float(p[i - 1, ids[i]]), rel=3e-4, abs=1e-7)
    assert r["positions"][-1]["top"][0]["text"] == " mat"


def test_scenes_json_lists_the_lecture_scenes_numbered_as_on_screen(capsys):
    from explainer.core.scene import lecture_set

    code, out, err = run(capsys, "scenes", "--json")
    assert code == 0, err
    rows = json.loads(out)
    shipped = lecture_set()
    assert [r["name"] for r in rows] == [p.stem for p, _ in shipped]
    for r, (_p, scene) in zip(rows, shipped):
        assert {"name", "title", "note", "view", "layer", "head"} <= set(r)
        assert (r["title"], r["note"], r["view"]) == (scene.title, scene.note, scene.view)
        att = scene.panels.get("attention", {})
        assert r["layer"] == (att["layer"] + 1 if "layer" in att else None)  # the file is 0-based, the screen not
        assert r["head"] == (att["head"] + 1 if "head" in att else None)
    by_name = {r["name"]: r for r in rows}
    assert (by_name["03-induction"]["layer"], by_name["03-induction"]["head"]) == (19, 7)
    assert by_name["01-strawberry"]["layer"] is None
    assert by_name["09-close-call"]["seed"] is not None


def test_scenes_plain_output_is_a_table(capsys):
    code, out, err = run(capsys, "scenes")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["#", "name", "view", "layer", "head", "title"]
    row = next(line for line in lines if "03-induction" in line)
    assert row.split()[:5] == ["3", "03-induction", "attention", "19", "7"] and "Induction heads" in row
    assert any("strongest induction head" in line for line in lines)  # the note, under its scene
    assert "–" in next(line for line in lines if "01-strawberry" in line)  # no layer: a dash, not "None"


def test_the_window_without_a_display_is_one_sentence_and_a_screenshot_needs_none(monkeypatch, capsys):
    """On Linux without a display server Qt aborts the process with several lines of its own: the window says in
    one sentence that there is no display (exit 2) before Qt is started; a screenshot is drawn offscreen."""
    import os

    from explainer.ui import app

    monkeypatch.setattr(sys, "platform", "linux")
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    assert app.main(["--demo", "--text", "hello"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("explainer: There is no display") and err.count("\n") == 1, err
    assert "QT_QPA_PLATFORM" not in os.environ
    assert app.no_display(screenshot=True) == "" and os.environ["QT_QPA_PLATFORM"] == "offscreen"
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("QT_QPA_PLATFORM")
    monkeypatch.setattr(app, "missing_x11_libraries", lambda: [])
    monkeypatch.setattr(app, "x11_display_answers", lambda display: display == ":0")
    assert app.no_display(screenshot=False) == "" and "QT_QPA_PLATFORM" not in os.environ
    monkeypatch.setenv("DISPLAY", ":99")  # a display that is gone (a stale DISPLAY): one sentence, not Qt's abort
    assert app.main(["--demo", "--text", "hello"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("explainer: The X11 display :99 (DISPLAY) does not accept") and err.count("\n") == 1, err
    assert app.no_display(screenshot=True) == "" and os.environ["QT_QPA_PLATFORM"] == "offscreen"


def test_an_x11_display_that_is_not_there_does_not_answer():
    import ctypes

    from explainer.ui import app

    try:
        ctypes.CDLL("libxcb.so.1")
    except OSError:
        pytest.skip("no libxcb here: the check leaves the answer to Qt")
    assert app.x11_display_answers(":987") is False  # no server on display 987


def test_an_x11_session_without_the_libraries_qt_needs_is_one_sentence(monkeypatch, capsys):
    """Qt's X11 plugin aborts the process when a system library it needs is missing (libxcb-cursor since Qt 6.5,
    libxcb-icccm, ... on some fresh systems): the window names them and their packages in one sentence (exit 2);
    a screenshot is drawn offscreen; a Wayland session does not need them."""
    import os

    from explainer.ui import app

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(app, "missing_x11_libraries", lambda: ["libxcb-cursor.so.0", "libxkbcommon-x11.so.0"])
    for var in ("WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    assert app.main(["--demo", "--text", "hello"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("explainer: The window cannot open on this X11 display") and err.count("\n") == 1, err
    assert "sudo apt install libxcb-cursor0 libxkbcommon-x11-0)" in err and "QT_QPA_PLATFORM" not in os.environ
    assert app.no_display(screenshot=True) == "" and os.environ["QT_QPA_PLATFORM"] == "offscreen"
    monkeypatch.delenv("QT_QPA_PLATFORM")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert app.no_display(screenshot=False) == ""


def test_missing_x11_libraries_asks_the_dynamic_loader_then_ldd(monkeypatch):
    import ctypes
    import subprocess

    from explainer.ui import app

    asked = []

    def loader(path):
        asked.append(path)
        raise OSError("libxcb-icccm.so.4: cannot open shared object file: No such file or directory")

    ldd = "\tlibxcb-icccm.so.4 => not found\n\tlibc.so.6 => /lib/libc.so.6 (0x1)\n\tlibxcb-keysyms.so.1 => not found\n"
    monkeypatch.setattr(ctypes, "CDLL", loader)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, ldd, ""))
    assert app.missing_x11_libraries() == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert asked and asked[0].endswith("libqxcb.so")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(FileNotFoundError("ldd")))
    assert app.missing_x11_libraries() == ["libxcb-icccm.so.4"]  # no ldd: the one the loader named
    monkeypatch.setattr(ctypes, "CDLL", lambda path: object())
    assert app.missing_x11_libraries() == []
    names = ("libxcb-cursor.so.0", "libxkbcommon-x11.so.0", "libEGL.so.1", "libdbus-1.so.3", "libfoo.so")
    assert [app.debian_package(n) for n in names] == [
        "libxcb-cursor0",
        "libxkbcommon-x11-0",
        "libegl1",
        "libdbus-1-3",
        "libfoo",
    ]


def test_analyze_table_shows_top_k_candidates(capsys):
    """The table shows 3 next-token candidates per position unless --top-k asks for another number."""
    import re

    def candidates(*extra) -> list[int]:
        code, out, err = run(capsys, "analyze", *extra, "The cat sat on the")
        assert code == 0, err
        rows = [ln for ln in out.splitlines() if re.match(r"\s+\d+  ", ln)]
        assert len(rows) >= 5, out
        return [len(re.findall(r" \d\.\d{3}(?=, |$)", ln)) for ln in rows]

    assert set(candidates()) == {3}
    assert set(candidates("--top-k", "5")) == {5}
    assert set(candidates("--top-k", "1")) == {1}


def test_the_table_names_candidates_as_it_names_tokens(capsys):
    """Pieces of a character are their bytes in both columns (<E6 97>), not one U+FFFD for different pieces."""
    import re

    code, out, err = run(capsys, "analyze", "--top-k", "5", "日本語の文章")
    assert code == 0, err
    names = re.findall(r"'([^']*)' \d\.\d{3}", out)
    assert len(names) >= 40 and "\ufffd" not in out
    assert any(re.fullmatch(r"<[0-9A-F]{2}( [0-9A-F]{2})*>", n) for n in names)


@pytest.mark.parametrize("argv", [["--size", "5x5"], ["--size", "abc"], ["--bogus"], ["--device", "gpu"]])
def test_the_windows_option_mistakes_are_one_sentence(capsys, argv):
    """The window's options, like the commands', answer a mistake with one sentence and exit 2 (no usage dump)."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    assert exited.value.code == 2 and out == "" and err.startswith("explainer: ") and err.count("\n") == 1, err
    assert "explainer --help" in err


def test_a_window_size_starting_with_a_dash_is_read_as_the_size(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--size", "-5x10"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "width and height" in err and "expected one argument" not in err, err
