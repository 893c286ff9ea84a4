import math

import numpy as np
import pytest

from explainer.core import walkthrough as wt

TEXT = "The cat sat on the mat. The cat sat on the"


def _check_matches_model(r, heads_to_check):
    T = r.n_tokens
    for layer, head in heads_to_check:
        for q in (0, 1, T // 2, T - 1):
            w = wt.walkthrough(r, layer, head, q)
            np.testing.assert_allclose(w.weights[: q + 1], r.attention.row(layer, head, q), atol=1e-5)
            assert np.all(w.weights[q + 1 :] == 0) and np.all(np.isneginf(w.masked[q + 1 :]))
            assert w.weights.sum() == pytest.approx(1.0)
            np.testing.assert_allclose(w.output, w.weights @ w.v, atol=1e-12)
            np.testing.assert_allclose(w.scaled, w.scores / math.sqrt(r.model.d_head))
            np.testing.assert_allclose(w.scores, w.k @ w.q)
            assert w.kv_head == head // (r.model.n_heads // r.model.n_kv_heads)
            # rotary keeps lengths and leaves position 0 unrotated
            np.testing.assert_allclose(np.linalg.norm(w.k, axis=1), np.linalg.norm(w.k_pre, axis=1), rtol=1e-9)
            np.testing.assert_allclose(w.k[0], w.k_pre[0])
            if q == 0:
                np.testing.assert_allclose(w.q, w.q_pre)


def test_matches_model_attention_tiny(tiny_engine):
    r = tiny_engine.analyze(TEXT)
    info = r.model
    _check_matches_model(r, [(l, h) for l in range(info.n_layers) for h in range(info.n_heads)])


@pytest.mark.slow
def test_matches_model_attention_real(real_engine):
    r = real_engine.analyze(TEXT)
    _check_matches_model(r, [(0, 0), (3, 4), (17, 5), (18, 6), (29, 8)])


def test_rope_makes_scores_depend_on_relative_position():
    rng = np.random.default_rng(0)
    q, k = rng.standard_normal(64), rng.standard_normal(64)
    theta = 1e5

    def score(pq, pk):
        return wt.apply_rope(q[None], np.array([pq]), theta)[0] @ wt.apply_rope(k[None], np.array([pk]), theta)[0]

    assert score(7, 3) == pytest.approx(score(104, 100))
    assert score(7, 3) != pytest.approx(score(7, 5))


def test_out_of_range_raises(tiny_engine):
    r = tiny_engine.analyze("hi")
    with pytest.raises(IndexError):
        wt.walkthrough(r, 0, 0, r.n_tokens)
    with pytest.raises(IndexError):
        wt.walkthrough(r, r.model.n_layers, 0, 0)
