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
    assert isinstance(res["cpu"], str) and res["cpu"] and res["cpu"] in format_table(res)
    assert isinstance(res["load_s"], float) and res["load_s"] >= 0  # in-memory weights: the torch model is lazy
    assert isinstance(res["peak_rss_mb"], float) and res["peak_rss_mb"] > 0
    assert [c["tokens"] for c in res["cases"]] == [8, 16]
    for c in res["cases"]:
        assert set(c) >= {"tokens", "full_ms", "keystroke_ms"}
        assert all(isinstance(c[k], float) and c[k] > 0 for k in ("full_ms", "keystroke_ms"))
    assert "kernel_floor_ms" not in res  # (the torch backend has no four-bit kernels to time)
    table = format_table(res)
    assert "keystroke" in table and "16" in table and "kernels alone" not in table
    res["kernel_floor_ms"] = {"layers": 9.5, "unembedding": 3.6, "total": 13.1}
    assert "9.5 ms in the layers + 3.6 ms in the output table = 13.1 ms" in format_table(res)


def test_bench_runs_from_the_command_line(tmp_path, bundled_gguf, capsys):
    """``explainer bench --json`` on a model file: one JSON object with the cases asked for, on the backend and
    device asked for."""
    from explainer.cli import main
    from explainer.core.engine import TINY_CONFIG
    from explainer.core.llama import random_weights
    from tests.gguf_factory import write_tiny_llama

    gguf = write_tiny_llama(tmp_path / "tiny.gguf", TINY_CONFIG, random_weights(TINY_CONFIG), bundled_gguf)
    argv = ["bench", "--json", "--model", str(gguf), "--backend", "torch", "--device", "cpu", "--tokens", "8,32"]
    assert main([*argv, "--keystrokes", "2"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["backend"] == "torch" and res["device"] == "cpu"
    assert [c["tokens"] for c in res["cases"]] == [8, 32]
    assert all(c["keystroke_ms"] > 0 and "hf_ms" not in c for c in res["cases"])
    for c in res["cases"]:  # the window's thread: its share of the picture, not the time it waited for the model
        assert 0 < c["picture_main_cpu_ms"] and 0 < c["picture_main_ms"] < c["picture_ms"]


def test_bench_rejects_bad_token_lists(monkeypatch):
    from explainer.cli import main

    assert main(["bench", "--tokens", "0,8"]) == 2


def test_picture_summary_reports_medians_of_each_time():
    from explainer.bench_window import summary

    times = [(50.0, 9.0, 4.0), (40.0, 7.0, 3.0), (90.0, 30.0, 12.0), (45.0, 8.0, 5.0), (42.0, 6.0, 2.0)]
    s = summary(times)
    assert s == {"picture_ms": 45.0, "picture_p90_ms": 50.0, "picture_main_ms": 8.0, "picture_main_cpu_ms": 4.0}


def test_the_cpu_is_named_with_its_widest_vector_instructions(tmp_path):
    """Bench numbers differ several times between CPUs with and without AVX-512: the report says which it ran on."""
    from explainer.core.devices import cpu_features, cpu_label

    info = tmp_path / "cpuinfo"
    line = "flags\t\t: fpu sse2 avx f16c fma avx2 bmi2 {extra}\n"
    for extra, widest in (("avx512f avx512bw avx512_bf16", "AVX-512"), ("", "AVX2")):
        info.write_text(f"processor\t: 0\nmodel name\t: Some CPU 9000\n{line.format(extra=extra)}" * 2)
        name, flags = cpu_features(str(info))
        assert name == "Some CPU 9000" and "sse2" not in flags and "bmi2" not in flags
        assert flags == tuple(sorted(flags)) and {"avx", "avx2", "fma", "f16c"} <= set(flags)
        assert cpu_label(str(info)) == f"Some CPU 9000 ({widest})"
    info.write_text("processor\t: 0\nmodel name\t: Old CPU\nflags\t\t: fpu sse2\n")
    assert cpu_label(str(info)) == "Old CPU"
    missing_name, missing_flags = cpu_features(str(tmp_path / "absent"))  # not Linux: the platform's name
    assert isinstance(missing_name, str) and missing_flags == ()
