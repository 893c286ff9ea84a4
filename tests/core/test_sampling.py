import numpy as np
import pytest

from explainer.core import sampling as s


def test_softmax_sums_to_one_and_temperature_sharpens():
    logits = np.array([2.0, 1.0, 0.0, -1.0], np.float32)
    p1 = s.softmax(logits, 1.0)
    assert p1.sum() == pytest.approx(1.0)
    assert np.all(np.diff(p1) < 0)
    cold, hot = s.softmax(logits, 0.1), s.softmax(logits, 2.0)
    assert cold[0] > p1[0] > hot[0]
    assert s.entropy_bits(cold) < s.entropy_bits(p1) < s.entropy_bits(hot)
    # huge logits do not overflow
    assert np.isfinite(s.softmax(np.array([1e4, 0.0]), 0.1)).all()


def test_top_k_keeps_k_and_renormalises():
    p = np.array([0.1, 0.4, 0.3, 0.2])
    q = s.apply_top_k(p, 2)
    assert q.tolist() == pytest.approx([0.0, 4 / 7, 3 / 7, 0.0])
    assert s.apply_top_k(p, 0).tolist() == pytest.approx(p.tolist())
    assert s.apply_top_k(p, 10).tolist() == pytest.approx(p.tolist())


def test_top_k_ties_keep_lower_id():
    q = s.apply_top_k(np.array([0.25, 0.25, 0.25, 0.25]), 1)
    assert q.tolist() == [1.0, 0.0, 0.0, 0.0]


def test_top_p_smallest_nucleus():
    p = np.array([0.5, 0.3, 0.15, 0.05])
    assert np.count_nonzero(s.apply_top_p(p, 0.5)) == 1  # 0.5 reaches 0.5 exactly
    assert np.count_nonzero(s.apply_top_p(p, 0.8)) == 2
    assert np.count_nonzero(s.apply_top_p(p, 0.81)) == 3
    assert np.count_nonzero(s.apply_top_p(p, 0.01)) == 1  # never empty
    assert s.apply_top_p(p, 1.0).tolist() == pytest.approx(p.tolist())
    q = s.apply_top_p(p, 0.8)
    assert q.sum() == pytest.approx(1.0)
    assert q[0] / q[1] == pytest.approx(0.5 / 0.3)


def test_filter_order_top_k_then_top_p():
    p = np.array([0.4, 0.3, 0.2, 0.1])
    # top-k 2 → [4/7, 3/7]; top-p 0.5 on that keeps only the first (4/7 ≥ 0.5)
    q = s.filter_distribution(p, top_k=2, top_p=0.5)
    assert q.tolist() == pytest.approx([1.0, 0, 0, 0])


def test_sampling_distribution_matches_manual():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=1000)
    q = s.sampling_distribution(logits, temperature=0.7, top_k=50, top_p=0.9)
    assert q.sum() == pytest.approx(1.0)
    assert 1 <= np.count_nonzero(q) <= 50
    kept = np.flatnonzero(q)
    assert set(kept) <= set(np.argsort(-logits)[:50])
    ref = s.softmax(logits, 0.7)
    ratio = q[kept] / ref[kept]
    assert np.allclose(ratio, ratio[0])  # relative probabilities preserved


def test_entropy_and_rank():
    assert s.entropy_bits(np.array([0.5, 0.5])) == pytest.approx(1.0)
    assert s.entropy_bits(np.array([1.0, 0.0])) == 0.0
    assert s.entropy_bits(np.full(8, 1 / 8)) == pytest.approx(3.0)
    p = np.array([0.1, 0.6, 0.3])
    assert [s.rank_of(p, i) for i in range(3)] == [3, 1, 2]


def test_draws_are_reproducible_and_follow_the_distribution():
    p = np.array([0.0, 0.5, 0.0, 0.3, 0.2])
    first = [s.draw(p, seed=7, index=i) for i in range(2000)]
    assert first == [s.draw(p, seed=7, index=i) for i in range(2000)]  # the same seed, the same choices
    assert first != [s.draw(p, seed=8, index=i) for i in range(2000)]
    counts = np.bincount(first, minlength=5) / len(first)
    assert counts[0] == 0 and counts[2] == 0  # a filtered token is never drawn
    assert counts.tolist() == pytest.approx([0.0, 0.5, 0.0, 0.3, 0.2], abs=0.04)


def test_a_draw_picks_the_slice_its_uniform_number_falls_in():
    p = np.array([0.25, 0.25, 0.5])
    for i in range(50):
        u = s.uniform(3, i)
        assert 0.0 <= u < 1.0
        assert s.draw(p, 3, i) == (0 if u < 0.25 else 1 if u < 0.5 else 2)
    assert s.draw(np.array([0.0, 0.0, 1.0]), 0) == 2  # one token left: always that one
    with pytest.raises(ValueError):
        s.draw(np.zeros(3), 0)
    with pytest.raises(ValueError):
        s.uniform(-1)
