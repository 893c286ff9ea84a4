"""The "ask the model why" lecture scenes say what the real model does: the knock-out, patching and attribution
numbers their notes quote are measured here (the notes round them)."""

from __future__ import annotations

import numpy as np
import pytest

from explainer.core import heads
from explainer.core.attribution import attribute
from explainer.core.patching import patch
from tests.core.test_scene_claims import _scene

pytestmark = pytest.mark.slow


def _ids(engine, text):
    return [t.id for t in engine.tokens_for(text, start_token=True, max_tokens=512, parse_specials=False)[1]]


def test_knock_out_scene_takes_the_texts_top_induction_heads_and_the_copy_drops(real_engine):
    scene, info = _scene("10-knock-out")
    knocked = [tuple(h) for h in scene.panels["attention"]["knocked_out"]]
    clean = real_engine.analyze(scene.text)
    top = heads.scores_from_result(clean).top("induction", 3)
    assert sorted(knocked) == sorted((la, h) for la, h, _ in top)  # the text's three strongest induction heads
    assert [[la + 1, h + 1] for la, h in sorted(knocked)] == info["knocked_out"]
    q = info["position"]
    target = int(clean.ids[q + 1])
    assert clean.tokens[q].display == "·of" and clean.tokens[q + 1].display == "·number"
    p_clean = float(clean.token_prob[q + 1])
    p_knocked = float(real_engine.analyze(scene.text, ablated=knocked).token_prob[q + 1])
    assert p_clean == pytest.approx(0.91, abs=0.01) and p_knocked == pytest.approx(0.35, abs=0.01)
    # three heads picked at random (seeded) leave far more: 72–92 %
    rng = np.random.default_rng(0)
    randoms = []
    for _ in range(3):
        hs = [(int(rng.integers(30)), int(rng.integers(9))) for _ in range(3)]
        randoms.append(float(real_engine.analyze(scene.text, ablated=hs).token_prob[q + 1]))
    assert min(randoms) == pytest.approx(0.72, abs=0.01) and max(randoms) == pytest.approx(0.92, abs=0.01)
    assert int(clean.top_ids[q, 0]) == target  # the copy is the clean model's top prediction there
    assert "91 %" in scene.note and "35 %" in scene.note and "72–92 %" in scene.note


def test_france_scene_patching_moves_from_the_country_to_the_last_token_after_layer_23(real_engine):
    scene, _ = _scene("11-where-is-france")
    two = scene.panels["two_texts"]
    clean, corrupt = _ids(real_engine, two["clean"]), _ids(real_engine, two["corrupt"])
    p = patch(real_engine, clean, corrupt)
    assert real_engine.tokenizer.token_bytes(p.target) == b" Paris"
    labels = [
        t.display
        for t in real_engine.tokens_for(two["clean"], start_token=True, max_tokens=512, parse_specials=False)[1]
    ]
    country, last = labels.index("·France"), len(labels) - 1
    assert labels[last] == "·is"
    grid = p.prob  # [L, T]
    assert (grid[:23, country] > 0.7).all() and (grid[:23, last] < 0.05).all()  # layers 1–23: at the country
    assert (grid[23:, last] > 0.7).all() and (grid[23:, country] < 0.05).all()  # layers 24–30: at the last token
    assert np.all(np.delete(grid, [country, last], axis=1) < 0.01)  # elsewhere: the corrupted answer
    assert 0.75 <= grid[:, [country, last]].max(axis=1).min() and grid.max() <= 0.86  # "about 80 %"


def test_berlin_scene_attribution_points_at_the_country_and_the_caveat_is_true(real_engine):
    scene, _ = _scene("12-why-berlin")
    assert scene.panels["tokens"]["why"] is True
    r = real_engine.analyze(scene.text)
    a = attribute(real_engine, r.ids)
    assert real_engine.tokenizer.token_bytes(a.target) == b" Berlin"
    assert a.target_prob == pytest.approx(0.59, abs=0.01)
    labels = [t.display for t in r.tokens]
    best = int(np.argmax(a.scores))
    assert labels[best] == "·Germany" and a.scores[best] == pytest.approx(0.39, abs=0.005)
    # the caveat: on the plainer text the country scores about zero and "capital" more
    r2 = real_engine.analyze("The capital of Germany is")
    a2 = attribute(real_engine, r2.ids)
    s = dict(zip([t.display for t in r2.tokens], a2.scores))
    assert real_engine.tokenizer.token_bytes(a2.target) == b" Berlin"
    assert s["·Germany"] == pytest.approx(-0.008, abs=0.0005) and s["·capital"] == pytest.approx(0.060, abs=0.0005)
    assert "+0.39" in scene.note and "−0.008" in scene.note and "+0.060" in scene.note
