"""Head knock-out in the engine, on the tiny model: every number of the result is the knocked-out model's, the
incremental state never mixes the clean and the knocked-out model, heads are checked, the backend is named."""

from __future__ import annotations

import numpy as np
import pytest

from explainer.core.engine import TINY_CONFIG, Engine
from explainer.core.errors import UserError
from explainer.core.knockout import heads_label, normalize_heads, parse_heads
from explainer.core.llama import random_weights
from tests.core.test_incremental import assert_same

HEADS = ((0, 3), (1, 1))
TEXT = "The cat sat on the mat, and the cat"


def engine_with(weights, backend: str = "torch") -> Engine:
    from explainer.core.bundled import bundled_model_path

    return Engine(_weights=(TINY_CONFIG, weights, bundled_model_path(fetch=False)), device="cpu", backend=backend)


@pytest.fixture(scope="module")
def weights():
    return random_weights(TINY_CONFIG, seed=11)


@pytest.fixture(scope="module")
def engine(weights):
    return engine_with(weights)


@pytest.fixture(scope="module")
def zeroed(weights):
    """An independent model for the same knock-out: the heads' columns of wo set to zero in the weights."""
    hd = TINY_CONFIG.d_head
    w = {k: v.copy() for k, v in weights.items()}
    for layer, head in HEADS:
        w[f"layers.{layer}.wo"][:, head * hd : (head + 1) * hd] = 0
    return engine_with(w)


def test_every_number_is_the_knocked_out_models(engine, zeroed):
    r = engine.analyze(TEXT, ablated=[HEADS[1], HEADS[0], HEADS[1]], incremental=False)
    ref = zeroed.analyze(TEXT, incremental=False)
    assert r.ablated == HEADS and r.backend == "torch"
    assert_same(r, ref)
    np.testing.assert_allclose(r.hidden, ref.hidden, atol=1e-5)
    np.testing.assert_allclose(r.final_normed, ref.final_normed, atol=1e-5)
    np.testing.assert_allclose(r.attention.full(), ref.attention.full(), atol=1e-6)
    clean = engine.analyze(TEXT, incremental=False)
    assert clean.ablated == ()
    assert not np.allclose(clean.top_probs, r.top_probs, atol=1e-4)
    # layer 1's attention pattern depends on what layer 0's heads wrote; layer 0's does not
    np.testing.assert_allclose(clean.attention.layer(0), r.attention.layer(0), atol=1e-6)
    assert not np.allclose(clean.attention.layer(1), r.attention.layer(1), atol=1e-4)


def test_typing_with_and_without_knock_out_never_mixes_states(engine, zeroed):
    """The window analyses each text twice (clean, knocked out) while typing; both stay incremental and exact."""
    fresh = engine_with(random_weights(TINY_CONFIG, seed=11))
    engine.reset()
    for i in range(4, len(TEXT) + 1, 3):
        text = TEXT[:i]
        knocked = engine.analyze(text, ablated=HEADS)
        clean = engine.analyze(text)
        assert_same(knocked, zeroed.analyze(text, incremental=False))
        assert_same(clean, fresh.analyze(text, incremental=False))
    # another set of heads, then back to the clean model and to the first set
    other = engine.analyze(TEXT + " sat", ablated=[(1, 0)])
    assert other.ablated == ((1, 0),)
    assert_same(other, fresh.analyze(TEXT + " sat", ablated=[(1, 0)], incremental=False))
    assert_same(engine.analyze(TEXT + " sat"), fresh.analyze(TEXT + " sat", incremental=False))
    assert_same(engine.analyze(TEXT, ablated=HEADS), zeroed.analyze(TEXT, incremental=False))


def test_the_clean_state_is_kept_while_knock_out_is_on(engine, monkeypatch):
    engine.reset()
    engine.analyze(TEXT)
    engine.analyze(TEXT, ablated=HEADS)
    calls = []
    for be in (engine._backends.active, engine._knockout):
        forward = be.forward
        monkeypatch.setattr(be, "forward", lambda ids, *a, _f=forward, **k: calls.append(len(ids)) or _f(ids, *a, **k))
    engine.analyze(TEXT + " sat", ablated=HEADS)
    engine.analyze(TEXT + " sat")
    assert calls == [1, 1]  # one new token each: neither model recomputed the text


def test_knock_out_runs_on_the_stored_weights_and_equals_torch(weights, zeroed, module_cache_folder):
    """The stored-weights backend knocks heads out in its own graph (a zero for the heads' outputs): every number is
    the knocked-out model's, as torch computes it, within the stored backend's tolerance; the clean and the
    knocked-out states live side by side while typing, each continued one token at a time."""
    from tests.core.test_stored import STORED_TOL

    eng = engine_with(weights, backend="stored")
    assert eng.backend == "stored", eng.notice
    fresh = engine_with(weights, backend="stored")
    forwards = []
    for text in (TEXT, TEXT + " sat", TEXT + " sat on"):
        clean = eng.analyze(text)
        assert clean.backend == "stored" and clean.ablated == ()
        assert_same(clean, fresh.analyze(text, incremental=False), STORED_TOL, 1e-4, 1e-4)
        if eng._knockout is not None and not forwards:
            real = eng._knockout.forward
            eng._knockout.forward = lambda ids, *a, _f=real, **k: forwards.append(len(ids)) or _f(ids, *a, **k)
        r = eng.analyze(text, ablated=HEADS)
        assert r.backend == "stored" and r.ablated == HEADS
        ref = zeroed.analyze(text, incremental=False)
        assert_same(r, ref, STORED_TOL, 1e-4, 1e-4)
        np.testing.assert_allclose(r.attention.full(), ref.attention.full(), atol=1e-4)
    assert forwards == [1, 1]  # " sat" and " on": the knocked-out state was continued, not recomputed
    # a head knocked out in the stored graph changes the numbers as it does in torch: not the clean model's
    assert not np.allclose(r.top_probs, clean.top_probs, atol=1e-3)


def test_heads_outside_the_model_are_one_sentence(engine):
    for heads in ([(2, 0)], [(0, 4)], [(-1, 0)]):
        with pytest.raises(UserError, match="layers go from 1 to 2 and heads from 1 to 4"):
            engine.analyze("hi", ablated=heads)


def test_parse_heads_numbers_from_1():
    assert parse_heads("1:1, 2:4,1:1", 2, 4) == ((0, 0), (1, 3))
    assert heads_label(parse_heads("2:4,1:1", 2, 4)) == "1:1, 2:4"
    assert normalize_heads([(1, 3), (0, 0)], 2, 4) == ((0, 0), (1, 3))
    for bad in ("", "1", "1:", ":1", "a:1", "1:2,", "1:2:3", "1;2", "0:1", "3:1", "1:5", "1:0"):
        with pytest.raises(UserError):
            parse_heads(bad, 2, 4)
