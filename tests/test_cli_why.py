"""The CLI contracts of knock-out (analyze --ablate), attribute and patch, on a tiny GGUF: shapes, layers and heads
numbered from 1, user errors exit 2 with one sentence."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from explainer.cli import main
from explainer.core.engine import TINY_CONFIG

L, H = TINY_CONFIG.n_layers, TINY_CONFIG.n_heads


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory, bundled_gguf):
    from explainer.core.llama import random_weights
    from tests.gguf_factory import write_tiny_llama

    path = tmp_path_factory.mktemp("why") / "tiny.gguf"
    return str(write_tiny_llama(path, TINY_CONFIG, random_weights(TINY_CONFIG, seed=5), bundled_gguf))


@pytest.fixture(scope="module")
def tiny_weights_engine(tiny_gguf):
    from explainer.core.engine import Engine

    return Engine(tiny_gguf, device="cpu")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_sentence(code, out, err):
    assert code == 2 and out == ""
    assert err.startswith("explainer: ") and err.count("\n") == 1 and "Traceback" not in err


def test_analyze_ablate_numbers_heads_from_1(capsys, tiny_gguf, tiny_weights_engine):
    code, out, err = run(capsys, "analyze", "--model", tiny_gguf, "--json", "--ablate", f"{L}:{H}, 1:2", "The cat sat")
    assert code == 0, err
    r = json.loads(out)[0]
    assert r["ablated"] == [[1, 2], [L, H]] and r["backend"] == tiny_weights_engine.backend  # knocked out where it runs
    expected = tiny_weights_engine.analyze("The cat sat", top_k=10, ablated=[(L - 1, H - 1), (0, 1)], incremental=False)
    got = [[t["prob"] for t in p["top"]] for p in r["positions"]]
    np.testing.assert_allclose(got, expected.top_probs, rtol=1e-6)
    np.testing.assert_allclose([p["prob"] for p in r["positions"][1:]], expected.token_prob[1:], rtol=1e-6)
    clean = tiny_weights_engine.analyze("The cat sat", top_k=10, incremental=False)
    assert not np.allclose(got, clean.top_probs, rtol=1e-3)  # the knock-out changed the numbers
    code, out, _ = run(capsys, "analyze", "--model", tiny_gguf, "--json", "The cat sat")
    assert "ablated" not in json.loads(out)[0]  # the usual output, unchanged without --ablate
    code, out, _ = run(capsys, "analyze", "--model", tiny_gguf, "--ablate", "2:1", "The cat sat")
    assert code == 0 and "heads knocked out (layer:head): 2:1" in out


@pytest.mark.parametrize(
    "spec",
    ["0:1", f"{L + 1}:1", f"1:{H + 1}", "1:0", "1", "a:b", "1:2,", "", "1:2:3", "-1:2"],
)
@pytest.mark.parametrize("command", ["analyze", "attribute"])
def test_bad_ablate_spec_is_exit_2(capsys, tiny_gguf, command, spec):
    assert_one_sentence(*run(capsys, command, "--model", tiny_gguf, "--ablate", spec, "The cat"))


def test_a_head_spec_starting_with_a_dash_is_read_as_the_value(capsys, tiny_gguf):
    """``--ablate -1:2`` is the option's value (a head that does not exist), not an unknown option."""
    code, out, err = run(capsys, "analyze", "--model", tiny_gguf, "--ablate", "-1:2", "x")
    assert_one_sentence(code, out, err)
    assert "'-1:2'" in err and "expected one argument" not in err


def test_head_outside_the_model_names_the_range(capsys, tiny_gguf):
    code, out, err = run(capsys, "analyze", "--model", tiny_gguf, "--ablate", f"{L + 1}:1", "x")
    assert_one_sentence(code, out, err)
    assert f"{L + 1}:1" in err and f"1 to {L}" in err and f"1 to {H}" in err


def test_attribute_json(capsys, tiny_gguf, tiny_weights_engine):
    code, out, err = run(capsys, "attribute", "--model", tiny_gguf, "--json", "The cat sat on", "a")
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 2
    r = rows[0]
    assert set(r) >= {"text", "tokens", "target", "input_x_gradient"}
    assert r["text"] == "The cat sat on" and r["ablated"] == []
    assert r["tokens"][0] == {"id": 0, "text": "<|endoftext|>", "bytes": b"<|endoftext|>".hex(), "special": True}
    assert len(r["input_x_gradient"]) == len(r["tokens"]) == 5
    assert all(isinstance(s, float) and math.isfinite(s) for s in r["input_x_gradient"])
    assert any(s != 0 for s in r["input_x_gradient"])
    # the default target is the model's top-1 next token at the end, with its probability
    analysed = tiny_weights_engine.analyze("The cat sat on", incremental=False)
    top = int(analysed.top_ids[-1, 0])
    assert r["target"]["id"] == top and r["target"]["prob"] == pytest.approx(float(analysed.top_probs[-1, 0]), abs=1e-5)
    assert r["target"]["text"] == tiny_weights_engine.tokenizer.decode([top])
    code, out, _ = run(
        capsys, "attribute", "--model", tiny_gguf, "--json", "--target", "1171", "--ablate", "1:1", "a b"
    )
    r = json.loads(out)[0]
    assert code == 0 and r["target"]["id"] == 1171 and r["ablated"] == [[1, 1]]
    assert len(r["input_x_gradient"]) == 3


def test_attribute_table(capsys, tiny_gguf):
    code, out, err = run(capsys, "attribute", "--model", tiny_gguf, "--no-start-token", "The cat sat")
    assert code == 0, err
    lines = out.splitlines()
    assert "next token" in lines[0] and "P = " in lines[0]
    assert len(lines) == 2 + 3  # title, column header, one line per token (no start token)


@pytest.mark.parametrize("target", ["-1", str(TINY_CONFIG.vocab_size), "x"])
def test_attribute_bad_target_is_exit_2(capsys, tiny_gguf, target):
    assert_one_sentence(*run(capsys, "attribute", "--model", tiny_gguf, "--target", target, "The cat"))


def test_attribute_nothing_to_attribute_is_exit_2(capsys, tiny_gguf):
    assert_one_sentence(*run(capsys, "attribute", "--model", tiny_gguf, "--no-start-token", ""))


def test_patch_json(capsys, tiny_gguf, tiny_weights_engine):
    clean, corrupt = "The capital of France is", "The capital of Italy is"
    code, out, err = run(capsys, "patch", "--model", tiny_gguf, "--json", "--clean", clean, "--corrupt", corrupt)
    assert code == 0, err
    r = json.loads(out)
    assert set(r) >= {"clean", "corrupt", "target", "clean_prob", "corrupt_prob", "prob"}
    assert r["clean"] == clean and r["corrupt"] == corrupt and set(r["target"]) == {"id", "text"}
    T = len(r["clean_tokens"])
    assert T == 6 and len(r["prob"]) == L and all(len(row) == T for row in r["prob"])
    # layer L (the last row) at the last position is the clean run's residual itself
    assert r["prob"][-1][-1] == pytest.approx(r["clean_prob"], abs=1e-5)
    # the start token is the same in both texts: patching it changes nothing
    assert all(row[0] == pytest.approx(r["corrupt_prob"], abs=1e-6) for row in r["prob"])
    analysed = tiny_weights_engine.analyze(clean, incremental=False)
    assert r["target"]["id"] == int(analysed.top_ids[-1, 0])
    assert r["clean_prob"] == pytest.approx(float(analysed.top_probs[-1, 0]), abs=1e-5)
    code, out, _ = run(capsys, "patch", "--model", tiny_gguf, "--clean", clean, "--corrupt", corrupt)
    assert code == 0 and f"{L:>9} " in out and "clean run" in out


def test_patching_that_would_take_long_waits_for_wait(capsys, tiny_gguf, monkeypatch):
    """Longer than PATCH_SECONDS is refused in one sentence giving the runs and the time, before any patched run;
    --wait runs it."""
    import explainer.cli_why as cli_why
    import explainer.core.patching as patching

    clean, corrupt = "The capital of France is", "The capital of Italy is"
    passes = []
    real = patching._patched_probs
    monkeypatch.setattr(patching, "_patched_probs", lambda *a: passes.append(1) or real(*a))
    monkeypatch.setattr(cli_why, "PATCH_SECONDS", 0)
    code, out, err = run(capsys, "patch", "--model", tiny_gguf, "--clean", clean, "--corrupt", corrupt)
    assert_one_sentence(code, out, err)
    assert "Patching these 6-token texts means" in err and "patched runs, about" in err and "--wait" in err
    assert not passes
    code, out, err = run(
        capsys, "patch", "--model", tiny_gguf, "--wait", "--json", "--clean", clean, "--corrupt", corrupt
    )
    assert code == 0 and passes and len(json.loads(out)["prob"]) == L, err


def test_the_patching_plan_counts_the_runs_that_differ(tiny_weights_engine):
    from explainer.core.patching import patch

    e = tiny_weights_engine
    ids = [int(t) for t in np.arange(1, 25) * 7]
    plans = {}
    for first in (20, 4):  # the same length; a difference from position 4 leaves far more to patch
        other = list(ids)
        other[first] += 1
        patch(e, ids, other, on_plan=lambda runs, s, first=first: plans.setdefault(first, (runs, s)))
        assert plans[first][0] == L * (24 - first) and math.isfinite(plans[first][1]) and plans[first][1] >= 0


def test_patch_different_lengths_gives_both_counts(capsys, tiny_gguf):
    code, out, err = run(capsys, "patch", "--model", tiny_gguf, "--clean", "The cat sat", "--corrupt", "A dog")
    assert_one_sentence(code, out, err)
    assert "4 tokens" in err and "3" in err


def test_patch_refuses_texts_cut_at_max_tokens(capsys, tiny_gguf):
    """Patching prefixes cut at --max-tokens would answer another question (the next token after the cut), and two
    texts of different lengths would pass as equal: a cut text is refused, naming which."""
    code, out, err = run(
        capsys, "patch", "--model", tiny_gguf, "--max-tokens", "3", "--clean", "The capital of France is",
        "--corrupt", "A b c d e f g h i j",
    )  # fmt: skip
    assert_one_sentence(code, out, err)
    assert "clean and corrupted texts are longer than 3 tokens" in err
    code, out, err = run(capsys, "patch", "--model", tiny_gguf, "--max-tokens", "4", "--clean", "The cat sat",
                         "--corrupt", "A b c d e f g h")  # fmt: skip
    assert_one_sentence(code, out, err)
    assert "The corrupted text is longer than 4 tokens" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["patch", "--clean", "a"],
        ["patch", "--clean", "a", "--corrupt", "b", "--max-tokens", "0"],
        ["patch", "--no-start-token", "--clean", "", "--corrupt", ""],
        ["patch", "--clean", "a", "--corrupt", "b", "--ablate", "9:9"],
    ],
)
def test_patch_user_errors_exit_2(capsys, tiny_gguf, argv):
    assert_one_sentence(*run(capsys, *argv, "--model", tiny_gguf))
