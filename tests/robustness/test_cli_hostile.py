"""Every hostile text through the CLI (``analyze --json``, ``tokenize --json``) as an argument, through
``--text-file PATH`` and through standard input: exit 0 with valid JSON (schema checked), or exit 2 with one
sentence; never a traceback.

In-process runs use ``explainer.cli.main`` with the tiny model written as a GGUF; a few subprocess runs send
real argv bytes (invalid UTF-8 included) and pipes; one run uses the real model (marked slow).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.robustness.hostile_texts import ARGV_SAFE_NAMES, HOSTILE, NO_TOKEN_BYTES, big_paste

ROOT = Path(__file__).resolve().parents[2]
SURROGATE = re.compile("[\ud800-\udfff]")
MAX_TOKENS = 48
TOP_K = 3
MODES = ("arg", "file", "stdin")


# --- checks -------------------------------------------------------------------------------------------------------
def strict_json(out: str):
    """Parse stdout as one line of strict JSON (NaN / Infinity are not JSON)."""
    assert out.endswith("\n") and out.count("\n") == 1, "stdout must be one line of JSON"

    def bad_constant(name):
        raise AssertionError(f"{name} is not valid JSON")

    return json.loads(out, parse_constant=bad_constant)


def assert_one_sentence(code: int, out: str, err: str) -> None:
    assert code == 2, (code, err)
    assert out == "" and err.startswith("explainer: ") and err.count("\n") == 1 and err.endswith("\n")
    assert "Traceback" not in err and err.strip().endswith((".", ")"))


def expected_text(raw: str, mode: str) -> str:
    """The text the CLI should report: from a file or pipe, invalid UTF-8 decodes to U+FFFD and a leading
    byte-order mark is left out."""
    if mode == "arg":
        return raw
    text = file_bytes(raw).decode("utf-8", errors="replace") if SURROGATE.search(raw) else raw
    return text[1:] if text.startswith("\ufeff") else text


def file_bytes(raw: str) -> bytes:
    """What a file holding ``raw`` contains: surrogate escapes become the original (invalid) bytes."""
    escapes = all(0xDC80 <= ord(c) <= 0xDCFF for c in SURROGATE.findall(raw))
    return raw.encode("utf-8", errors="surrogateescape" if escapes else "surrogatepass")


def same_text(got: str, want: str) -> None:
    if SURROGATE.search(want):  # lone surrogates become one or more U+FFFD
        assert not SURROGATE.search(got)
        assert got.replace("\ufffd", "") == SURROGATE.sub("", want).replace("\ufffd", "")
    else:
        assert got == want


def kept_bytes(text: str) -> bytes:
    """The UTF-8 of ``text`` without the bytes SmolLM2 has no token for (they are reported as dropped)."""
    return bytes(b for b in SURROGATE.sub("\ufffd", text).encode("utf-8") if b not in NO_TOKEN_BYTES)


def check_tokenize_row(row: dict, want: str) -> None:
    assert set(row) == {"text", "tokenizer", "ids", "tokens", "dropped", "specials_parsed"}
    same_text(row["text"], want)
    text = row["text"]
    assert row["tokenizer"] == "smollm2" and row["specials_parsed"] is False
    assert row["ids"] == [t["id"] for t in row["tokens"]]
    for t in row["tokens"]:
        assert set(t) == {"id", "text", "bytes", "start", "end"}
        assert isinstance(t["id"], int) and 0 <= t["id"] < 49152
        assert 0 <= t["start"] < t["end"] <= len(text)
        assert t["text"] == bytes.fromhex(t["bytes"]).decode("utf-8", errors="replace")
    assert b"".join(bytes.fromhex(t["bytes"]) for t in row["tokens"]) == kept_bytes(text)
    for d in row["dropped"]:
        assert set(d) == {"char_index", "byte"} and int(d["byte"], 16) in NO_TOKEN_BYTES
        assert 0 <= d["char_index"] < len(text)
    assert len(row["dropped"]) == len(SURROGATE.sub("\ufffd", text).encode("utf-8")) - len(kept_bytes(text))


def check_analyze_row(
    row: dict,
    want: str,
    max_tokens: int = MAX_TOKENS,
    top_k: int = TOP_K,
    specials: bool = False,
    attention: bool = False,
) -> None:
    keys = {
        "text",
        "model",
        "device",
        "backend",
        "truncated",
        "tokens",
        "positions",
        "sentence_logprob",
        "dropped",
        "specials_parsed",
    }
    assert set(row) == keys | ({"attention"} if attention else set())
    same_text(row["text"], want)
    toks, pos = row["tokens"], row["positions"]
    assert 1 <= len(toks) == len(pos) <= max_tokens and isinstance(row["truncated"], bool)
    assert toks[0] == {"id": 0, "text": "<|endoftext|>", "bytes": b"<|endoftext|>".hex(), "special": True}
    assert pos[0]["prob"] is None and pos[0]["surprisal_bits"] is None
    for t in toks:
        assert set(t) == {"id", "text", "bytes", "special"} and 0 <= t["id"] < 49152
    for p in pos[1:]:
        assert 0 < p["prob"] <= 1 and p["surprisal_bits"] == pytest.approx(-math.log2(p["prob"]), rel=1e-4, abs=1e-6)
    for p in pos:
        probs = [c["prob"] for c in p["top"]]
        assert len(probs) == top_k and probs == sorted(probs, reverse=True) and all(0 <= q <= 1 for q in probs)
        assert all(set(c) == {"id", "text", "prob"} for c in p["top"])
    assert math.isfinite(row["sentence_logprob"]) and row["sentence_logprob"] <= 0
    typed = b"".join(bytes.fromhex(t["bytes"]) for t in toks[1:])
    if not specials:
        assert not any(t["special"] for t in toks[1:]) and row["specials_parsed"] is False
        full = kept_bytes(row["text"])
        assert full.startswith(typed)
        assert row["truncated"] == (typed != full)
    if attention:
        a = row["attention"]
        assert len(a) == 2 and len(a[0]) == 4 and len(a[0][0]) == len(toks)
        assert all(abs(sum(r) - 1) < 1e-4 for layer in a for head in layer for r in head)


# --- in-process: every hostile text, three ways in ----------------------------------------------------------------
def feed(cli, tmp_path, mode: str, raw: str, *argv: str):
    if mode == "arg":
        return cli(*argv, raw)
    if mode == "file":
        f = tmp_path / "text.txt"
        f.write_bytes(file_bytes(raw))
        return cli(*argv, "--text-file", str(f))
    return cli(*argv, "--text-file", "-", stdin=file_bytes(raw))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_tokenize_hostile(cli, tmp_path, name, mode):
    raw = HOSTILE[name]
    r = feed(cli, tmp_path, mode, raw, "tokenize", "--json")
    assert r.code == 0, r.err
    rows = strict_json(r.out)
    assert len(rows) == 1
    check_tokenize_row(rows[0], expected_text(raw, mode))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_analyze_hostile(cli, tmp_path, tiny_gguf, name, mode):
    raw = HOSTILE[name]
    r = feed(
        cli,
        tmp_path,
        mode,
        raw,
        "analyze",
        "--json",
        "--model",
        str(tiny_gguf),
        "--max-tokens",
        str(MAX_TOKENS),
        "--top-k",
        str(TOP_K),
    )
    assert r.code == 0, r.err
    rows = strict_json(r.out)
    assert len(rows) == 1
    check_analyze_row(rows[0], expected_text(raw, mode))


@pytest.mark.parametrize(
    "name",
    [
        "special_im_end",
        "special_endoftext",
        "special_im_start_chat",
        "special_lookalike",
        "special_fim",
        "c0_controls",
        "zwj_family",
        "empty",
    ],
)
def test_analyze_parse_specials_with_attention(cli, tiny_gguf, name):
    raw = HOSTILE[name]
    r = cli(
        "analyze",
        "--json",
        "--model",
        str(tiny_gguf),
        "--max-tokens",
        "32",
        "--top-k",
        "2",
        "--parse-specials",
        "--attention",
        raw,
    )
    assert r.code == 0, r.err
    row = strict_json(r.out)[0]
    check_analyze_row(row, raw, 32, 2, specials=True, attention=True)
    assert row["specials_parsed"] == any(t["special"] for t in row["tokens"][1:])
    if name == "special_im_end":
        assert [t["id"] for t in row["tokens"]] == [0, 2] and row["specials_parsed"]


def test_all_hostile_texts_in_one_call_keep_their_order(cli, tiny_gguf):
    names = sorted(HOSTILE)
    r = cli(
        "analyze",
        "--json",
        "--model",
        str(tiny_gguf),
        "--max-tokens",
        "16",
        "--top-k",
        "1",
        *(HOSTILE[n] for n in names),
    )
    assert r.code == 0, r.err
    rows = strict_json(r.out)
    assert len(rows) == len(names)
    for n, row in zip(names, rows):
        check_analyze_row(row, HOSTILE[n], 16, 1)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_table_output_hostile(cli, tiny_gguf, name):
    """Without --json: the human-readable tables print every hostile text without crashing."""
    r = cli("tokenize", HOSTILE[name])
    assert r.code == 0 and "Traceback" not in r.err
    if name in (
        "zwj_family",
        "c0_controls",
        "special_im_end",
        "empty",
        "rtl_override",
        "plane4_U40000",
        "lone_high_surrogate",
        "no_token_only",
    ):
        r = cli("analyze", "--model", str(tiny_gguf), "--max-tokens", "32", HOSTILE[name])
        assert r.code == 0 and "Traceback" not in r.err and "tokens" in r.out


# --- user errors stay one sentence, even with hostile paths and options --------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["tokenize", "--text-file", "no\nsuch\nfile.txt"],
        ["tokenize", "--text-file", "a\x00b"],
        ["tokenize", "--text-file", "\udcff\udcfe.txt"],
        ["tokenize", "--tokenizer", "\x1b[31mred\nline", "x"],
        ["tokenize", "--text-file", "/", "x"],
        ["analyze", "--model", "evil\nname\u202e.gguf", "x"],
        ["analyze", "--model", "a\x00b.gguf", "x"],
        ["analyze", "--device", "\u2028cuda", "x"],
        ["analyze", "--device", "", "x"],
        ["analyze", "--max-tokens", "0", "x"],
        ["analyze", "--top-k", "-1", "x"],
        ["tokenize", "--text-file", "", "x"],
        ["tokenize", "--text-file", ""],
        ["heads", "--seed", "-1"],
        ["heads", "--seeds", "0"],
        ["heads", "--seeds", "1000000000000", "--length", "5"],  # refused at once, not a night of passes
        ["bench", "--no-picture", "--tokens", "abc"],
        ["bench", "--no-picture", "--tokens", "1.5"],
        ["bench", "--no-picture", "--tokens", "8;32"],
        ["bench", "--no-picture", "--tokens", ""],
        ["bench", "--no-picture", "--tokens", "٣"],
    ],
)
def test_hostile_options_are_one_sentence(cli, argv):
    r = cli(*argv)
    assert_one_sentence(r.code, r.out, r.err)


def test_an_unknown_option_points_at_the_subcommands_help(cli):
    r = cli("analyze", "-x", "some text")
    assert_one_sentence(r.code, r.out, r.err)
    assert "'explainer analyze --help'" in r.err and "goes after --" in r.err
    r = cli("tokenize", "-hello")  # read by argparse as -h with "ello"
    assert_one_sentence(r.code, r.out, r.err)
    assert "goes after --" in r.err
    r = cli("tokenize", "--json", "--", "-hello")
    assert r.code == 0 and strict_json(r.out)[0]["text"] == "-hello"


@pytest.mark.skipif(os.name != "posix", reason="devices and named pipes")
def test_a_model_path_that_is_not_a_regular_file_is_refused_without_reading_it(cli, tmp_path):
    """A named pipe with no writer would block the first read forever; a device has no size to check."""
    fifo = tmp_path / "model.gguf"
    os.mkfifo(fifo)
    for path in (str(fifo), "/dev/zero"):
        r = cli("analyze", "--model", path, "x")
        assert_one_sentence(r.code, r.out, r.err)
        assert "is not a regular file" in r.err
    r = cli("analyze", "--model", "", "x")
    assert_one_sentence(r.code, r.out, r.err)
    assert "model path is empty" in r.err


@pytest.mark.parametrize(("word", "guess"), [("analyse", "analyze"), ("Tokenize", "tokenize"), ("scene", "scenes")])
def test_a_mistyped_command_names_the_commands(cli, word, guess):
    """A word first is never the window (it takes options only): one sentence that lists the commands."""
    r = cli(word, "some text")
    assert_one_sentence(r.code, r.out, r.err)
    assert f"did you mean '{guess}'" in r.err and "analyze, tokenize, heads" in r.err


def test_bench_tokens_past_the_context_are_refused_before_timing(cli, tiny_gguf, monkeypatch):
    from explainer import bench

    def never(*a, **k):
        raise AssertionError("nothing is timed")

    monkeypatch.setattr(bench, "run_bench", never)
    r = cli("bench", "--json", "--no-picture", "--model", str(tiny_gguf), "--tokens", "8,100000")
    assert_one_sentence(r.code, r.out, r.err)
    assert "--tokens can be at most" in r.err
    r = cli("bench", "--json", "--no-picture", "--model", str(tiny_gguf), "--tokens", "8", "--keystrokes", "100000")
    assert_one_sentence(r.code, r.out, r.err)
    assert "--keystrokes can be at most" in r.err  # the option that is too large is the one named
    r = cli("bench", "--json", "--no-picture", "--model", str(tiny_gguf), "--tokens", "1,8")
    assert_one_sentence(r.code, r.out, r.err)
    assert "2 or more" in r.err  # one token is the start token alone: no text to time


@pytest.mark.parametrize(
    "argv",
    [
        ["analyze", "--top-k", "2", "a short text"],
        ["analyze", "--json", "--attention", "a short text"],
        ["attribute", "a short text"],
        ["heads", "--length", "4", "--seeds", "1"],
    ],
)
def test_work_that_would_not_fit_in_memory_is_refused_in_one_sentence(cli, tiny_gguf, monkeypatch, argv):
    """The memory an analysis needs is checked before it starts (the system's out-of-memory kill cannot be
    caught): with 1 kB free, every command says so; the same commands run with the memory there is."""
    from explainer.core import work_memory

    command, *rest = argv
    full = [command, "--model", str(tiny_gguf), *rest]
    monkeypatch.setattr(work_memory, "free_memory", lambda: 1)
    r = cli(*full)
    assert_one_sentence(r.code, r.out, r.err)
    assert "of memory, but only" in r.err and "is free; use " in r.err
    monkeypatch.setattr(work_memory, "free_memory", lambda: 1 << 40)
    r = cli(*full)
    assert r.code == 0, r.err


def test_the_memory_estimate_grows_with_the_text_and_the_options(monkeypatch):
    from explainer.core import work_memory
    from explainer.core.errors import UserError

    class Info:
        n_layers, n_heads = 30, 9

    assert work_memory.attention_weights(Info, 1024) == 30 * 9 * 1024**2
    monkeypatch.setattr(work_memory, "free_memory", lambda: 10**9)
    work_memory.require(0.9e9, "This", "use less")
    with pytest.raises(UserError, match=r"needs about 1\.1 GB of memory, but only 1\.0 GB is free; use less\.$"):
        work_memory.require(1.1e9, "This", "use less")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf16_text_file_with_its_byte_order_mark_is_read_as_utf16(cli, tmp_path, encoding):
    text = "héllo wörld 🍓\nstrawberry"
    f = tmp_path / "notepad.txt"
    f.write_bytes(text.encode(encoding) if encoding == "utf-16" else ("\ufeff" + text).encode(encoding))  # a BOM each
    r = cli("tokenize", "--json", "--text-file", str(f))
    assert r.code == 0, r.err
    assert strict_json(r.out)[0]["text"] == text


@pytest.mark.skipif(os.name != "posix", reason="devices and named pipes")
def test_a_pipe_without_a_writer_and_an_endless_device_are_one_sentence(cli, tmp_path, monkeypatch):
    """A named pipe nobody writes to is opened without waiting and said to be empty; /dev/zero and an endless
    standard input stop at the size limit; a pipe with a writer is read as the text."""
    import threading

    import explainer.cli as cli_mod

    fifo = tmp_path / "text.txt"
    os.mkfifo(fifo)
    r = cli("tokenize", "--json", "--text-file", str(fifo))
    assert_one_sentence(r.code, r.out, r.err)
    assert "Nothing was written to the pipe" in r.err
    writer = threading.Thread(target=lambda: fifo.write_bytes(b"Hello pipe"))
    writer.start()
    r = cli("tokenize", "--json", "--text-file", str(fifo))
    writer.join()
    assert r.code == 0, r.err
    assert strict_json(r.out)[0]["text"] == "Hello pipe"
    monkeypatch.setattr(cli_mod, "MAX_TEXT_FILE_BYTES", 2**20)
    r = cli("tokenize", "--json", "--text-file", "/dev/zero")
    assert_one_sentence(r.code, r.out, r.err)
    assert "/dev/zero holds more than 1 MB of text" in r.err
    r = cli("tokenize", "--json", "--text-file", "-", stdin=b"ab" * 2**20)
    assert_one_sentence(r.code, r.out, r.err)
    assert "Standard input holds more than 1 MB of text" in r.err
    r = cli("tokenize", "--json", "--text-file", "-", stdin=b"a" * 2**20)  # at the limit: read
    assert r.code == 0 and len(strict_json(r.out)[0]["text"]) == 2**20


def test_small_cli_wordings(cli, tiny_gguf):
    r = cli("tokenize")
    assert_one_sentence(r.code, r.out, r.err)
    assert "Give the text to tokenize" in r.err
    r = cli("analyze", "--model", str(tiny_gguf), "--attention", "x")  # the weights are printed only in JSON
    assert_one_sentence(r.code, r.out, r.err)
    assert "use it with --json" in r.err
    r = cli("analyze", "--model", str(tiny_gguf), "--no-start-token", "a")
    assert r.code == 0 and ": 1 token" in r.out and "1 tokens" not in r.out
    r = cli("tokenize", "a")
    assert r.code == 0 and r.out.startswith("1 token, 1 character (")


def test_an_unknown_log_level_is_one_warning(cli, monkeypatch, caplog):
    monkeypatch.setenv("EXPLAINER_LOG", "NOPE")
    with caplog.at_level("WARNING"):
        r = cli("tokenize", "--json", "hi")
    assert r.code == 0 and strict_json(r.out)[0]["text"] == "hi" and "Traceback" not in r.err
    assert [m for m in caplog.messages if "EXPLAINER_LOG='NOPE' is not a logging level" in m]


def test_directory_and_binary_text_files(cli, tmp_path, tiny_gguf):
    r = cli("tokenize", "--json", "--text-file", str(tmp_path))
    assert_one_sentence(r.code, r.out, r.err)
    # a binary file (the model itself) as the text: analysed up to --max-tokens, flagged truncated
    r = cli(
        "analyze",
        "--json",
        "--model",
        str(tiny_gguf),
        "--max-tokens",
        "64",
        "--top-k",
        "2",
        "--text-file",
        str(tiny_gguf),
    )
    assert r.code == 0, r.err
    row = strict_json(r.out)[0]
    assert row["truncated"] is True and len(row["tokens"]) <= 64


def test_max_tokens_past_the_context_is_bounded(cli, tiny_gguf, monkeypatch):
    """--max-tokens far beyond the model's context used to try to allocate the T² attention of the whole
    text (an 'internal error' when that failed); it is now cut at the context length."""
    import dataclasses

    from explainer.core import engine as eng

    real_init = eng.Engine.__init__

    def small_context(self, *a, **k):  # a model with a 64-token context (the tiny GGUF says 2048)
        real_init(self, *a, **k)
        self.info = dataclasses.replace(self.info, context_length=64)

    monkeypatch.setattr(eng.Engine, "__init__", small_context)
    r = cli("analyze", "--json", "--model", str(tiny_gguf), "--max-tokens", "1000000", "--top-k", "1", "word " * 300)
    assert r.code == 0, r.err
    row = strict_json(r.out)[0]
    assert row["truncated"] is True and len(row["tokens"]) == 64


def test_out_of_memory_is_one_sentence(cli, tiny_gguf, monkeypatch):
    from explainer.core import engine as eng

    def fail(*a, **k):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: "
            "you tried to allocate 160000000000 bytes."
        )

    monkeypatch.setattr(eng.Engine, "analyze", fail)
    r = cli("analyze", "--model", str(tiny_gguf), "x")
    assert_one_sentence(r.code, r.out, r.err)
    assert "out of memory" in r.err


# --- the 1 MB paste ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def big():
    return big_paste()


@pytest.mark.parametrize("mode", MODES)
def test_one_megabyte_paste_is_cut(cli, tmp_path, tiny_gguf, big, mode):
    """(How long it takes: benchmarks/tokenizer_speed.py.)"""
    assert len(big.encode("utf-8")) >= 1_000_000
    r = feed(cli, tmp_path, mode, big, "analyze", "--json", "--model", str(tiny_gguf), "--top-k", "5")
    assert r.code == 0, r.err
    row = strict_json(r.out)[0]
    assert row["truncated"] is True and len(row["tokens"]) == 1024  # the default --max-tokens
    check_analyze_row(row, big, 1024, 5)


def test_one_megabyte_tokenizer_cut_looks_only_at_its_first_pieces(big, encoded_chars):
    from explainer.core.tokenizers import get_tokenizer

    tok = get_tokenizer("smollm2")
    seen = encoded_chars(tok)
    tz = tok.tokenize(big, max_tokens=1024)
    assert len(tz.tokens) == 1024 and not tz.complete
    # BPE ran on the text of the tokens kept and at most the rest of the last piece (this text's are short)
    assert tz.tokens[-1].end <= sum(seen) < tz.tokens[-1].end + 100 < len(big) // 100, sum(seen)


def test_one_megabyte_tokenize_json(cli, big):
    r = cli("tokenize", "--json", "--text-file", "-", stdin=big.encode("utf-8"))
    assert r.code == 0, r.err
    row = strict_json(r.out)[0]
    assert row["text"] == big and len(row["ids"]) > 100_000


# --- subprocesses: real argv bytes, pipes, odd locales ---------------------------------------------------------------
def run_cli(*argv, stdin: bytes | None = None, env_extra: dict | None = None, timeout: float = 180):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env_extra or {}))
    env.pop("EXPLAINER_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "explainer", *argv], input=stdin, capture_output=True, env=env, cwd=ROOT, timeout=timeout
    )


@pytest.mark.skipif(os.name != "posix", reason="bytes in argv are a POSIX thing")
def test_subprocess_invalid_utf8_argv():
    bad = [
        b"caf\xe9 \xff\xfe",
        b"\xed\xa0\x80 lone surrogate as bytes",
        b"\xf1\x80\x80\x80 plane 4",
        b"\xc0\xaf overlong",
        os.fsencode(HOSTILE["zwj_family"] + HOSTILE["rtl_override"]),
    ]
    p = run_cli("tokenize", "--json", *bad)
    assert p.returncode == 0, p.stderr
    rows = strict_json(p.stdout.decode("utf-8"))
    assert [r["text"] for r in rows] == [b.decode("utf-8", errors="replace") for b in bad]
    for row in rows:
        check_tokenize_row(row, row["text"])


@pytest.mark.skipif(os.name != "posix", reason="bytes in argv are a POSIX thing")
def test_subprocess_analyze_every_argv_safe_text(tiny_gguf):
    names = sorted(ARGV_SAFE_NAMES)
    p = run_cli(
        "analyze",
        "--json",
        "--model",
        str(tiny_gguf),
        "--max-tokens",
        "24",
        "--top-k",
        "2",
        *(os.fsencode(HOSTILE[n]) for n in names),
    )
    assert p.returncode == 0, p.stderr
    assert b"Traceback" not in p.stderr
    rows = strict_json(p.stdout.decode("utf-8"))
    for n, row in zip(names, rows, strict=True):
        check_analyze_row(row, HOSTILE[n], 24, 2)


def test_subprocess_stdin_with_nul_bom_and_invalid_utf8(tiny_gguf):
    data = b"\xef\xbb\xbfstart\x00mid\xff\xfe\x04\x1d end \xf0\x9f\x91" + HOSTILE["zwj_storm"].encode()
    p = run_cli("analyze", "--json", "--model", str(tiny_gguf), "--max-tokens", "64", "--text-file", "-", stdin=data)
    assert p.returncode == 0, p.stderr
    row = strict_json(p.stdout.decode("utf-8"))[0]
    check_analyze_row(row, data[3:].decode("utf-8", errors="replace"), 64, 10)


@pytest.mark.skipif(os.name != "posix", reason="locale environment variables")
def test_subprocess_c_locale_prints_emoji():
    p = run_cli(
        "tokenize",
        "--json",
        HOSTILE["zwj_family"],
        env_extra={"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""},
    )
    assert p.returncode == 0, p.stderr
    assert strict_json(p.stdout.decode("utf-8"))[0]["text"] == HOSTILE["zwj_family"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (a device that is always full)")
def test_subprocess_output_that_cannot_be_written_is_one_sentence():
    with open("/dev/full", "wb") as full:
        p = subprocess.run(
            [sys.executable, "-m", "explainer", "tokenize", "--json", "x" * 5000],
            stdout=full,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            timeout=180,
        )
    assert p.returncode == 2
    assert (
        p.stderr.decode()
        == "explainer: The result could not be written to standard output (No space left on device).\n"
    )


@pytest.mark.skipif(os.name != "posix", reason="closing a child's standard streams")
@pytest.mark.parametrize(
    ("closed", "argv", "says"),
    [
        (1, ["tokenize", "--json", "x"], "Standard output is closed"),
        (1, ["tokenize", "x"], "Standard output is closed"),
        (0, ["tokenize", "--text-file", "-"], "Standard input is closed"),
    ],
)
def test_subprocess_closed_standard_streams_are_one_sentence(closed, argv, says):
    p = subprocess.run(
        [sys.executable, "-m", "explainer", *argv],
        stdout=None if closed == 1 else subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=180,
        preexec_fn=lambda: os.close(closed),  # the child has no threads yet
    )
    assert p.returncode == 2
    err = p.stderr.decode()
    assert err.startswith(f"explainer: {says}") and err.count("\n") == 1 and "Traceback" not in err


def test_subprocess_user_error_is_one_line_of_stderr():
    p = run_cli("tokenize", "--text-file", "no\nsuch\nfile")
    assert p.returncode == 2 and p.stdout == b""
    assert p.stderr.count(b"\n") == 1 and b"Traceback" not in p.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss units differ between systems")
def test_subprocess_one_megabyte_paste_memory_is_bounded(tmp_path, tiny_gguf, big):
    """Peak memory for a 1 MB paste is about that of a short text: the paste is cut before the model."""
    script = (
        "import os, resource, sys\nfrom explainer.cli import main\nrc = main(sys.argv[1:])\n"
        "sys.stdout.flush()\nsys.stderr.write('MAXRSS %d\\n' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
        "sys.exit(rc)\n"
    )
    peaks = {}
    for label, data in (("short", b"The cat sat on the mat."), ("1MB", big.encode("utf-8"))):
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        p = subprocess.run(
            [sys.executable, "-c", script, "analyze", "--json", "--model", str(tiny_gguf), "--text-file", "-"],
            input=data,
            capture_output=True,
            env=env,
            cwd=ROOT,
            timeout=300,
        )
        assert p.returncode == 0, p.stderr
        peaks[label] = int(re.search(rb"MAXRSS (\d+)", p.stderr).group(1)) / 1024  # MiB
        if label == "1MB":
            assert strict_json(p.stdout.decode("utf-8"))[0]["truncated"] is True
    assert peaks["1MB"] - peaks["short"] < 200, peaks  # attention of 1024 tokens + the text itself


# --- the real model ---------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_real_model_hostile_texts(cli, big):
    names = [
        "nul_inside",
        "no_token_0x04",
        "no_token_only",
        "plane4_U40000",
        "zwj_family",
        "zwj_rainbow_flag",
        "flag_fr",
        "math_alnum",
        "special_im_end",
        "special_lookalike",
        "rtl_override",
        "lone_combining",
        "mixed_scripts",
        "lone_high_surrogate",
        "whitespace_only",
        "empty",
        "zwj_storm",
        "long_word",
    ]
    r = cli("analyze", "--json", "--max-tokens", "48", "--top-k", "3", *(HOSTILE[n] for n in names), big)
    assert r.code == 0, r.err
    rows = strict_json(r.out)
    assert len(rows) == len(names) + 1
    for n, row in zip(names, rows):
        check_analyze_row(row, HOSTILE[n], 48, 3)
        assert row["model"] == "SmolLM2-135M-Instruct"
    assert rows[-1]["truncated"] is True and len(rows[-1]["tokens"]) == 48
