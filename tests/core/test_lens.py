import numpy as np
import pytest

from explainer.core import lens

TEXT = "The cat sat on the mat. The cat sat on the"


def _check_last_layer_equals_output(r):
    for pos in (0, 3, r.n_tokens - 1):
        out = lens.logit_lens(r, pos, k=5)
        L = r.model.n_layers
        assert out.top_ids.shape == (L + 1, 5) and out.top_probs.shape == (L + 1, 5)
        np.testing.assert_array_equal(out.top_ids[L], r.top_ids[pos][:5])
        np.testing.assert_allclose(out.top_probs[L], r.top_probs[pos][:5], atol=1e-5)
        dist = r.distribution(pos)
        np.testing.assert_allclose(out.top_probs[L], dist[out.top_ids[L]], atol=1e-5)
        assert out.entropy_bits[L] == pytest.approx(float(r.entropy_bits[pos]), abs=1e-4)
        assert np.all(np.diff(out.top_probs, axis=1) <= 0)
        if pos + 1 < r.n_tokens:
            assert out.next_id == int(r.ids[pos + 1])
            assert out.next_prob[L] == pytest.approx(float(r.token_prob[pos + 1]), abs=1e-5)
            assert out.next_rank[L] == 1 + int(np.sum(dist > dist[out.next_id]))
            assert np.all(out.next_rank >= 1)
        else:
            assert out.next_id == -1 and np.all(out.next_rank == -1)


def test_last_layer_equals_model_output_tiny(tiny_engine):
    _check_last_layer_equals_output(tiny_engine.analyze(TEXT))


@pytest.mark.slow
def test_last_layer_equals_model_output_real(real_engine):
    r = real_engine.analyze(TEXT)
    _check_last_layer_equals_output(r)
    # the answer rises through the layers: " mat" is the top guess at the end and not at the input embedding
    out = lens.logit_lens(r, r.n_tokens - 1)
    assert out.next_id == -1
    mat = real_engine.tokenizer.tokenize(" mat").ids[0]
    assert out.top_ids[-1, 0] == mat and out.top_ids[0, 0] != mat


def test_rms_norm_matches_definition():
    x = np.array([[3.0, 4.0]])
    y = lens.rms_norm(x, np.array([1.0, 2.0]), 0.0)
    rms = np.sqrt((9 + 16) / 2)
    np.testing.assert_allclose(y, [[3 / rms, 8 / rms]])


def test_nearest_neighbours_cosine():
    table = np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0], [0.5, 0.5]], np.float32)
    nn = lens.nearest_neighbours(table, 0, 3)
    assert [i for i, _ in nn] == [1, 4, 2]
    assert nn[0][1] == pytest.approx(0.9 / np.hypot(0.9, 0.1))


def test_embedding_table_is_found_when_tied(tiny_engine):
    r = tiny_engine.analyze("hello world")
    assert lens.embedding_table_of(r) is tiny_engine.embedding_table or np.shares_memory(
        lens.embedding_table_of(r), tiny_engine.embedding_table
    )


def test_lens_needs_weights_and_valid_position(tiny_engine):
    import dataclasses

    r = tiny_engine.analyze("hello")
    with pytest.raises(IndexError):
        lens.logit_lens(r, r.n_tokens)
    with pytest.raises(ValueError):
        lens.logit_lens(dataclasses.replace(r, weights=None), 0)
