"""Projection axes: fitted once, cached on disk, stable while typing; nearest neighbours by cosine."""

from __future__ import annotations

import numpy as np
import pytest

from explainer.core import projection as pj
from explainer.core.types import ModelInfo

L, D, V = 3, 24, 400


def make_info(name="fake"):
    return ModelInfo(name, L, 3, 1, D, 8, 4 * D, V, 999, 2048, 1e4, 1e-5)


@pytest.fixture
def table():
    rng = np.random.default_rng(1)
    return rng.standard_normal((V, D)).astype(np.float32)


def make_reference(calls: list):
    def reference():
        calls.append(1)
        rng = np.random.default_rng(2)
        hidden = rng.standard_normal((L + 1, 150, D)).astype(np.float32)
        hidden[:, ::10, 5] = 2e4  # massive activations on some tokens in one dimension
        return hidden, np.arange(150)

    return reference


@pytest.fixture
def projector(table, tmp_path):
    calls: list = []
    p = pj.Projector(info=make_info(), embedding_table=table, reference=make_reference(calls), cache_dir=tmp_path)
    p.calls = calls
    return p


class FakeResult:
    def __init__(self, hidden):
        self.hidden = hidden


def hidden_for(table, ids, seed=3):
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((L + 1, len(ids), D)).astype(np.float32)
    h[0] = table[ids]
    return h


def test_axes_are_stable_and_never_refit(projector, table):
    r = FakeResult(hidden_for(table, [1, 2, 3, 4]))
    first = [projector.project(r, layer) for layer in range(L + 1)]
    fits = projector.fit_count
    assert fits == L + 1 and len(projector.calls) == 1
    other = FakeResult(hidden_for(table, [7, 8, 9], seed=9))  # "typing": other texts do not move the axes
    for _ in range(3):
        for layer in range(L + 1):
            projector.project(other, layer)
    again = [projector.project(r, layer) for layer in range(L + 1)]
    assert projector.fit_count == fits and len(projector.calls) == 1
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
        assert a.shape == (4, 2) and a.dtype == np.float32


def test_cache_round_trip(projector, table, tmp_path):
    projector.prepare()
    r = FakeResult(hidden_for(table, [5, 6]))
    expected = [projector.project(r, layer) for layer in range(L + 1)]
    assert len(list(tmp_path.glob("pca-*.npy"))) == L + 1
    assert not list(tmp_path.glob("*.tmp"))
    calls: list = []
    fresh = pj.Projector(info=make_info(), embedding_table=table, reference=make_reference(calls), cache_dir=tmp_path)
    got = [fresh.project(r, layer) for layer in range(L + 1)]
    assert fresh.fit_count == 0 and calls == []
    for a, b in zip(expected, got):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    a0, b0 = projector.fit_layer(2), fresh.fit_layer(2)
    np.testing.assert_allclose(a0.explained, b0.explained)
    assert a0.bounds == pytest.approx(b0.bounds)


def test_other_model_does_not_share_cache(projector, table, tmp_path):
    projector.prepare()
    other = pj.Projector(
        info=make_info("other"), embedding_table=table, reference=make_reference([]), cache_dir=tmp_path
    )
    assert other.key != projector.key
    other.fit_layer(0)
    assert other.fit_count == 1


@pytest.mark.parametrize("damage", ["garbage", "truncate", "wrong_layer"])
def test_corrupt_cache_is_rebuilt(projector, table, tmp_path, damage):
    projector.prepare()
    r = FakeResult(hidden_for(table, [5, 6, 7]))
    expected = [projector.project(r, layer) for layer in range(L + 1)]
    for layer in (0, 2):
        path = projector.cache_path(layer)
        if damage == "garbage":
            path.write_bytes(b"not a numpy file at all")
        elif damage == "truncate":
            path.write_bytes(path.read_bytes()[:200])
        else:
            np.save(path, np.load(projector.cache_path(1)))
    calls: list = []
    fresh = pj.Projector(info=make_info(), embedding_table=table, reference=make_reference(calls), cache_dir=tmp_path)
    got = [fresh.project(r, layer) for layer in range(L + 1)]
    assert fresh.fit_count > 0
    for a, b in zip(expected, got):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    # the rebuilt files are valid again
    for layer in range(L + 1):
        pj.Axes.unpack(np.load(fresh.cache_path(layer)), layer, D)


def test_basis_is_orthonormal_and_signs_aligned(projector):
    previous = None
    for layer in range(L + 1):
        ax = projector.fit_layer(layer)
        c = ax.components.astype(np.float64)
        np.testing.assert_allclose(c @ c.T, np.eye(2), atol=1e-5)
        assert np.all(ax.explained > 0) and ax.explained.sum() < 1 and ax.explained[0] >= ax.explained[1]
        xmin, xmax, ymin, ymax = ax.bounds
        assert xmin < xmax and ymin < ymax
        if previous is not None:
            assert np.all(np.einsum("ij,ij->i", c, previous) >= 0)
        previous = c


def test_projection_matches_manual_pca_pipeline(projector, table):
    ax = projector.fit_layer(0)
    x = table[:10]
    rms = np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=1, keepdims=True))
    z = (x / rms - ax.mean) / ax.scale
    np.testing.assert_allclose(ax.project(x), z @ ax.components.T, rtol=1e-4, atol=1e-4)
    # the leading axis is the top eigenvector of the standardised table's covariance
    xs = table / np.sqrt(np.mean(table.astype(np.float64) ** 2, axis=1, keepdims=True))
    zs = (xs - xs.mean(0)) / xs.std(0)
    evals, evecs = np.linalg.eigh(zs.T @ zs / len(zs))
    assert abs(evecs[:, -1] @ ax.components[0]) == pytest.approx(1.0, abs=1e-4)
    assert ax.explained[0] == pytest.approx(evals[-1] / evals.sum(), rel=1e-4)


def test_massive_dimension_does_not_become_an_axis(projector):
    for layer in range(1, L + 1):
        c = projector.fit_layer(layer).components
        assert np.max(np.abs(c[:, 5])) < 0.9


def test_nearest_neighbours_match_numpy(table):
    for tid in (0, 17, V - 1):
        got = pj.nearest_neighbours(table, tid, k=10)
        unit = table / np.linalg.norm(table, axis=1, keepdims=True)
        cos = unit @ unit[tid]
        cos[tid] = -np.inf
        want = np.argsort(-cos)[:10]
        assert [i for i, _ in got] == list(want)
        np.testing.assert_allclose([c for _, c in got], cos[want], rtol=1e-5, atol=1e-6)
        assert tid not in [i for i, _ in got]
    table2 = table.copy()
    table2[3] = table2[4] * 2.0  # same direction, other length → cosine 1
    assert pj.nearest_neighbours(table2, 4, k=1)[0] == (3, pytest.approx(1.0, abs=1e-6))


def test_bad_layer_and_missing_reference(table, tmp_path):
    p = pj.Projector(info=make_info(), embedding_table=table, cache_dir=tmp_path)
    p.fit_layer(0)
    with pytest.raises(IndexError):
        p.fit_layer(L + 1)
    with pytest.raises(RuntimeError):
        p.fit_layer(1)


@pytest.mark.slow
def test_real_model_separates_bank_by_context(real_engine, tmp_path):
    """On SmolLM2 the two "bank"s share one point at layer 0 and move apart in later layers' maps."""
    p = pj.Projector(real_engine, cache_dir=tmp_path)
    r = real_engine.analyze("I sat on the bank of the river. I put money in the bank account.")
    banks = [i for i, t in enumerate(r.tokens) if t.text == " bank"]
    assert len(banks) == 2
    dist = []
    for layer in (0, 20, real_engine.info.n_layers):
        xy = p.project(r, layer)
        x0, x1, y0, y1 = p.fit_layer(layer).bounds
        dist.append(np.linalg.norm(xy[banks[0]] - xy[banks[1]]) / np.hypot(x1 - x0, y1 - y0))
    assert dist[0] < 1e-6
    assert dist[1] > 0.05 and dist[2] > 0.03  # measured: 17% and 9% of the map's diagonal
    assert p.fit_count == real_engine.info.n_layers + 1


def test_axes_if_available_never_fits_nor_waits(projector, table, tmp_path):
    import threading

    assert projector.axes_if_available(1) is None and projector.fit_count == 0
    projector.prepare()
    fresh = pj.Projector(info=make_info(), embedding_table=table, reference=make_reference([]), cache_dir=tmp_path)
    held, release = threading.Event(), threading.Event()

    def hold():  # the worker thread busy fitting
        with fresh._lock:
            held.set()
            release.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    try:
        ax = fresh.axes_if_available(2)  # the UI thread: served from disk without waiting for the lock
        assert ax is not None and fresh.fit_count == 0
        np.testing.assert_array_equal(ax.components, projector.fit_layer(2).components)
    finally:
        release.set()
        t.join()
