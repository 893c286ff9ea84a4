"""``explainer bench`` on the tiny model: the JSON schema and the table (not the timings)."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def tiny():
    from explainer.core.engine import demo_engine

    return demo_engine()


def test_text_with_tokens_gives_the_asked_length(tiny):
    from explainer.bench import text_with_tokens

    for n in (2, 8, 32, 128):
        assert tiny.analyze(text_with_tokens(tiny, n)).n_tokens == n


def test_run_bench_schema(tiny):
    from explainer.bench import format_table, run_bench

    res = run_bench(tiny, cases=(8, 16), keystrokes=3, full_repeats=1)
    json.loads(json.dumps(res))  # serialisable
    assert isinstance(res["device"], str) and res["backend"] in ("torch", "onnx")
    assert isinstance(res["load_s"], float) and res["load_s"] >= 0  # in-memory weights: the torch model is lazy
    assert isinstance(res["peak_rss_mb"], float) and res["peak_rss_mb"] > 0
    assert [c["tokens"] for c in res["cases"]] == [8, 16]
    for c in res["cases"]:
        assert set(c) >= {"tokens", "full_ms", "keystroke_ms"}
        assert all(isinstance(c[k], float) and c[k] > 0 for k in ("full_ms", "keystroke_ms"))
    table = format_table(res)
    assert "keystroke" in table and "16" in table


def test_bench_is_a_cli_subcommand():
    from explainer.cli import build_parser

    args = build_parser().parse_args(
        ["bench", "--json", "--backend", "onnx", "--device", "cpu", "--compare-hf", "--tokens", "8,32"]
    )
    assert args.json and args.backend == "onnx" and args.compare_hf and args.tokens == "8,32"
    assert callable(args.handler)
    assert build_parser().parse_args(["analyze", "--backend", "auto", "x"]).backend == "auto"


def test_bench_rejects_bad_token_lists(monkeypatch):
    from explainer.cli import main

    assert main(["bench", "--tokens", "0,8"]) == 2
