"""The layer loop's hook points: observing, knocking out a head, patching the residual stream, gradients.

All on the tiny random model: each intervention is checked against an independent way of getting the same
numbers (a copy of the model with changed weights, another run, finite differences)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from explainer.core.engine import TINY_CONFIG
from explainer.core.llama import Hooks, build_model, random_weights

IDS = torch.tensor([0, 504, 2644, 2408, 335, 260, 1171])


@pytest.fixture(scope="module")
def model():
    return build_model(TINY_CONFIG, random_weights(TINY_CONFIG, seed=3))


class KnockOut(Hooks):
    def __init__(self, layer, head):
        self.layer, self.head = layer, head

    def head_outputs(self, layer, z):  # (H, T, hd)
        if layer != self.layer:
            return z
        z = z.clone()
        z[self.head] = 0
        return z


class Patch(Hooks):
    """Replace the residual after ``layer`` at ``positions`` with ``source``'s."""

    def __init__(self, layer, positions, source):
        self.layer, self.positions, self.source = layer, positions, source

    def residual(self, layer, x):
        if layer != self.layer:
            return x
        x = x.clone()
        x[self.positions] = self.source[self.positions]
        return x


def test_recorded_values_are_the_loop_values(model):
    with torch.inference_mode():
        out = model(IDS)
        # a second run in two parts through the cache gives the same last rows
        first = model(IDS[:4])
        second = model(IDS[4:], first.cache)
    assert len(out.hidden) == len(out.attention) == TINY_CONFIG.n_layers
    np.testing.assert_allclose(out.final_normed[4:], second.final_normed, atol=1e-5)
    np.testing.assert_allclose(out.attention[1][:, 4:], second.attention[1], atol=1e-6)
    assert torch.equal(out.embeddings, model.embed(IDS))


def test_head_knock_out_equals_zeroing_its_columns_of_wo(model):
    layer, head, hd = 1, 2, TINY_CONFIG.d_head
    edited = copy.deepcopy(model)
    with torch.no_grad():
        edited.layers[layer].attn.wo.weight[:, head * hd : (head + 1) * hd] = 0
    with torch.inference_mode():
        knocked = model(IDS, hooks=KnockOut(layer, head))
        expected = edited(IDS)
        plain = model(IDS)
    np.testing.assert_allclose(knocked.final_normed, expected.final_normed, atol=1e-5)
    assert not torch.allclose(knocked.final_normed, plain.final_normed, atol=1e-3)
    # the knocked-out layer's own attention pattern is unchanged; its residual is not
    torch.testing.assert_close(knocked.attention[layer], plain.attention[layer])
    assert not torch.allclose(knocked.hidden[layer], plain.hidden[layer])


def test_patching_every_position_continues_as_the_source_run(model):
    other = torch.tensor([0, 17, 28, 216, 1462, 30, 9])
    with torch.inference_mode():
        source = model(other)
        patched = model(IDS, hooks=Patch(0, slice(None), source.hidden[0]))
    np.testing.assert_allclose(patched.final_normed, source.final_normed, atol=1e-5)


def test_patching_one_position_leaves_earlier_positions_alone(model):
    other = torch.tensor([0, 17, 28, 216, 1462, 30, 9])
    p = 4
    with torch.inference_mode():
        source = model(other)
        plain = model(IDS)
        patched = model(IDS, hooks=Patch(0, [p], source.hidden[0]))
    np.testing.assert_allclose(patched.final_normed[:p], plain.final_normed[:p], atol=1e-6)
    np.testing.assert_allclose(patched.hidden[0][p], source.hidden[0][p])
    assert not torch.allclose(patched.final_normed[p:], plain.final_normed[p:], atol=1e-3)


class Leaf(Hooks):
    def embedded(self, x):
        self.x = x.detach().requires_grad_()
        return self.x


def _logp(model, x, target_pos, token):
    normed, _ = model.step(x, None, Hooks())
    return torch.log_softmax(normed[target_pos] @ model.unembedding.T, -1)[token]


def test_gradient_of_a_log_probability_reaches_the_input_embeddings(model):
    target_pos, token = 4, 1171
    leaf = Leaf()
    out = model(IDS, hooks=leaf)
    logp = torch.log_softmax(out.final_normed[target_pos] @ model.unembedding.T, -1)[token]
    (grad,) = torch.autograd.grad(logp, leaf.x)
    assert grad.shape == (len(IDS), TINY_CONFIG.d_model)
    assert torch.all(grad[target_pos + 1 :] == 0)  # causal: later tokens cannot matter
    assert torch.all(grad[: target_pos + 1].abs().sum(-1) > 0)
    # against a central finite difference along the gradient's own direction
    x0 = model.embed(IDS).detach().double()
    m64 = copy.deepcopy(model).double()
    d = (grad / grad.norm()).double()
    eps = 1e-4
    with torch.no_grad():
        fd = (_logp(m64, x0 + eps * d, target_pos, token) - _logp(m64, x0 - eps * d, target_pos, token)) / (2 * eps)
    assert float(fd) == pytest.approx(float(grad.norm()), rel=1e-3)
