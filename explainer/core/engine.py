"""The engine: one model + its tokenizer, and ``analyze(text) -> AnalysisResult``.

Analysis is incremental: the engine keeps the previous request's keys/values, hidden states, attention rows
and next-token statistics; a new text is tokenized, the first changed token found, and only the positions from
there on are computed. Because the model is causal, the result equals a full recompute.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from explainer.core.gguf_loader import LlamaConfig, load_weights
from explainer.core.llama import KVCache, Llama, build_model, random_weights
from explainer.core.types import AnalysisResult, Attention, ModelInfo, Token, WeightsView, readonly

log = logging.getLogger(__name__)
START_TOKEN_ID = 0  # <|endoftext|>, used as "start of text"
DEFAULT_MAX_TOKENS = 1024
LN2 = math.log(2.0)


def pick_device(device: str = "auto") -> str:
    if device in ("auto", None, ""):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        from explainer.core.errors import UserError

        raise UserError("--device cuda was asked for, but no usable CUDA GPU was found; use --device cpu.")
    if device not in ("cpu", "cuda"):
        from explainer.core.errors import UserError

        raise UserError(f"Unknown device '{device}'; use cpu, cuda or auto.")
    return device


def device_label(device: str) -> str:
    if device.startswith("cuda"):
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return "cpu"


@dataclass
class _State:
    """What the previous request left behind, for incremental updates. Rows are positions."""

    ids: list[int]
    cache: KVCache
    hidden: np.ndarray  # [L+1, T, D]
    final_normed: np.ndarray  # [T, D]
    attention: Attention
    token_logp: np.ndarray  # [T] float64, NaN at 0
    entropy_bits: np.ndarray  # [T]
    top_ids: np.ndarray  # [T, K]
    top_probs: np.ndarray  # [T, K]


class Engine:
    def __init__(self, model_path: str | Path | None = None, *, device: str = "auto", backend: str = "torch",
                 progress: Callable[[str, float], None] | None = None, _weights=None):
        from explainer.core.tokenizers import get_tokenizer

        t0 = time.perf_counter()
        self.device_kind = pick_device(device)
        if _weights is not None:  # (cfg, weights, path) for tests and the demo
            cfg, weights, path = _weights
        else:
            if model_path is None:
                from explainer.core.bundled import bundled_model_path
                from explainer.core.paths import Manifest

                path = bundled_model_path(progress)
                manifest = Manifest.load()
                cfg, weights, _ = load_weights(path, progress or _log_progress, manifest.sha256)
                cfg = dataclasses.replace(cfg, name=manifest.display_name)
            else:
                path = Path(model_path).expanduser()
                cfg, weights, _ = load_weights(path, progress or _log_progress)
        self.tokenizer = get_tokenizer("smollm2", gguf_path=path)
        if self.tokenizer.vocab_size > cfg.vocab_size:
            from explainer.core.errors import ModelFileError

            raise ModelFileError(f"{Path(path).name} has a tokenizer larger than its embedding table; the file is inconsistent.")
        self.model: Llama = build_model(cfg, weights, self.device_kind)
        self.cfg: LlamaConfig = cfg
        self.backend = backend
        self.device = device_label(self.device_kind)
        n_params = sum(p.numel() for p in self.model.parameters()) + (
            self.model.lm_head.numel() if self.model.lm_head is not None else 0)
        self.info = ModelInfo(
            name=cfg.name, n_layers=cfg.n_layers, n_heads=cfg.n_heads, n_kv_heads=cfg.n_kv_heads,
            d_model=cfg.d_model, d_head=cfg.d_head, d_ff=cfg.d_ff, vocab_size=cfg.vocab_size, n_params=n_params,
            context_length=cfg.context_length, rope_theta=cfg.rope_theta, norm_eps=cfg.norm_eps, path=str(path))
        self.embedding_table = readonly(self.model.embed.weight.detach().cpu().numpy())
        self.unembedding = (self.embedding_table if self.model.lm_head is None
                            else readonly(self.model.lm_head.detach().cpu().numpy()))
        self.weights = self._weights_view()
        self._state: _State | None = None
        self._state_k = 0
        self.load_seconds = time.perf_counter() - t0

    # ------------------------------------------------------------------------------------------------------
    def tokens_for(self, text: str, *, start_token: bool, max_tokens: int, parse_specials: bool):
        """Tokenize and cut at ``max_tokens`` analysed tokens (start token included)."""
        budget = max(1, max_tokens - (1 if start_token else 0))
        tok = self.tokenizer.tokenize(text, parse_specials=parse_specials, max_tokens=budget + 1)
        truncated = len(tok.tokens) > budget
        tokens = list(tok.tokens[:budget])
        if start_token:
            tokens.insert(0, Token(START_TOKEN_ID, self.tokenizer.token_bytes(START_TOKEN_ID), 0, 0, True, True))
        return tok, tuple(tokens), truncated

    def analyze(self, text: str, *, start_token: bool = True, max_tokens: int = DEFAULT_MAX_TOKENS,
                parse_specials: bool = False, top_k: int = 64, generation: int = 0,
                incremental: bool = True) -> AnalysisResult:
        t0 = time.perf_counter()
        tok, tokens, truncated = self.tokens_for(text, start_token=start_token, max_tokens=max_tokens,
                                                 parse_specials=parse_specials)
        ids = [t.id for t in tokens]
        state = self._update(ids, top_k if incremental else None, top_k) if ids else self._empty(top_k)
        token_prob = np.exp(state.token_logp).astype(np.float32)
        surprisal = (-state.token_logp / LN2).astype(np.float32)
        logp = state.token_logp[1:]
        result = AnalysisResult(
            text=text, model=self.info, device=self.device, backend=self.backend, tokenizer="smollm2",
            tokens=tokens, ids=readonly(np.asarray(ids, np.int64)), start_token=start_token, truncated=truncated,
            dropped=tok.dropped, specials_parsed=tok.specials_parsed,
            token_prob=readonly(token_prob), surprisal_bits=readonly(surprisal),
            entropy_bits=state.entropy_bits, top_ids=state.top_ids, top_probs=state.top_probs,
            sentence_logprob=float(np.sum(logp)) if len(logp) else 0.0,
            hidden=state.hidden, final_normed=state.final_normed, attention=state.attention,
            unembedding=self.unembedding, weights=self.weights, latency_ms=(time.perf_counter() - t0) * 1000.0, generation=generation)
        return result

    def _weights_view(self) -> WeightsView:
        names = {"attn_norm": "attn_norm", "ffn_norm": "ffn_norm", "wq": "attn.wq", "wk": "attn.wk",
                 "wv": "attn.wv", "wo": "attn.wo", "w_gate": "mlp.w_gate", "w_up": "mlp.w_up",
                 "w_down": "mlp.w_down"}

        def get_layer(i: int) -> dict:
            block = self.model.layers[i]
            return {k: block.get_submodule(v).weight.detach().cpu().numpy() for k, v in names.items()}

        return WeightsView(get_layer, self.model.norm.weight.detach().cpu().numpy(), self.cfg.norm_eps,
                           self.cfg.rope_theta)

    def reset(self) -> None:
        """Forget the incremental state (the next analyze recomputes everything)."""
        self._state = None

    # ------------------------------------------------------------------------------------------------------
    def _update(self, ids: list[int], incremental_k: int | None, top_k: int) -> _State:
        old = self._state if (incremental_k is not None and self._state_k == top_k) else None
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
        T = len(ids)
        cache = old.cache.truncated(p) if (old is not None and p > 0) else None
        new_ids = torch.tensor(ids[p:], dtype=torch.long, device=self.device_kind)
        out = self.model(new_ids, cache)
        new_hidden = torch.stack([out.embeddings] + out.hidden).float().cpu().numpy()  # [L+1, T-p, D]
        new_normed = out.final_normed.float().cpu().numpy()
        block = torch.stack(out.attention).float().cpu().numpy()  # [L, H, T-p, T]
        if old is not None and p > 0:
            hidden = np.concatenate([old.hidden[:, :p], new_hidden], axis=1)
            final_normed = np.concatenate([old.final_normed[:p], new_normed], axis=0)
            attention = old.attention.truncated(p).extended(block).compacted()
        else:
            hidden, final_normed, attention = new_hidden, new_normed, Attention([block])
        # next-token statistics for rows r0..T-1 (row p-1 is needed again: the token after it changed)
        r0 = max(p - 1, 0)
        normed_rows = out.final_normed if r0 == p else torch.cat(
            [torch.from_numpy(final_normed[r0:p]).to(self.device_kind), out.final_normed])
        logp_rows, ent, top_i, top_p = self._next_token_stats(normed_rows, ids, r0, top_k)
        token_logp = np.empty(T, np.float64)
        entropy = np.empty(T, np.float32)
        tops_i = np.empty((T, top_k), np.int64)
        tops_p = np.empty((T, top_k), np.float32)
        if old is not None and r0 > 0:
            token_logp[: r0 + 1] = old.token_logp[: r0 + 1]
            entropy[:r0] = old.entropy_bits[:r0]
            tops_i[:r0] = old.top_ids[:r0]
            tops_p[:r0] = old.top_probs[:r0]
        token_logp[0] = np.nan
        token_logp[r0 + 1:] = logp_rows
        entropy[r0:], tops_i[r0:], tops_p[r0:] = ent, top_i, top_p
        self._state = _State(ids, out.cache, readonly(hidden), readonly(final_normed), attention,
                             readonly(token_logp), readonly(entropy), readonly(tops_i), readonly(tops_p))
        self._state_k = top_k
        return self._state

    def _empty(self, k: int) -> _State:
        """Nothing to analyse (empty text without a start token): arrays with zero positions."""
        c, L = self.cfg, self.cfg.n_layers
        return _State([], KVCache(), readonly(np.zeros((L + 1, 0, c.d_model), np.float32)),
                      readonly(np.zeros((0, c.d_model), np.float32)),
                      Attention([np.zeros((L, c.n_heads, 0, 0), np.float32)]), readonly(np.zeros(0)),
                      readonly(np.zeros(0, np.float32)), readonly(np.zeros((0, k), np.int64)),
                      readonly(np.zeros((0, k), np.float32)))

    def _truncate(self, s: _State, p: int) -> _State:
        logp = s.token_logp[:p]
        return _State(s.ids[:p], s.cache.truncated(p), readonly(s.hidden[:, :p]), readonly(s.final_normed[:p]),
                      s.attention.truncated(p), readonly(logp), readonly(s.entropy_bits[:p]),
                      readonly(s.top_ids[:p]), readonly(s.top_probs[:p]))

    @torch.inference_mode()
    def _next_token_stats(self, normed: torch.Tensor, ids: list[int], r0: int, k: int, chunk: int = 64):
        """For rows r0.. of the sequence: log P(actual next token), entropy (bits), top-k ids and probs."""
        n = normed.shape[0]
        logp_next = np.empty(max(0, len(ids) - 1 - r0), np.float64)
        ent = np.empty(n, np.float32)
        top_i = np.empty((n, k), np.int64)
        top_p = np.empty((n, k), np.float32)
        W = self.model.unembedding
        for a in range(0, n, chunk):
            b = min(n, a + chunk)
            logits = (normed[a:b] @ W.T).float()  # [rows, V]
            logp = torch.log_softmax(logits, dim=-1)
            probs = logp.exp()
            ent[a:b] = (-(probs * logp).sum(-1) / LN2).cpu().numpy()
            tp, ti = torch.topk(probs, k, dim=-1)
            top_i[a:b], top_p[a:b] = ti.cpu().numpy(), tp.cpu().numpy()
            # next actual token for sequence row r = r0 + a + j is ids[r + 1]
            rows = torch.arange(a, b, device=logp.device)
            nxt = rows + r0 + 1
            valid = nxt < len(ids)
            if valid.any():
                nid = torch.tensor([ids[i] for i in nxt[valid].tolist()], device=logp.device)
                vals = logp[rows[valid] - a, nid]
                logp_next[rows[valid].cpu().numpy()] = vals.double().cpu().numpy()
        return logp_next, ent, top_i, top_p


def _log_progress(msg: str, frac: float) -> None:
    log.info("%s (%.0f%%)", msg, 100 * frac)


TINY_CONFIG = LlamaConfig(n_layers=2, d_model=64, d_ff=128, n_heads=4, n_kv_heads=2, vocab_size=49152,
                          context_length=2048, rope_theta=10000.0, norm_eps=1e-5, name="tiny-random-llama")


def demo_engine(cfg: LlamaConfig = TINY_CONFIG, seed: int = 0) -> Engine:
    """A tiny random-weight Llama with the real smollm2 tokenizer: loads in well under a second, for panel
    demos and fast tests. Its numbers are meaningless but shaped exactly like the real model's."""
    from explainer.core.bundled import bundled_model_path

    return Engine(_weights=(cfg, random_weights(cfg, seed), bundled_model_path(fetch=False)), device="cpu")
