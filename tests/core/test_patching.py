"""Activation patching on the tiny model: the packed, cache-reusing grid equals one full patched run per cell
(the residual replaced through the layer loop's hook), with progress, cancellation and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explainer.core.errors import Cancelled, UserError
from explainer.core.llama import KnockOut
from explainer.core.patching import patch

CLEAN = [0, 504, 3575, 282, 4649, 314, 260, 2408, 335, 260]
CORRUPT = [0, 504, 3575, 282, 17225, 314, 260, 2408, 335, 1171]


class _PatchOne(KnockOut):
    def __init__(self, heads, layer, position, source):
        super().__init__(heads)
        self.layer, self.position, self.source = layer, position, source

    def residual(self, layer, x):
        if layer != self.layer:
            return x
        x = x.clone()
        x[self.position] = self.source[self.position]
        return x


def brute_force(engine, clean_ids, corrupt_ids, target, heads=()):
    m, L, T = engine.model, engine.cfg.n_layers, len(clean_ids)
    out = np.zeros((L, T))
    with torch.inference_mode():
        clean = m(torch.tensor(clean_ids), hooks=KnockOut(heads))
        for layer in range(L):
            for p in range(T):
                run = m(torch.tensor(corrupt_ids), hooks=_PatchOne(heads, layer, p, clean.hidden[layer]))
                out[layer, p] = torch.softmax((m.unembedding @ run.final_normed[-1]).double(), -1)[target]
    return out


@pytest.mark.parametrize("heads,max_rows", [((), 256), (((0, 2), (1, 0)), 7)])
def test_grid_equals_one_full_patched_run_per_cell(tiny_engine, heads, max_rows):
    r = patch(tiny_engine, CLEAN, CORRUPT, ablated=heads, max_rows=max_rows)
    assert r.prob.shape == (tiny_engine.cfg.n_layers, len(CLEAN)) and r.ablated == heads
    np.testing.assert_allclose(r.prob, brute_force(tiny_engine, CLEAN, CORRUPT, r.target, heads), atol=1e-5)
    with torch.inference_mode():
        normed = tiny_engine.model(torch.tensor(CLEAN), hooks=KnockOut(heads)).final_normed[-1]
    probs = torch.softmax((tiny_engine.model.unembedding @ normed).double(), -1)
    # (float32 logits of this size are exact to ~1e-6, and CPUs sum them in different orders: AVX2 and AVX-512
    # kernels differed by 1.2e-6 here, so probabilities are compared to 1e-5, as the grid is)
    assert r.target == int(torch.argmax(probs)) and r.clean_prob == pytest.approx(float(probs.max()), abs=1e-5)
    # the positions before the first differing token are identical in both runs: patching them changes nothing
    assert np.all(r.prob[:, :4] == np.float32(r.corrupt_prob))
    assert r.prob[-1, -1] == pytest.approx(r.clean_prob, abs=1e-6)


def test_every_position_differing_and_a_chosen_target(tiny_engine):
    clean, corrupt = [0, 17, 28, 216, 1462, 30], [1, 9, 33, 712, 61, 44]
    r = patch(tiny_engine, clean, corrupt, target=1171, max_rows=5)
    assert r.target == 1171
    np.testing.assert_allclose(r.prob, brute_force(tiny_engine, clean, corrupt, 1171), atol=1e-5)


def test_progress_rows_and_cancel(tiny_engine):
    seen, rows = [], {}

    def on_layer(layer, row):
        assert layer not in rows
        rows[layer] = row

    r = patch(tiny_engine, CLEAN, CORRUPT, progress=lambda msg, f: seen.append((msg, f)), on_layer=on_layer, max_rows=8)
    fractions = [f for _, f in seen]
    assert len(seen) > 1 and fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert seen[-1][0] == "Patched 12 of 12 cells that differ"  # positions 4..9 of both layers
    np.testing.assert_array_equal(np.stack([rows[0], rows[1]]), r.prob)
    asked = []

    def cancelled():
        asked.append(1)
        return len(asked) > 1

    with pytest.raises(Cancelled):
        patch(tiny_engine, CLEAN, CORRUPT, cancelled=cancelled)
    assert len(asked) == 2  # once before the one pass, then inside it: a long pass stops within one block


def test_same_text_gives_the_clean_probability_everywhere(tiny_engine):
    r = patch(tiny_engine, CLEAN, CLEAN)
    assert r.clean_prob == r.corrupt_prob and np.all(r.prob == np.float32(r.clean_prob))


def test_user_errors(tiny_engine):
    with pytest.raises(UserError, match="clean text has 10 tokens and the corrupted text has 9"):
        patch(tiny_engine, CLEAN, CORRUPT[:-1])
    with pytest.raises(UserError, match="no tokens"):
        patch(tiny_engine, [], [])
    with pytest.raises(UserError, match="outside the vocabulary"):
        patch(tiny_engine, CLEAN, CORRUPT, target=-1)
