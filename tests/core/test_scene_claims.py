"""Each lecture scene's caption is true on the real model: the head, layer, position and seed a scene names show
what its note says (measured, not assumed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from explainer.core import chat, heads, sampling
from explainer.core.scene import lecture_set, scene_summary

pytestmark = pytest.mark.slow


def _scene(stem: str):
    for path, scene in lecture_set():
        if path.stem == stem:
            return scene, scene_summary(path, scene)
    raise AssertionError(f"no lecture scene {stem}")


def _analyze(engine, scene):
    return engine.analyze(scene.text, start_token=scene.start_token, parse_specials=scene.parse_specials)


def _label(engine, token_id: int) -> str:
    return engine.tokenizer.token_bytes(int(token_id)).decode("utf-8", "replace")


def test_strawberry_is_one_token_after_a_space_and_three_without(real_engine):
    scene, _ = _scene("01-strawberry")
    tok = real_engine.tokenizer
    assert scene.panels["bpe"]["word"] == "strawberry" and "strawberry" in scene.text
    assert [t.text for t in tok.tokenize("strawberry").tokens] == ["st", "raw", "berry"]
    assert [t.text for t in tok.tokenize(" strawberry").tokens] == [" strawberry"]
    assert "st · raw · berry" in scene.note


def test_chain_rule_scene_multiplies_the_token_probabilities(real_engine):
    scene, _ = _scene("02-cat-sat")
    r = _analyze(real_engine, scene)
    logs = [math.log(float(p)) for p in r.token_prob[1:]]
    assert r.sentence_logprob == pytest.approx(sum(logs), rel=1e-4)


def test_induction_scene_shows_the_strongest_induction_head(real_engine):
    scene, info = _scene("03-induction")
    r = _analyze(real_engine, scene)
    layer, head = info["layer"] - 1, info["head"] - 1
    live = heads.scores_from_result(r)
    best = live.top("induction", 1)[0]
    assert (best[0], best[1]) == (layer, head)  # the strongest induction head on this very text
    assert live.induction[layer, head] > 0.7
    reference = heads.reference_scores(real_engine, n_seeds=1)
    assert reference.top("induction", 1)[0][:2] == (layer, head)  # and on the standard test
    # the selected token in the second copy looks at the token that followed its first occurrence
    q = info["position"]
    ids = r.ids
    first = [p for p in range(q) if ids[p] == ids[q]]
    assert len(first) == 1 and q > r.n_tokens // 2
    a = r.attention.head(layer, head)
    assert a[q, first[0] + 1] > 0.9
    assert int(r.top_ids[q, 0]) == int(ids[first[0] + 1])  # and the model predicts that token
    assert r.tokens[q].display == "·of" and r.tokens[first[0] + 1].display == "·number"


def test_sink_scene_head_parks_its_attention_on_the_first_token(real_engine):
    scene, info = _scene("04-attention-sink")
    r = _analyze(real_engine, scene)
    layer, head = info["layer"] - 1, info["head"] - 1
    a = r.attention.head(layer, head).astype(np.float64)
    assert a[1:, 0].mean() > 0.85
    assert (heads.scores_from_result(r).first_token > 0.5).sum() >= 100  # "many heads" do it
    q = info["position"]  # with the first token hidden, the selected "·it" looks at "·eagle"
    rest = a[q, 1 : q + 1] / a[q, 1 : q + 1].sum()
    assert r.tokens[q].display == "·it" and r.tokens[1 + int(np.argmax(rest))].display == "·eagle"
    assert rest.max() > 0.5


def test_chat_scene_ends_where_the_assistant_answers(real_engine):
    scene, _ = _scene("05-chat-template")
    state = scene.panels["chat"]
    assert chat.render(state["messages"], state["generation"]) == scene.text
    assert scene.text.endswith(f"{chat.IM_START}assistant\n")
    r = _analyze(real_engine, scene)
    assert r.specials_parsed and not r.start_token
    assert [t.special for t in r.tokens].count(True) == 5 and r.tokens[-4].special  # <|im_start|> ass istant ⏎


def test_bank_scene_points_separate_and_sit_by_their_context(real_engine):
    from explainer.core.projection import Projector

    scene, info = _scene("06-bank")
    r = _analyze(real_engine, scene)
    a, b = scene.panels["embeddings"]["highlight"]
    assert r.tokens[a].display == r.tokens[b].display == "·bank"
    river, money = scene.panels["embeddings"]["labelled"]  # labelled on the map, as the note names them
    assert (r.tokens[river].display, r.tokens[money].display) == ("·river", "·money")
    projector = Projector(real_engine)

    def on_map(layer):  # coordinates as a fraction of the map (the panel stretches the map to fill the plot)
        x0, x1, y0, y1 = projector.fit_layer(layer).bounds
        return (projector.project(r, layer) - [x0, y0]) / [x1 - x0, y1 - y0]

    def dist(xy, i, j):
        return float(np.hypot(*(xy[i] - xy[j])))

    assert dist(on_map(0), a, b) < 1e-6  # one point at layer 0
    xy = on_map(info["embedding_layer"])
    assert dist(xy, a, b) > 0.15
    assert dist(xy, a, river) < dist(xy, b, river) and dist(xy, b, money) < dist(xy, a, money)


def _sampled(engine, scene, info, temperature=None):
    r = _analyze(engine, scene)
    t = info["temperature"] if temperature is None else temperature
    p = sampling.sampling_distribution(r.logits_at(r.n_tokens - 1), t)
    return r, [_label(engine, sampling.draw(p, info["seed"], i)) for i in range(3)]


def test_hallucination_scene_samples_fluent_names_that_change_with_temperature(real_engine):
    scene, info = _scene("07-hallucination")
    r, cold = _sampled(real_engine, scene, info)
    top5 = [_label(real_engine, i) for i in r.top_ids[-1, :5]]
    assert " John" in top5 and " Neil" in top5  # fluent guesses, as if someone had walked on Mars
    assert set(cold) <= {" John", " Neil", " named"}
    _r, hot = _sampled(real_engine, scene, info, temperature=2.0)
    assert hot[0] != cold[0]  # raising the temperature changes the next sample shown under the bars
    assert "Ctrl+G" in scene.note


def test_in_context_scene_examples_change_the_answer(real_engine):
    scene, _ = _scene("08-in-context")
    with_examples = _analyze(real_engine, scene)
    alone = real_engine.analyze(scene.text.splitlines()[-1], start_token=True)
    assert _label(real_engine, with_examples.top_ids[-1, 0]) == " Berlin"
    assert int(alone.top_ids[-1, 0]) != int(with_examples.top_ids[-1, 0])


def test_close_call_scene_sampled_choice_flips(real_engine):
    scene, info = _scene("09-close-call")
    r, draws = _sampled(real_engine, scene, info)
    top = [_label(real_engine, i) for i in r.top_ids[-1, :2]]
    assert top == [" Canberra", " Sydney"] and r.top_probs[-1, 0] - r.top_probs[-1, 1] < 0.1
    assert draws[:2] == [" Canberra", " Sydney"]  # the first two samples of the scene's seed flip
    assert "Ctrl+G" in scene.note and "Ctrl+Z" in scene.note  # sample, take it back, sample again
