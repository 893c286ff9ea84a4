"""Invariants of the analysis on the tiny random model (fast)."""

from __future__ import annotations

import math

import numpy as np
import pytest

TEXTS = ["How many r's are in strawberry?", "The cat sat on the mat.", "a", "", "  \n\t ", "数字 123 🍓👍🏽"]


@pytest.mark.parametrize("text", TEXTS)
def test_attention_rows_sum_to_one_and_are_causal(tiny_engine, text):
    r = tiny_engine.analyze(text, incremental=False)
    att = r.attention.full()  # [L, H, T, T]
    assert att.shape == (r.model.n_layers, r.model.n_heads, r.n_tokens, r.n_tokens)
    np.testing.assert_allclose(att.sum(-1), 1.0, atol=1e-5)
    upper = np.triu(np.ones((r.n_tokens, r.n_tokens), bool), k=1)
    assert np.all(att[..., upper] == 0.0)


@pytest.mark.parametrize("text", TEXTS[:3])
def test_probabilities_surprisal_and_chain_rule(tiny_engine, text):
    r = tiny_engine.analyze(text, incremental=False)
    assert r.tokens[0].special and r.tokens[0].id == 0 and math.isnan(r.token_prob[0])
    for i in range(1, r.n_tokens):
        dist = r.distribution(i - 1)
        assert dist.sum() == pytest.approx(1.0, abs=1e-9)
        assert r.token_prob[i] == pytest.approx(dist[r.ids[i]], rel=1e-4)
        assert r.surprisal_bits[i] == pytest.approx(-math.log2(r.token_prob[i]), rel=1e-5)
    assert r.sentence_logprob == pytest.approx(float(np.sum(np.log(r.token_prob[1:].astype(np.float64)))), rel=1e-5)
    for i in range(r.n_tokens):
        dist = r.distribution(i)
        order = np.argsort(-dist)[: r.top_ids.shape[1]]
        np.testing.assert_allclose(r.top_probs[i], dist[order], atol=1e-5)
        assert np.all(np.diff(r.top_probs[i]) <= 0)
        ent = -(dist * np.log2(np.clip(dist, 1e-300, 1))).sum()
        assert r.entropy_bits[i] == pytest.approx(ent, abs=1e-3)


def test_without_start_token(tiny_engine):
    r = tiny_engine.analyze("strawberry", start_token=False, incremental=False)
    assert [t.id for t in r.tokens] == [302, 1709, 9500]
    assert not r.tokens[0].special and math.isnan(r.token_prob[0])
    empty = tiny_engine.analyze("", start_token=False)
    assert empty.n_tokens == 0 and empty.sentence_logprob == 0.0


def test_truncation(tiny_engine):
    r = tiny_engine.analyze("word " * 100, max_tokens=16)
    assert r.truncated and r.n_tokens == 16
    assert not tiny_engine.analyze("word " * 3, max_tokens=16).truncated


def test_result_is_immutable(tiny_engine):
    r = tiny_engine.analyze("hello there")
    for arr in (
        r.ids,
        r.token_prob,
        r.top_probs,
        r.hidden.blocks[0],
        r.hidden[1],
        r.final_normed,
        r.attention.blocks[0],
    ):
        with pytest.raises(ValueError):
            arr[...] = 0
    with pytest.raises(Exception):
        r.text = "x"
