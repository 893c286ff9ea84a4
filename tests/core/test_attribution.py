"""Input × gradient on the tiny model, checked against finite differences in float64: a token's score is the
derivative of log P(target) when that token's embedding is scaled by (1 + a), at a = 0."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from explainer.core.attribution import attribute
from explainer.core.errors import UserError
from explainer.core.llama import KnockOut

TEXT = "The cat sat on the mat because the cat"
HEADS = ((0, 1), (1, 2))


@pytest.fixture(scope="module")
def analysed(tiny_engine):
    return tiny_engine.analyze(TEXT, incremental=False)


def finite_difference_scores(engine, ids, position, target, heads=(), eps=1e-3):
    """(eps: the float64 copy still takes its attention softmax in float32, whose rounding smaller steps magnify)"""
    m64 = copy.deepcopy(engine.model).double()
    hooks = KnockOut(heads)
    with torch.no_grad():
        x0 = m64.embed(torch.tensor(ids[: position + 1]))

        def logp(x):
            normed, _ = m64.step(x, None, hooks)
            return float(torch.log_softmax(m64.unembedding @ normed[-1], -1)[target])

        out = []
        for j in range(position + 1):
            up, down = x0.clone(), x0.clone()
            up[j] *= 1 + eps
            down[j] *= 1 - eps
            out.append((logp(up) - logp(down)) / (2 * eps))
    return np.array(out)


@pytest.mark.parametrize("heads", [(), HEADS])
def test_scores_are_the_derivative_of_the_log_probability(tiny_engine, analysed, heads):
    ids = analysed.ids
    r = tiny_engine.analyze(TEXT, ablated=heads, incremental=False)
    # a less likely candidate: the random model's top-1 is so sure that its gradients are at float32's noise
    target = int(r.top_ids[-1, 5])
    a = attribute(tiny_engine, ids, target=target, ablated=heads)
    assert a.scores.shape == (len(ids),) and a.scores.dtype == np.float32 and a.ablated == heads
    assert a.position == len(ids) - 1 and a.target == target
    ref = finite_difference_scores(tiny_engine, ids, a.position, target, heads)
    np.testing.assert_allclose(a.scores, ref, atol=1e-4 * np.abs(ref).max())
    assert a.target_prob == pytest.approx(float(r.top_probs[-1, 5]), rel=1e-4)
    # the default target is the (knocked-out) model's top-1 next token, with its probability
    top = attribute(tiny_engine, ids, ablated=heads)
    assert top.target == int(r.top_ids[-1, 0])
    assert top.target_prob == pytest.approx(float(r.top_probs[-1, 0]), abs=1e-6)


def test_earlier_position_and_chosen_target(tiny_engine, analysed):
    ids, position = analysed.ids, 4
    target = int(analysed.top_ids[position, 3])
    a = attribute(tiny_engine, ids, position=position, target=target)
    assert a.target == target and a.position == position
    assert np.all(a.scores[position + 1 :] == 0)  # later tokens cannot influence that prediction
    ref = finite_difference_scores(tiny_engine, ids, position, target)
    np.testing.assert_allclose(a.scores[: position + 1], ref, atol=1e-4 * np.abs(ref).max())
    assert a.target_prob == pytest.approx(float(analysed.distribution(position)[target]), rel=1e-4)


def test_user_errors(tiny_engine):
    with pytest.raises(UserError, match="outside the vocabulary"):
        attribute(tiny_engine, [0, 504], target=49152)
    with pytest.raises(UserError, match="no tokens"):
        attribute(tiny_engine, [])
    with pytest.raises(UserError):
        attribute(tiny_engine, [0, 504], ablated=[(5, 0)])


def test_runs_inside_inference_mode(tiny_engine, analysed):
    """The model's thread may be inside torch.inference_mode; gradients are still computed."""
    with torch.inference_mode():
        a = attribute(tiny_engine, analysed.ids)
    np.testing.assert_array_equal(a.scores, attribute(tiny_engine, analysed.ids).scores)
