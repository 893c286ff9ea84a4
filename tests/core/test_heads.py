import json

import numpy as np
import pytest

from explainer.core import heads


def _causal_uniform(L, H, T):
    a = np.tril(np.ones((T, T), np.float32))
    a /= a.sum(-1, keepdims=True)
    return np.broadcast_to(a, (L, H, T, T)).copy()


def _one_hot_rows(T, key_of):
    """Rows q put all weight on key_of(q) when it returns a key, else uniform over 0..q."""
    a = _causal_uniform(1, 1, T)[0, 0]
    for q in range(T):
        k = key_of(q)
        if k is not None:
            a[q] = 0
            a[q, k] = 1
    return a


def test_synthetic_pattern_picks_the_right_head_for_each_role():
    N = 12
    ids = heads.repeated_sequence(np.arange(1000, 1100), seed=3, length=N)
    T = ids.size
    att = _causal_uniform(2, 4, T)
    att[0, 1] = _one_hot_rows(T, lambda q: q - 1 if q >= 1 else None)  # previous token
    att[1, 2] = _one_hot_rows(T, lambda q: q - N + 1 if q > N else None)  # induction
    att[1, 0] = _one_hot_rows(T, lambda q: 0)  # sink
    att[0, 3] = _one_hot_rows(T, lambda q: q - N if q > N else None)  # duplicate
    s = heads.score_attention(att, ids)
    assert s.top("previous_token", 1)[0][:2] == (0, 1)
    assert s.top("induction", 1)[0][:2] == (1, 2)
    assert s.top("first_token", 1)[0][:2] == (1, 0)
    assert s.top("duplicate_token", 1)[0][:2] == (0, 3)
    # exact values where the pattern is pure
    assert s.previous_token[0, 1] == pytest.approx(1.0)
    assert s.induction[1, 2] == pytest.approx(1.0)
    assert s.duplicate_token[0, 3] == pytest.approx(1.0)
    assert s.first_token[1, 0] == pytest.approx(1.0)
    assert s.counts == {"previous_token": T - 2, "first_token": T - 1, "duplicate_token": N, "induction": N}


def test_several_earlier_copies_sum_and_no_repeat_gives_nan():
    ids = np.array([0, 5, 7, 5, 7, 5])
    att = _causal_uniform(1, 1, 6)
    s = heads.score_attention(att, ids)
    # duplicate: q=3 -> {1}: 1/4; q=4 -> {2}: 1/5; q=5 -> {1, 3}: 2/6
    assert s.duplicate_token[0, 0] == pytest.approx(np.mean([1 / 4, 1 / 5, 2 / 6]))
    # induction: q=3 -> {2}; q=4 -> {3}; q=5 -> {2, 4}
    assert s.induction[0, 0] == pytest.approx(np.mean([1 / 4, 1 / 5, 2 / 6]))
    none = heads.score_attention(_causal_uniform(1, 2, 4), np.array([0, 1, 2, 3]))
    assert np.isnan(none.induction).all() and np.isnan(none.duplicate_token).all()
    assert none.counts["induction"] == 0
    assert none.to_json()["induction"] == [[None, None]]


def test_attention_blocks_are_read_like_the_full_matrix(tiny_engine):
    text = "one two three one two three"
    tiny_engine.reset()
    tiny_engine.analyze("one two")
    r = tiny_engine.analyze(text)  # incremental: several row blocks
    assert len(r.attention.blocks) >= 2
    a = heads.scores_from_result(r)
    b = heads.score_attention(r.attention.full(), r.ids)
    for name in heads.ROLES:
        np.testing.assert_allclose(a.role(name), b.role(name), atol=1e-6)


def test_tiny_model_scores_in_range_with_shapes(tiny_engine):
    L, H = tiny_engine.info.n_layers, tiny_engine.info.n_heads
    ref = heads.reference_scores(tiny_engine, seed=0, length=20, n_seeds=2)
    assert len(ref.per_seed) == 2
    for name in heads.ROLES:
        s = ref.role(name)
        assert s.shape == (L, H) and s.dtype == np.float32
        assert np.all((s >= 0) & (s <= 1))
    live = heads.scores_from_result(tiny_engine.analyze("the cat and the dog and the cat"))
    for name in heads.ROLES:
        s = live.role(name)
        assert s.shape == (L, H) and np.all((s >= 0) & (s <= 1))
    assert live.counts["induction"] > 0


def test_reference_sequence_is_two_copies_of_distinct_word_tokens(tiny_engine):
    pool = heads.word_pool(tiny_engine.tokenizer, tiny_engine.info.vocab_size)
    assert pool.size > 1000
    assert all(tiny_engine.tokenizer.token_bytes(int(i)).startswith(b" ") for i in pool[:50])
    ids = heads.repeated_sequence(pool, 7, 50)
    assert ids.size == 101 and ids[0] == 0
    assert np.array_equal(ids[1:51], ids[51:]) and len(set(ids[1:51].tolist())) == 50
    assert np.array_equal(ids, heads.repeated_sequence(pool, 7, 50))


def test_cache_round_trip(tiny_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLAINER_CACHE", str(tmp_path))
    a = heads.cached_reference_scores(tiny_engine, 0, 10, 1)
    assert list(tmp_path.glob("heads-*.json"))
    b = heads.cached_reference_scores(tiny_engine, 0, 10, 1)
    for name in heads.ROLES:
        np.testing.assert_allclose(a.role(name), b.role(name), atol=1e-6)
    assert b.method == a.method
    # a damaged number in the file (a score of 99) is not shown: the scores are computed again, and rewritten
    (path,) = tmp_path.glob("heads-*.json")
    data = json.loads(path.read_text())
    data["induction"][0][0] = 99.0
    path.write_text(json.dumps(data))
    calls = []
    real = heads.reference_scores
    monkeypatch.setattr(heads, "reference_scores", lambda *a: calls.append(1) or real(*a))
    c = heads.cached_reference_scores(tiny_engine, 0, 10, 1)
    assert calls and np.allclose(c.role("induction"), a.role("induction"), atol=1e-6)
    assert json.loads(path.read_text())["induction"][0][0] != 99.0
    heads.cached_reference_scores(tiny_engine, 0, 10, 1)
    assert len(calls) == 1  # the rewritten entry is read again


def test_cli_heads_json_and_help(monkeypatch, capsys, tiny_engine):
    from explainer import cli

    monkeypatch.setattr("explainer.core.engine.Engine", lambda *a, **k: tiny_engine)
    assert cli.main(["heads", "--json", "--seed", "1", "--length", "8"]) == 0
    out = json.loads(capsys.readouterr().out)
    L, H = tiny_engine.info.n_layers, tiny_engine.info.n_heads
    for name in heads.ROLES:
        assert np.asarray(out[name]).shape == (L, H)
    assert "twice" in out["method"] and "seeds (1, 2, 3)" in out["method"]
    assert cli.main(["heads", "--length", "1"]) == 2
    assert "--length" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["heads", "--help"])
    assert "twice" in capsys.readouterr().out
    assert "repeated-random-tokens" in cli.build_parser().format_help()


@pytest.mark.slow
def test_real_model_has_clear_induction_and_previous_token_heads(real_engine):
    s = heads.reference_scores(real_engine)
    other = heads.reference_scores(real_engine, seed=100)
    for name in ("induction", "previous_token"):
        scores = s.role(name)
        best = float(scores.max())
        assert best > 0.3 and best > 3 * float(np.median(scores)), (name, best)
        top3 = {(lay, h) for lay, h, _ in s.top(name, 3)}
        # every seed's best head is among the average's top 3, and a different set of seeds agrees
        for run in s.per_seed + other.per_seed:
            assert run.top(name, 1)[0][:2] in top3, (name, run.top(name, 3))
        assert len(top3 & {(lay, h) for lay, h, _ in other.top(name, 3)}) >= 2
