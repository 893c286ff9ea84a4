"""Demo data for running a panel alone (``python -m explainer.ui.panels.attention``) and for panel tests.

``demo_engine_or_fake()`` uses the core's tiny random-weight model (``engine.demo_engine``) when it exists and
otherwise a fake engine whose results have the right shapes (causal attention rows that sum to 1, with an
attention sink on the first token, and random hidden states). ``real_engine()`` loads the bundled model.
"""

from __future__ import annotations

import logging
import re

import numpy as np

from explainer.core.types import AnalysisResult, Attention, ModelInfo, Token, readonly

DEMO_TEXT = "I sat on the bank of the river. I put money in the bank account."


class FakeEngine:
    """Shape-correct stand-in for ``core.engine.Engine`` (word-level tokens, random weights)."""

    backend = "fake"
    device = "cpu"

    def __init__(self, n_layers: int = 4, n_heads: int = 3, d_model: int = 32, vocab: int = 512, seed: int = 0):
        self.info = ModelInfo(
            "fake-model",
            n_layers,
            n_heads,
            1,
            d_model,
            d_model // n_heads,
            4 * d_model,
            vocab,
            12345,
            2048,
            10000.0,
            1e-5,
        )
        rng = np.random.default_rng(seed)
        self.embedding_table = readonly(rng.standard_normal((vocab, d_model)).astype(np.float32))
        self._mix = rng.standard_normal((n_layers, d_model, d_model)).astype(np.float32) / np.sqrt(d_model)
        self._seed = seed

    def _ids(self, pieces: list[str]) -> list[int]:
        return [1 + (sum(map(ord, p)) * 2654435761 % (self.info.vocab_size - 1)) for p in pieces]

    def analyze(self, text: str, *, start_token: bool = True, max_tokens: int = 512, **_) -> AnalysisResult:
        info = self.info
        spans = [(m.start(), m.end()) for m in re.finditer(r" ?\w+| ?[^\w\s]+|\s+", text)][: max_tokens - 1]
        tokens = [Token(0, b"<|endoftext|>", 0, 0, special=True, added=True)] if start_token else []
        ids = self._ids([text[a:b] for a, b in spans])
        tokens += [Token(i, text[a:b].encode(), a, b) for i, (a, b) in zip(ids, spans)]
        ids = np.array([t.id for t in tokens], np.int64)
        T, L, H, D = len(tokens), info.n_layers, info.n_heads, info.d_model
        rng = np.random.default_rng(self._seed + T)
        h = np.empty((L + 1, T, D), np.float32)
        h[0] = self.embedding_table[ids]
        for layer in range(L):  # a causal running mean mixes context into each position
            ctx = np.cumsum(h[layer], 0) / np.arange(1, T + 1)[:, None]
            h[layer + 1] = h[layer] + np.tanh(ctx @ self._mix[layer])
        logits = rng.standard_normal((L, H, T, T)).astype(np.float32) * 2
        logits[..., 0] += 3.0  # an attention sink
        logits = np.where(np.tril(np.ones((T, T), bool)), logits, -np.inf)
        att = np.exp(logits - logits.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        att = att.astype(np.float32)
        probs = rng.uniform(0.01, 0.9, T).astype(np.float32)
        probs[0] = np.nan
        top_ids = rng.integers(0, info.vocab_size, (T, 8))
        top_probs = np.sort(rng.dirichlet(np.ones(8), T), 1)[:, ::-1].astype(np.float32)
        return AnalysisResult(
            text=text,
            model=info,
            device="cpu",
            backend="fake",
            tokenizer="fake",
            tokens=tuple(tokens),
            ids=readonly(ids),
            start_token=start_token,
            truncated=False,
            dropped=(),
            specials_parsed=False,
            token_prob=readonly(probs),
            surprisal_bits=readonly(-np.log2(probs)),
            entropy_bits=readonly(np.full(T, 3.0, np.float32)),
            top_ids=readonly(top_ids),
            top_probs=readonly(top_probs),
            sentence_logprob=float(np.nansum(np.log(probs))),
            hidden=readonly(h),
            final_normed=readonly(h[-1].copy()),
            attention=Attention([att]),
            unembedding=self.embedding_table,
        )


def demo_engine_or_fake():
    """The core's tiny demo engine if available, else a ``FakeEngine``."""
    try:
        from explainer.core.engine import demo_engine

        return demo_engine()
    except Exception as e:  # noqa: BLE001 - a demo must still start while the core is being changed
        logging.getLogger(__name__).warning("demo engine unavailable (%s); using fake data", e)
        return FakeEngine()


def real_engine():
    """The bundled SmolLM2 model (seconds to load)."""
    from explainer.core.engine import Engine

    return Engine()
