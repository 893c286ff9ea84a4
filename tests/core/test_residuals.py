"""The residual stream stored as blocks of positions reads exactly like the one array it stands for."""

import numpy as np
import pytest

from explainer.core.residuals import Residuals


def _split(full: np.ndarray, cuts: list[int]) -> Residuals:
    edges = [0, *cuts, full.shape[1]]
    return Residuals([full[:, a:b].copy() for a, b in zip(edges, edges[1:])])


FULL = np.random.default_rng(3).normal(size=(5, 11, 4)).astype(np.float32)
KEYS = [
    2,
    -1,
    (slice(None), 0),
    (slice(None), 10),
    (slice(None), -3),
    (slice(None, 3), 6),
    (1, slice(2, 9)),
    (slice(None), slice(4, None), slice(None)),
    (slice(1, 4), slice(0, 11), 2),
    (slice(None), slice(7, 7)),
    (slice(None), slice(3, 9, 2)),
    (slice(None), [1, 5, 6]),
    (Ellipsis, 1),
    (3, 4, slice(1, 3)),
]


@pytest.mark.parametrize("cuts", [[], [1], [3, 4, 8], [10]])
@pytest.mark.parametrize("key", KEYS, ids=[repr(k) for k in KEYS])
def test_indexing_matches_the_array(cuts, key):
    got = _split(FULL, cuts)[key]
    np.testing.assert_array_equal(got, FULL[key])
    assert got.shape == FULL[key].shape and got.dtype == np.float32


def test_shape_length_and_whole_array():
    r = _split(FULL, [2, 7])
    assert r.shape == FULL.shape and len(r) == 5 and r.nbytes == FULL.nbytes
    np.testing.assert_array_equal(np.asarray(r), FULL)
    np.testing.assert_array_equal(r.copy(), FULL)
    assert r.copy().flags.writeable
    assert r.astype(np.float64).dtype == np.float64 and r.mean() == pytest.approx(float(FULL.mean()), rel=1e-6)
    assert r.T.shape == FULL.T.shape
    with pytest.raises(AttributeError):
        _ = r.no_such_thing
    with pytest.raises(IndexError):
        r[:, 11]


def test_blocks_are_read_only_and_shared_by_truncation_and_by_the_next_result():
    r = _split(FULL, [4])
    with pytest.raises(ValueError):
        r.blocks[0][...] = 0
    with pytest.raises(ValueError):
        r[1][...] = 0  # a view into a block
    head = r.truncated(6)
    assert head.shape == (5, 6, 4) and np.shares_memory(head.blocks[1], r.blocks[1])
    np.testing.assert_array_equal(np.asarray(head), FULL[:, :6])
    new = np.ones((5, 2, 4), np.float32)
    longer = Residuals([*head.blocks, new])  # as the engine adds a keystroke's new positions
    np.testing.assert_array_equal(np.asarray(longer), np.concatenate([FULL[:, :6], new], axis=1))
    assert np.shares_memory(longer.blocks[0], r.blocks[0])
    assert r.truncated(0).shape == (5, 0, 4)


def test_compaction_merges_small_blocks_and_keeps_the_numbers():
    r = _split(FULL, list(range(1, 11)))  # 11 one-position blocks
    c = r.compacted(max_blocks=4, positions_per_block=4)
    assert len(c.blocks) <= 4
    np.testing.assert_array_equal(np.asarray(c), FULL)
    assert r.compacted(max_blocks=32) is r


def test_blocks_must_fit_together():
    with pytest.raises(ValueError):
        Residuals([np.zeros((5, 2, 4), np.float32), np.zeros((4, 2, 4), np.float32)])
    with pytest.raises(ValueError):
        Residuals([np.zeros((5, 2, 4), np.float64)])
    with pytest.raises(ValueError):
        Residuals([])


def test_attention_blocks_must_continue_the_rows_before_them():
    from explainer.core.types import Attention

    first = np.zeros((2, 3, 4, 4), np.float32)  # queries 0-3 over keys 0-3
    a = Attention([first, np.zeros((2, 3, 2, 6), np.float32)])  # queries 4-5 over keys 0-5
    assert a.n_tokens == 6 and not first.flags.writeable
    with pytest.raises(ValueError, match="does not continue"):
        Attention([first, np.zeros((2, 3, 2, 5), np.float32)])  # keys 0-4: a row is missing
    with pytest.raises(ValueError):
        Attention([np.zeros((2, 3, 4), np.float32)])


def test_attention_compaction_merges_small_blocks_keeps_the_weights_and_the_precisions_apart():
    from explainer.core.types import Attention

    rng = np.random.default_rng(7)
    full = np.tril(rng.uniform(0, 1, (2, 3, 40, 40))).astype(np.float32)
    # one-row blocks, the first 20 rows float32, the rest float16 (as the engine keeps long texts)
    blocks = [full[:, :, q : q + 1, : q + 1].astype(np.float32 if q < 20 else np.float16) for q in range(40)]
    a = Attention(blocks)
    c = a.compacted(max_blocks=4, rows_per_block=8)
    assert len(c.blocks) < len(blocks) and c.n_tokens == 40
    assert {b.dtype for b in c.blocks[:3]} == {np.dtype(np.float32)} and c.blocks[-1].dtype == np.float16
    assert sum(b.shape[2] for b in c.blocks if b.dtype == np.float32) == 20  # no block mixes the two
    for layer in range(2):
        np.testing.assert_array_equal(c.layer(layer), a.layer(layer))
    assert a.compacted(max_blocks=64) is a


def test_attention_rows_are_read_from_the_block_that_holds_them():
    from explainer.core.types import Attention

    rng = np.random.default_rng(11)
    full = np.tril(rng.uniform(0, 1, (2, 3, 9, 9))).astype(np.float32)
    a = Attention([full[:, :, 0:4, :4], full[:, :, 4:5, :5], full[:, :, 5:9, :9]])
    for q in range(9):
        np.testing.assert_array_equal(a.query_rows(q), full[:, :, q, : q + 1])
        np.testing.assert_array_equal(a.row(1, 2, q), full[1, 2, q, : q + 1])
    assert not a.query_rows(6).flags.writeable  # a view into a shared block
    for q in (-1, 9):
        with pytest.raises(IndexError):
            a.query_rows(q)
