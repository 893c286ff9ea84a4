"""The engine: one model + its tokenizer, and ``analyze(text) -> AnalysisResult``.

Analysis is incremental: the engine keeps the previous request's keys/values, hidden states, attention rows
and next-token statistics; a new text is tokenized, the first changed token found, and only the positions from
there on are computed. Because the model is causal, the result equals a full recompute.

Head knock-out (``analyze(text, ablated=[(layer, head)])``) runs on the active backend when it has a place to zero
the heads' outputs (torch and the stored weights do), else on torch, with its own incremental state: the engine
keeps one state for the clean model and one for the current set of knocked-out heads, so analysing both while
typing updates each incrementally and never mixes them.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from explainer.core.backends.memory import (
    mapped_files,
    prefetch,
    read_into_cache,
    release_free_memory,
    torch_libraries,
)
from explainer.core.backends.select import BackendSelector
from explainer.core.devices import device_label, pick_device
from explainer.core.errors import ModelFileError
from explainer.core.gguf_loader import LlamaConfig
from explainer.core.knockout import Head, normalize_heads
from explainer.core.model_source import gguf_start_token, open_model
from explainer.core.residuals import Residuals
from explainer.core.types import AnalysisResult, Attention, ModelInfo, Token, WeightsView, readonly

if TYPE_CHECKING:
    from explainer.core.backends.base import Backend
    from explainer.core.hf_tokenizer import HFTokenizer
    from explainer.core.llama import Llama
    from explainer.core.tokenizers import Tokenizer

log = logging.getLogger(__name__)
START_TOKEN_ID = 0  # SmolLM2's <|endoftext|>, its start of text (each model's own: Engine.start)
DEFAULT_MAX_TOKENS = 1024
LN2 = math.log(2.0)
# Attention rows of query positions < FP32_ROWS are stored as float32; later rows as float16 (half the memory
# of the part that grows fastest; |error| <= 2.4e-4 for weights near 1, relative 4.9e-4, read back as float32).
# Analyses of up to 256 tokens are therefore exact float32 (``Engine.fp32_rows`` raises the limit, as
# ``analyze --attention`` does). Texts longer than SINGLE_CALL_ROWS run the forward pass in chunks of CHUNK_ROWS
# rows (bounding the temporary float32 attention of one call: 35 MB at 1024 tokens); no call straddles the
# float32/float16 boundary.
FP32_ROWS = 256
CHUNK_ROWS = 32
SINGLE_CALL_ROWS = 512  # texts up to this long run in one forward call (two when they straddle FP32_ROWS)
# a layer's tensors in the loader's layout; the second line only where the family has them (Qwen2, GPT-2)
LAYER_TENSORS = ("attn_norm", "ffn_norm", "wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down") + (
    *("attn_norm_bias", "ffn_norm_bias", "bq", "bk", "bv", "bo", "b_gate", "b_up", "b_down"),
)


@dataclass
class _State:
    """What the previous request left behind, for incremental updates. Rows are positions."""

    ids: list[int]
    cache: object  # the backend's key/value cache
    hidden: Residuals  # [L+1, T, D], blocks shared with the states before
    final_normed: np.ndarray  # [T, D]
    attention: Attention
    token_logp: np.ndarray  # [T] float64, NaN at 0
    entropy_bits: np.ndarray  # [T]
    top_ids: np.ndarray  # [T, K]
    top_probs: np.ndarray  # [T, K]
    lse: np.ndarray  # [T] float64: log-sum-exp of each row's logits
    backend: Backend | None = None  # the Backend that made ``cache``


def attention_chunks(p: int, T: int, fp32_rows: int = FP32_ROWS):
    """Row ranges ``[a, b)`` of the forward calls that compute rows ``p..T-1`` (see FP32_ROWS)."""
    step = SINGLE_CALL_ROWS if T <= SINGLE_CALL_ROWS else CHUNK_ROWS
    a = p
    while a < T:
        b = min(T, a + step)
        if a < fp32_rows < b:
            b = fp32_rows
        yield a, b
        a = b


class Engine:
    """One model, its tokenizer and the incremental state. ``backend``: "torch", "onnx" or "auto" (which one
    runs the forward pass; rules in ``explainer.core.backends``); ``engine.notice`` says when one fell back."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        device: str = "auto",
        backend: str = "torch",
        progress: Callable[[str, float], None] | None = None,
        _weights=None,
    ):
        from explainer.core.tokenizers import get_tokenizer, register_model_tokenizer

        t0 = time.perf_counter()
        self.device_kind = pick_device(device)
        if _weights is not None:  # (cfg, weights, path of a GGUF for the vocabulary) for tests and the demo
            cfg, weights, path = _weights
            self.tokenizer: Tokenizer | HFTokenizer = get_tokenizer("smollm2", gguf_path=path)
            self.start = gguf_start_token(cfg, self.tokenizer)
            source = None
        else:
            source = open_model(model_path, progress)
            cfg, weights, path = source.cfg, source.weights, source.path
            self.tokenizer, self.start = source.tokenizer, source.start
            register_model_tokenizer(self.tokenizer)
        if self.tokenizer.vocab_size > cfg.vocab_size:
            raise ModelFileError(
                f"{Path(path).name} has a tokenizer larger than its embedding table; the file is inconsistent."
            )
        self.cfg: LlamaConfig = cfg
        self._weights = weights  # float32 arrays: memory maps of the weight cache
        self._model: Llama | None = None
        self.device = device_label(self.device_kind)
        n_params = sum(int(a.size) for a in weights.values())
        self.info = ModelInfo(
            name=cfg.name,
            n_layers=cfg.n_layers,
            n_heads=cfg.n_heads,
            n_kv_heads=cfg.n_kv_heads,
            d_model=cfg.d_model,
            d_head=cfg.d_head,
            d_ff=cfg.d_ff,
            vocab_size=cfg.vocab_size,
            n_params=n_params,
            context_length=cfg.context_length,
            rope_theta=cfg.rope_theta,
            norm_eps=cfg.norm_eps,
            path=str(path),
            arch=cfg.arch,
            positions=cfg.positions,
            norm=cfg.norm,
            mlp=cfg.mlp,
            tied="lm_head" not in weights,
            start=self.start,
        )
        # read-only views (the arrays themselves stay writable: torch wraps them without a copy)
        self.embedding_table = readonly(weights["embed"].view())
        self.unembedding = readonly(weights["lm_head"].view()) if "lm_head" in weights else self.embedding_table
        self.weights = WeightsView(
            lambda i: {k: weights[f"layers.{i}.{k}"].view() for k in LAYER_TENSORS if f"layers.{i}.{k}" in weights},
            weights["norm"].view(),
            cfg.norm_eps,
            cfg.rope_theta,
            final_norm_bias=weights["norm_bias"].view() if "norm_bias" in weights else None,
            positions=cfg.positions,
            rope_scaling=cfg.rope_scaling,
        )
        import explainer.core.stored as stored_weights

        if source is None or source.gguf_path is None:  # the demo's weights, or a model folder's
            from explainer.core.backends.onnx_export import model_fingerprint

            identity, gguf = (lambda: model_fingerprint(cfg, weights)), None
            stored = lambda: stored_weights.from_float_weights(weights)  # noqa: E731
        else:
            source_identity, gguf = source.identity, source.gguf_path
            identity = lambda: source_identity  # noqa: E731
            stored = lambda: stored_weights.read_gguf(gguf, cfg)  # noqa: E731
        source = None  # the engine keeps the weights itself (self._weights)
        self._backends = BackendSelector(
            backend,
            lambda: self.model,
            self.device_kind,
            self.embedding_table,
            self.unembedding,
            identity,
            gguf,
            progress,
            stored,
            cfg,
        )
        self._state: _State | None = None
        self._spare: _State | None = None  # the other model's state (clean or knocked-out): see _switch_to
        self._knockout: Backend | None = None  # the backend with the current knocked-out heads
        self._state_k = 0
        self.fp32_rows = FP32_ROWS  # attention rows kept exact; set it higher to keep every row float32
        self.load_seconds = time.perf_counter() - t0

    # ------------------------------------------------------------------------------------------------------
    def tokens_for(self, text: str, *, start_token: bool, max_tokens: int, parse_specials: bool):
        """Tokenize and cut at ``max_tokens`` analysed tokens (start token included; a model with learned
        positions, GPT-2, is also cut at the end of its position table)."""
        # max_tokens counts the start token too; a tokenizer that stopped early
        # (thousands of bytes without a token) used to report truncated=False
        start_token = start_token and self.start.id is not None
        if self.cfg.positions == "learned":
            max_tokens = min(max_tokens, self.cfg.context_length)
        budget = max(0, max(1, max_tokens) - (1 if start_token else 0))
        tok = self.tokenizer.tokenize(text, parse_specials=parse_specials, max_tokens=budget + 1)
        truncated = len(tok.tokens) > budget or not getattr(tok, "complete", True)
        tokens = list(tok.tokens[:budget])
        sid = self.start.id
        if start_token and sid is not None:
            tokens.insert(0, Token(sid, self.tokenizer.token_bytes(sid), 0, 0, True, True))
        return tok, tuple(tokens), truncated

    def analyze(
        self,
        text: str,
        *,
        start_token: bool = True,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        parse_specials: bool = False,
        top_k: int = 64,
        generation: int = 0,
        incremental: bool = True,
        ablated: Iterable[Head] = (),
    ) -> AnalysisResult:
        """``ablated``: heads ``(layer, head)``, 0-based, knocked out for every number of the result (a head
        outside the model: UserError)."""
        t0 = time.perf_counter()
        heads = normalize_heads(ablated, self.cfg.n_layers, self.cfg.n_heads)
        tok, tokens, truncated = self.tokens_for(
            text, start_token=start_token, max_tokens=max_tokens, parse_specials=parse_specials
        )
        ids = [t.id for t in tokens]
        state = self._update(ids, top_k if incremental else None, top_k, heads) if ids else self._empty(top_k)
        token_prob = np.exp(state.token_logp).astype(np.float32)
        surprisal = (-state.token_logp / LN2).astype(np.float32)
        logp = state.token_logp[1:]
        result = AnalysisResult(
            text=text,
            model=self.info,
            device=self.device,
            backend=state.backend.name if state.backend is not None else self.backend,
            tokenizer=self.tokenizer.name,
            tokens=tokens,
            ids=readonly(np.asarray(ids, np.int64)),
            start_token=bool(tokens) and tokens[0].added,
            truncated=truncated,
            dropped=tok.dropped,
            specials_parsed=tok.specials_parsed,
            token_prob=readonly(token_prob),
            surprisal_bits=readonly(surprisal),
            entropy_bits=state.entropy_bits,
            top_ids=state.top_ids,
            top_probs=state.top_probs,
            sentence_logprob=float(np.sum(logp)) if len(logp) else 0.0,
            hidden=state.hidden,
            final_normed=state.final_normed,
            attention=state.attention,
            unembedding=self.unembedding,
            weights=self.weights,
            latency_ms=(time.perf_counter() - t0) * 1000.0,
            generation=generation,
            ablated=heads,
        )
        return result

    @property
    def model(self):
        """The readable torch model (``llama.Llama``) on the engine's device, built on first use: the torch
        backend, a fallback, gradients. Backends that run ONNX Runtime never need it (nor torch)."""
        if self._model is None:
            from explainer.core.llama import build_model

            read_into_cache(mapped_files(self._weights))  # one sequential read, not a page fault per page
            self._model = build_model(self.cfg, self._weights, self.device_kind)
        return self._model

    def prefetch_readable_model(self):
        """Until the readable model is built: read what building it first reads (torch's libraries, unless torch is
        imported; the files its weights are mapped from) into the file cache, in the background. Its first use
        (attribution, patching, knock-out on a backend that cannot zero a head) then waits for no disk. The reading
        thread, or None."""
        return prefetch(torch_libraries() + mapped_files(self._weights)) if self._model is None else None

    def attention_for_ids(self, ids: np.ndarray) -> Attention:
        """The attention ``[L, H, T, T]`` of raw token ids, run by the active backend from scratch (no tokenizer;
        the incremental state is not touched)."""
        be = self._backends.active
        return Attention([be.forward(np.asarray(ids, np.int64), None).attention])

    def kernel_steps(self) -> dict | None:
        """The active backend's one-token kernels alone, to time (``StoredBackend.kernel_steps``: the floor of a
        keystroke on this machine), or None for a backend without them."""
        steps = getattr(self._backends.active, "kernel_steps", None)
        return steps() if steps is not None else None

    def close(self) -> None:
        """Stop background work (an ONNX export in a child process); the engine still analyses after this."""
        self._backends.close()

    def reset(self) -> None:
        """Forget the incremental state (the next analyze recomputes everything)."""
        self._state = self._spare = None

    @property
    def backend(self) -> str:
        """The backend running the model now: "torch" or "onnx"."""
        return self._backends.active.name

    @property
    def backend_label(self) -> str:
        return self._backends.active.label

    @property
    def notice(self) -> str | None:
        """One sentence for the status bar when a backend or provider fell back; None when all is well."""
        return self._backends.notice

    def wait_for_backend(self, progress: Callable[[str, float], None] | None = None) -> str:
        """Block until a background ONNX export (``backend="auto"``) has finished; return the backend."""
        if self._backends.wait(progress):
            self._backend_switched()
        return self.backend

    def _backend_switched(self) -> None:
        """A background ONNX export became the active backend: the kept states (its cache format differs) and the
        knock-out backend made from the previous one go."""
        self._state = self._spare = None
        self._knockout = None

    # ------------------------------------------------------------------------------------------------------
    def _update(self, ids: list[int], incremental_k: int | None, top_k: int, heads: tuple[Head, ...] = ()) -> _State:
        if self._backends.poll():
            self._backend_switched()
        elif self._state_k != top_k:  # the kept states have another top-k
            self._state = self._spare = None
        be = self._backends.active if not heads else self._knockout_backend(heads)
        self._switch_to(be)
        old = self._state if (incremental_k is not None and self._state_k == top_k) else None
        if old is not None and old.backend is not be:
            old = None
        p = 0
        if old is not None:
            n = min(len(old.ids), len(ids))
            while p < n and old.ids[p] == ids[p]:
                p += 1
            if p == len(ids) == len(old.ids):
                return old
            if p == len(ids):  # text shortened to a prefix: everything is already known
                self._state = self._truncate(old, p)
                return self._state
        try:
            self._state = self._compute(ids, old, p, top_k, be)
        except BaseException:
            self._state = None  # the backend may already have reused cache memory the old state counts on
            raise
        self._state_k = top_k
        if len(ids) - p > 2 * CHUNK_ROWS:  # a long pass (and the state it replaced) left freed blocks behind
            release_free_memory()
        return self._state

    def _knockout_backend(self, heads: tuple[Head, ...]) -> Backend:
        """The active backend with ``heads`` knocked out, or torch where it cannot zero them (one object per set: a
        state is tied to its backend)."""
        if self._knockout is None or self._knockout.knocked_out != heads:
            be = self._backends.active.knocking_out(heads)
            if be is None:
                from explainer.core.backends.torch_backend import TorchBackend

                be = TorchBackend(self.model, self.device_kind, heads)
            self._knockout = be
        return self._knockout

    def _switch_to(self, be) -> None:
        """Make ``_state`` the state computed by ``be`` (None if there is none). The state set aside stays as the
        spare while its backend is still in use (the clean model's, or the current knock-out's)."""
        state, spare = self._state, self._spare
        if state is not None and state.backend is be:
            return
        in_use = (self._backends.active, self._knockout)
        self._state = spare if spare is not None and spare.backend is be else None
        keep = [s for s in (state, spare) if s is not None and s.backend is not be and s.backend in in_use]
        self._spare = keep[0] if keep else None

    def _compute(self, ids: list[int], old: _State | None, p: int, k: int, be) -> _State:
        """Positions ``p..T-1`` computed, ``0..p-1`` taken from ``old`` (``p == 0`` when ``old`` is None)."""
        c, T = self.cfg, len(ids)
        ids_arr = np.asarray(ids, np.int64)
        final = np.empty((T, c.d_model), np.float32)
        token_lp = np.empty(T, np.float64)
        lse, entropy = np.empty(T, np.float64), np.empty(T, np.float32)
        tops_i, tops_p = np.empty((T, k), np.int64), np.empty((T, k), np.float32)
        cache, blocks, residual_blocks = None, [], []
        if p:
            assert old is not None, "positions kept from a state need that state"
            final[:p] = old.final_normed[:p]
            residual_blocks = list(old.hidden.truncated(p).blocks)
            token_lp[:p], lse[:p], entropy[:p] = old.token_logp[:p], old.lse[:p], old.entropy_bits[:p]
            tops_i[:p], tops_p[:p] = old.top_ids[:p], old.top_probs[:p]
            blocks = list(old.attention.truncated(p).blocks)
            cache = be.truncate(old.cache, p)
        long_pass = T - p > 2 * CHUNK_ROWS
        for a, b in attention_chunks(p, T, self.fp32_rows):
            step = be.forward(ids_arr[a:b], cache, np.float32 if a < self.fp32_rows else np.float16)
            cache = step.cache
            final[a:b] = step.final_normed
            residual_blocks.append(step.hidden)
            blocks.append(step.attention)
            del step
            if long_pass:  # each call's float32 attention was freed: hand it back before the next (peak RSS)
                release_free_memory()
        # next-token statistics of the new rows; row p-1 keeps its distribution, only its next token changed
        nxt = np.append(ids_arr[p + 1 :], -1)
        if be.row_stats is not None:  # computed with the output matrix as stored
            st = be.row_stats(final[p:], nxt, k)
        else:
            from explainer.core.backends.stats import row_stats

            st = row_stats(final[p:], self.model.unembedding, nxt, k)
        if not np.isfinite(st.lse).all():  # every number after an overflow is NaN: nothing true to show
            raise ModelFileError(
                "The model's numbers overflowed to infinity or NaN on this text; its weights are out of range "
                "(the model file is probably damaged)."
            )
        token_lp[0] = np.nan
        if p:  # log P(token p) after row p-1, whose log-sum-exp is known: one dot product, in float64 as the
            # log-sum-exp is kept (both in float32 added ~1e-5 at logits near 50). The log-sum-exp comes from the
            # row's float32 logits, a few 1e-6 from exact there: for a nearly certain token that alone can be above
            # 0, a probability of 1.000001; a log-probability is ≤ 0.
            row, emb = final[p - 1].astype(np.float64), self.unembedding[ids[p]].astype(np.float64)
            token_lp[p] = min(0.0, float(row @ emb) - float(lse[p - 1]))
        token_lp[p + 1 :] = st.next_logp[:-1]
        lse[p:], entropy[p:], tops_i[p:], tops_p[p:] = st.lse, st.entropy_bits, st.top_ids, st.top_probs
        return _State(
            ids,
            cache,
            Residuals(residual_blocks).compacted(positions_per_block=CHUNK_ROWS),
            readonly(final),
            Attention(blocks).compacted(rows_per_block=CHUNK_ROWS),
            readonly(token_lp),
            readonly(entropy),
            readonly(tops_i),
            readonly(tops_p),
            readonly(lse),
            be,
        )

    def _empty(self, k: int) -> _State:
        """Nothing to analyse (empty text without a start token): arrays with zero positions."""
        c, L = self.cfg, self.cfg.n_layers
        return _State(
            [],
            None,
            Residuals([np.zeros((L + 1, 0, c.d_model), np.float32)]),
            readonly(np.zeros((0, c.d_model), np.float32)),
            Attention([np.zeros((L, c.n_heads, 0, 0), np.float32)]),
            readonly(np.zeros(0)),
            readonly(np.zeros(0, np.float32)),
            readonly(np.zeros((0, k), np.int64)),
            readonly(np.zeros((0, k), np.float32)),
            readonly(np.zeros(0, np.float32)),
        )

    def _truncate(self, s: _State, p: int) -> _State:
        assert s.backend is not None, "only a computed state (which names its backend) is kept and truncated"
        return _State(
            s.ids[:p],
            s.backend.truncate(s.cache, p),
            s.hidden.truncated(p),
            readonly(s.final_normed[:p]),
            s.attention.truncated(p),
            readonly(s.token_logp[:p]),
            readonly(s.entropy_bits[:p]),
            readonly(s.top_ids[:p]),
            readonly(s.top_probs[:p]),
            readonly(s.lse[:p]),
            s.backend,
        )


def _log_progress(msg: str, frac: float) -> None:
    log.info("%s (%.0f%%)", msg, 100 * frac)


TINY_CONFIG = LlamaConfig(
    n_layers=2,
    d_model=64,
    d_ff=128,
    n_heads=4,
    n_kv_heads=2,
    vocab_size=49152,
    context_length=2048,
    rope_theta=10000.0,
    norm_eps=1e-5,
    name="tiny-random-llama",
)


def demo_engine(cfg: LlamaConfig = TINY_CONFIG, seed: int = 0) -> Engine:
    """A tiny random-weight Llama with the real smollm2 tokenizer: loads in well under a second, for panel
    demos and fast tests. Its numbers are meaningless but shaped exactly like the real model's."""
    from explainer.core.bundled import bundled_model_path
    from explainer.core.llama import random_weights

    return Engine(_weights=(cfg, random_weights(cfg, seed), bundled_model_path(fetch=False)), device="cpu")
