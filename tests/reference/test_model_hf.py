"""The real model against Hugging Face transformers on the same GGUF, on every backend.

Each backend's engine analyses every text of ``texts.CASES`` (prose, code, numbers, other scripts, emoji,
special tokens, repetition, and two documents of over 300 tokens, one over 512) and is compared element by
element with transformers (eager attention, float32) on the same token ids: the probability of every actual
token, the top-k ids and probabilities after every position, the entropy, the attention weights of every layer
and head (float32 rows and the float16 rows from query 256 on), the residual stream after every layer and the
final-normed rows. Typing (the incremental path) is compared too.

Tolerances (``BACKENDS``), with the worst differences measured on these texts (2-core x86 CPU):

- Probabilities: relative plus absolute. p = exp(z − lse), so a logit error δ moves p by a factor of at most
  e^±2δ: relative error ≈ 2δ at any size of p. The float32 backends differ from transformers by rounding
  (differently blocked matrix products) that 30 layers accumulate; worst measured 1.5e-4 relative (torch while
  typing, where one-token passes meet a 300-token one), 1.1e-4 (ONNX). rtol = 3e-4 keeps a margin of 2 for
  other CPUs' kernels; atol = 1e-7 only covers probabilities too small for float32 to hold relatively.
  Entropies: the same rtol with atol 1e-4 bits (H = −Σ p log p moves by about rtol·(H + 1/ln 2)).
- Attention rows stored as float32: the weights are a softmax of the scores, the same reasoning: rtol 2e-4,
  plus atol 2e-6 for weights whose scores sit far below the row's maximum (worst measured: 0.47 of that).
  Rows stored as float16 (queries from 256 on) add float16's rounding: round-to-nearest with a 10-bit fraction
  errs by at most 2⁻¹¹ ≈ 4.9e-4 relative for normal numbers (weights ≥ 2⁻¹⁴) and 2⁻²⁵ ≈ 3e-8 absolute for
  subnormal ones; their tolerance is the float32 one plus (rtol 2⁻¹¹, atol 2⁻²⁵). Rounding toward zero
  instead (up to 2⁻¹⁰) or bfloat16 fails it.
- Hidden states, per layer, element-wise relative: |d| ≤ rtol·(|ref| + rms(ref row)). The next layer reads a
  row through RMSNorm, i.e. divided by its rms, so an error in units of the row's rms is what it sees; the
  |ref| term holds the few "massive" dimensions (up to 2e4) to their own relative error. Worst measured:
  torch 9e-5, ONNX 2.1e-4 (ONNX Runtime fuses and blocks the products differently): rtol 3e-4 and 1e-3.

Scaling any one weight tensor by 1.001 (a norm, a projection in layer 0, 5, 15, 20 or 29) makes at least
one of these comparisons exceed its tolerance by a factor of 3 or more on the torch backend.

A new backend is one entry in ``BACKENDS`` (its engine comes from the ``real_engines`` fixture by name).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pytest

from .hf_reference import Mismatches, Reference, Tolerance, compute
from .texts import CASES, LIGHTHOUSE, Case

pytestmark = [pytest.mark.reference, pytest.mark.slow]

START_TOKEN_ID = 0  # <|endoftext|>, which the engine puts first as "start of text"
FLOAT16 = Tolerance(rtol=2.0**-11, atol=2.0**-25)  # float16 rounding of values in [0, 1]


@dataclass(frozen=True)
class Backend:
    name: str  # Engine(backend=name)
    probs: Tolerance  # probabilities (next token, top-k) and, with atol 1e-4 bits, entropies
    attention: Tolerance  # attention rows stored as float32 (float16 rows: this + FLOAT16)
    hidden_rtol: float  # residual stream and final-normed rows: |d| <= rtol·(|ref| + rms of the row)


BACKENDS = [
    Backend("torch", probs=Tolerance(3e-4, 1e-7), attention=Tolerance(2e-4, 2e-6), hidden_rtol=3e-4),
    Backend("onnx", probs=Tolerance(3e-4, 1e-7), attention=Tolerance(2e-4, 2e-6), hidden_rtol=1e-3),
]


each_backend = pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)


@pytest.fixture
def engine(real_engines, backend):
    """The real model on ``backend`` (each is made once per session), without incremental state."""
    eng = real_engines(backend.name)
    eng.reset()
    return eng


def expected_ids(engine, case: Case) -> list[int]:
    """The ids transformers gets: the start token (when asked) and the tokenizer's ids (which
    test_tokenizer_hf compares with transformers' tokenizer)."""
    ids = engine.tokenizer.encode(case.text, parse_specials=case.parse_specials)
    return ([START_TOKEN_ID] if case.start_token else []) + ids


@functools.lru_cache(maxsize=2)  # tests run text by text (the typing test: two texts), each reference made once
def _reference(hf_model, ids: tuple[int, ...]) -> Reference:
    return compute(hf_model, list(ids))


def reference(hf_model, ids) -> Reference:
    return _reference(hf_model, tuple(int(i) for i in ids))


def compare(r, ref: Reference, be: Backend) -> Mismatches:
    """Everything ``r`` shows that transformers also computes."""
    m = Mismatches()
    m.equal("token ids", r.ids, ref.ids)
    if m.messages:
        return m
    T = len(ref.ids)
    m.close("P(token | prefix)", r.token_prob[1:], ref.token_prob(), be.probs)
    hf_top = ref.top_probs()
    k = r.top_ids.shape[1]
    m.close("top-k probabilities", r.top_probs, hf_top[:, :k], be.probs)
    # the ids listed have the probabilities listed: with the line above, the top-k ids are right up to ties
    m.close("transformers' P of each listed top-k id", r.top_probs, ref.probs(np.arange(T), r.top_ids), be.probs)
    clear = hf_top[:, 0] - hf_top[:, 1] > 2 * (be.probs.atol + be.probs.rtol * hf_top[:, 0])
    m.equal("most likely next token (rows without a near tie)", r.top_ids[clear, 0], ref.top_ids[clear, 0])
    m.close("entropy (bits)", r.entropy_bits, ref.entropy_bits, Tolerance(be.probs.rtol, 1e-4))
    ref_logp = float(np.log(ref.token_prob()).sum())
    m.check(
        "sentence log-probability",
        abs(r.sentence_logprob - ref_logp) <= 2 * be.probs.rtol * (T - 1) + 1e-6,
        f"{r.sentence_logprob:.6f} vs transformers {ref_logp:.6f}",
    )
    q0 = 0
    for block in r.attention.blocks:  # [L, H, rows, keys]: queries q0..q1-1 over keys 0..q1-1
        q1 = q0 + block.shape[2]
        tol = be.attention + (FLOAT16 if block.dtype == np.float16 else Tolerance(0.0, 0.0))
        for layer, ref_att in enumerate(ref.attention):
            m.close(
                f"attention layer {layer} queries {q0}..{q1 - 1} ({block.dtype})",
                block[layer],
                ref_att[:, q0:q1, :q1],
                tol,
            )
        q0 = q1
    m.check("attention rows", q0 == T, f"cover {q0} of {T} queries")
    for layer in range(ref.residual.shape[0]):
        ref_h = ref.residual[layer]
        rms = np.sqrt((ref_h.astype(np.float64) ** 2).mean(-1, keepdims=True))
        m.close(f"residual stream hidden[{layer}]", r.hidden[layer], ref_h, Tolerance(be.hidden_rtol, 0.0), rms)
    rms = np.sqrt((ref.final_normed.astype(np.float64) ** 2).mean(-1, keepdims=True))
    m.close("final-normed rows", r.final_normed, ref.final_normed, Tolerance(be.hidden_rtol, 0.0), rms)
    return m


def test_texts_are_varied_and_some_are_long(real_engine):
    assert len(CASES) >= 20 and len({c.text for c in CASES}) == len(CASES)
    lengths = [len(expected_ids(real_engine, c)) for c in CASES]
    assert sum(n >= 300 for n in lengths) >= 2 and max(lengths) > 512


@each_backend  # varies fastest: the backends run one text after another, so its reference is computed once
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_analysis_matches_transformers(engine, hf_model, backend, case):
    r = engine.analyze(case.text, incremental=False, parse_specials=case.parse_specials, start_token=case.start_token)
    m = compare(r, reference(hf_model, expected_ids(engine, case)), backend)
    if r.n_tokens > 256:  # the long texts do reach the rows the engine stores as float16
        m.check("float16 rows", np.dtype(np.float16) in {b.dtype for b in r.attention.blocks}, "absent")
    assert not m.messages, f"{backend.name} backend on {case.name!r}:\n{m.report()}"


@each_backend
def test_typing_matches_transformers(engine, hf_model, backend):
    """The incremental path: a text typed character by character, then a long text edited near its end (new
    rows computed from the key/value cache, past query 256)."""
    text = "The eagle catches the"
    for i in range(1, len(text) + 1):
        r = engine.analyze(text[:i])
    typed = compare(r, reference(hf_model, expected_ids(engine, Case("typed", text))), backend).messages
    engine.analyze(LIGHTHOUSE[:-60])
    edited = Case("edited", LIGHTHOUSE[:-60] + " and count the stars.")
    r = engine.analyze(edited.text)
    assert r.n_tokens > 300
    messages = [f"typed: {s}" for s in typed]
    messages += [
        f"edited: {s}" for s in compare(r, reference(hf_model, expected_ids(engine, edited)), backend).messages
    ]
    assert not messages, f"{backend.name} backend, typing:\n" + "\n".join(messages)


def test_start_token_changes_the_prediction(real_engine, hf_model):
    """With <|endoftext|> first, transformers predicts " mat" after "The cat sat on the"; without, " cat". The
    engine shows the same token with the same probability in both cases."""
    decode = real_engine.tokenizer.decode
    for start, word in ((True, " mat"), (False, " cat")):
        case = Case("cat", "The cat sat on the", start_token=start)
        r = real_engine.analyze(case.text, incremental=False, start_token=start)
        ref = reference(hf_model, expected_ids(real_engine, case))
        assert r.ids.tolist() == ref.ids
        assert decode([int(ref.top_ids[-1, 0])]) == word
        assert int(r.top_ids[-1, 0]) == int(ref.top_ids[-1, 0])
        assert r.top_probs[-1, 0] == pytest.approx(ref.top_probs()[-1, 0], rel=BACKENDS[0].probs.rtol)
