"""Property tests (hypothesis): tokenizers and ``Engine.analyze`` on arbitrary Unicode.

Texts come from every Unicode category (lone surrogates and control characters included), mixed with
fragments known to be hostile (bytes without a token, ZWJ, combining marks, special-token look-alikes) and with
long runs that exercise the tokenizer's long-piece windows.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from explainer.core.tokenizers import LONG_PIECE, TOKENIZER_NAMES, get_tokenizer

ALL_CATEGORIES = ["L", "M", "N", "P", "S", "Z", "C"]  # "C" includes Cs (surrogates) and Cc (controls)
FRAGMENTS = [
    "\x04",
    "\x1d",
    "\x00",
    "\x7f",
    "\U00040000",
    "\u200d",
    "\u0301",
    "\u202e",
    "\ufe0f",
    " ",
    "  ",
    "\n",
    "\r\n",
    "\t",
    "<|im_end|>",
    "<|endoftext|>",
    "<|im_start|>",
    "<|",
    "|>",
    "'s",
    "'ll",
    "1",
    "23",
    "é",
    "漢",
    "\U0001f600",
    "\U0001f1eb\U0001f1f7",
    "\U0001f468\u200d\U0001f469",
    "\ud800",
    "\udfff",
    "the",
    " the",
    "strawberry",
    "!!",
    "...",
    "\u00a0",
]
SURROGATES = re.compile("[\ud800-\udfff]")

any_char = st.characters(categories=ALL_CATEGORIES)
texts = st.lists(st.one_of(any_char, st.sampled_from(FRAGMENTS)), max_size=40).map("".join)
long_runs = st.builds(
    lambda a, unit, n, b: a + unit * n + b,
    texts,
    st.sampled_from(["a", "ab", "!", "\x04", "é", "\U0001f600", "\u200d", " ", "1", "x\x04"]),
    st.integers(LONG_PIECE // 2, 3 * LONG_PIECE),
    texts,
)
any_text = st.one_of(texts, texts, texts, long_runs)

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def utf8_clean(text: str) -> bytes:
    """The bytes a tokenizer sees: lone surrogates become U+FFFD."""
    return SURROGATES.sub("\ufffd", text).encode("utf-8")


@pytest.fixture(scope="module", params=TOKENIZER_NAMES)
def tok(request):
    return get_tokenizer(request.param)


# --- tokenizers -------------------------------------------------------------------------------------------------
@PROPS
@given(text=any_text, parse_specials=st.booleans())
def test_tokenize_accounts_for_every_byte(tok, text, parse_specials):
    tz = tok.tokenize(text, parse_specials=parse_specials)
    clean = SURROGATES.sub("\ufffd", text)
    raw = clean.encode("utf-8")
    delete = bytes(sorted(tok.missing_bytes))
    # every byte is either in a token or reported as dropped, in order
    assert [d.value for d in tz.dropped] == [b for b in raw if b in tok.missing_bytes]
    if not parse_specials:
        assert b"".join(t.bytes for t in tz.tokens) == raw.translate(None, delete)
        assert not tz.specials_parsed and not any(t.special for t in tz.tokens)
    for d in tz.dropped:
        assert 0 <= d.char_index < len(text) and d.value in clean[d.char_index].encode("utf-8")
    prev_start = 0
    for t in tz.tokens:
        assert 0 <= t.start < t.end <= len(text) and t.start >= prev_start
        prev_start = t.start
        assert 0 <= t.id < tok.vocab_size and tok.token_bytes(t.id) == t.bytes
        if t.special:
            assert clean[t.start : t.end] == t.bytes.decode("utf-8") and tok.is_special(t.id)
        else:
            assert t.bytes in clean[t.start : t.end].encode("utf-8").translate(None, delete)


@PROPS
@given(text=any_text)
def test_decode_encode_roundtrip_when_every_byte_has_a_token(tok, text):
    raw = utf8_clean(text)
    decoded = tok.decode(tok.encode(text))
    # the text less the bytes without a token (lone surrogates were U+FFFD), as UTF-8 decoding reads it
    assert decoded == raw.translate(None, bytes(sorted(tok.missing_bytes))).decode("utf-8", "replace")
    if not SURROGATES.search(text) and not any(b in tok.missing_bytes for b in raw):
        assert decoded == text


@PROPS
@given(text=any_text, n=st.integers(0, 80), parse_specials=st.booleans())
def test_max_tokens_gives_a_prefix(tok, text, n, parse_specials):
    full = tok.tokenize(text, parse_specials=parse_specials)
    cut = tok.tokenize(text, parse_specials=parse_specials, max_tokens=n)
    assert len(cut.tokens) <= n
    assert cut.tokens == full.tokens[: len(cut.tokens)]
    assert cut.dropped == full.dropped[: len(cut.dropped)]
    if 0 < n and len(full.tokens) <= n and len(full.dropped) < 4 * n + 1024:
        assert cut.tokens == full.tokens and cut.dropped == full.dropped
    assert full.complete
    assert cut.complete == (cut.tokens == full.tokens and cut.dropped == full.dropped)  # stopping early is said


@settings(max_examples=25, deadline=None)
@given(
    text=st.sampled_from(["a", "!", "é", "\U0001f600", "1", "ab "]).flatmap(
        lambda u: st.integers(LONG_PIECE, 4 * LONG_PIECE).map(lambda k: u * k)
    ),
    n=st.integers(1, 400),
)
def test_long_piece_windows_are_exact(text, n):
    tok = get_tokenizer("smollm2")
    assert tok.tokenize(text, max_tokens=n).tokens == tok.tokenize(text).tokens[:n]


def test_many_dropped_bytes_then_text_is_reported_as_cut(tiny_engine):
    """A paste of thousands of bytes without a token, then prose: the prose is not analysed, so the result
    must say it was cut (it used to say ``truncated=False``)."""
    text = "\x04" * 5000 + " hello world"
    r = tiny_engine.analyze(text, max_tokens=8)
    assert r.truncated and len(r.tokens) <= 8


def test_max_tokens_one_with_start_token(tiny_engine):
    """``--max-tokens 1`` used to give two tokens (the start token and one more)."""
    r = tiny_engine.analyze("hello world", max_tokens=1)
    assert [t.added for t in r.tokens] == [True] and r.truncated
    r = tiny_engine.analyze("hello world", max_tokens=1, start_token=False)
    assert len(r.tokens) == 1 and r.truncated


def test_a_certain_next_token_after_an_edit_has_probability_at_most_one(tiny_engine):
    """A change after the first tokens keeps their rows: the next token's log-probability at the first changed
    position is one dot product against the kept log-sum-exp, which rounding could put above 0 (a probability of
    1.00001 on a nearly certain token, found by the property test below)."""
    for before in ("abx", "abc", "ab ab"):
        tiny_engine.analyze(before, max_tokens=38, start_token=False)
        text = "ab" * 1277 + "\U00040000"
        r = tiny_engine.analyze(text, max_tokens=38, start_token=False)
        check_result(r, text, 38, False, 64, tiny_engine.info.vocab_size)


# --- the engine ---------------------------------------------------------------------------------------------------
def check_result(r, text: str, max_tokens: int, start_token: bool, top_k: int, vocab: int) -> None:
    T = r.n_tokens
    assert 0 < T <= max(1, max_tokens) if start_token else 0 <= T <= max(1, max_tokens)
    assert r.text == text and r.ids.shape == (T,) and [t.id for t in r.tokens] == r.ids.tolist()
    assert ((r.ids >= 0) & (r.ids < vocab)).all()
    assert r.token_prob.shape == r.surprisal_bits.shape == r.entropy_bits.shape == (T,)
    assert r.top_ids.shape == r.top_probs.shape == (T, top_k)
    assert r.hidden.shape[1] == T and r.final_normed.shape[0] == T and np.isfinite(r.hidden).all()
    if T:
        assert math.isnan(r.token_prob[0])
        p = r.token_prob[1:]
        assert ((p > 0) & (p <= 1)).all()
        np.testing.assert_allclose(r.surprisal_bits[1:], -np.log2(p), rtol=1e-4, atol=1e-5)
        assert ((r.top_probs >= 0) & (r.top_probs <= 1)).all() and (np.diff(r.top_probs, axis=1) <= 1e-7).all()
        assert (r.entropy_bits >= -1e-4).all() and math.isfinite(r.sentence_logprob) and r.sentence_logprob <= 0
    # attention: every query row is a distribution over keys 0..q; nothing above the diagonal
    a = r.attention.full()
    assert a.shape == (r.model.n_layers, r.model.n_heads, T, T)
    if T:
        np.testing.assert_allclose(a.sum(-1), 1.0, atol=1e-4)
        assert (a >= 0).all() and not np.triu(a, 1).any()
    assert all(not t.added for t in r.tokens[1:]) and (r.tokens[0].added if start_token and T else True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=any_text, max_tokens=st.integers(1, 48), start_token=st.booleans(), parse_specials=st.booleans())
def test_analyze_invariants(tiny_engine, text, max_tokens, start_token, parse_specials):
    r = tiny_engine.analyze(
        text, start_token=start_token, max_tokens=max_tokens, parse_specials=parse_specials, top_k=5
    )
    check_result(r, text, max_tokens, start_token, 5, tiny_engine.info.vocab_size)
    full = tiny_engine.tokenizer.tokenize(text, parse_specials=parse_specials)
    typed = [t for t in r.tokens if not t.added]
    assert tuple(typed) == full.tokens[: len(typed)]
    if len(typed) < len(full.tokens):
        assert r.truncated
    elif r.truncated:  # nothing lost but the report of bytes without a token (past the tokenizer's cap)
        limit = max(1, max_tokens) - (1 if start_token else 0) + 1  # what the engine asks the tokenizer for
        assert (
            len(full.dropped) >= 1024
            and not tiny_engine.tokenizer.tokenize(text, parse_specials=parse_specials, max_tokens=limit).complete
        )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=texts, after=texts)
def test_incremental_equals_full_recompute(tiny_engine, before, after):
    """The incremental path (previous text's cache) gives the numbers of a fresh analysis."""
    assume(before != after)
    tiny_engine.analyze(before, max_tokens=64, top_k=5)
    inc = tiny_engine.analyze(after, max_tokens=64, top_k=5)
    fresh = tiny_engine.analyze(after, max_tokens=64, top_k=5, incremental=False)
    assert inc.ids.tolist() == fresh.ids.tolist()
    np.testing.assert_allclose(inc.token_prob, fresh.token_prob, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(inc.attention.full(), fresh.attention.full(), atol=1e-5)
    np.testing.assert_array_equal(inc.top_ids[:, :1], fresh.top_ids[:, :1])
