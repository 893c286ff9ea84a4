"""Head roles: how much each attention head behaves like a previous-token, induction, first-token (sink) or
duplicate-token head, as scores in [0, 1] per (layer, head).

One scoring function serves both uses:
- **live**, on the current text (``scores_from_result``): the roles that need repeated tokens are defined only
  where tokens repeat, and are NaN otherwise;
- **reference test** (``reference_scores``): the standard induction test. A random sequence of ordinary-word
  tokens (no token twice) is written twice after the start token, ``[start, t1..tN, t1..tN]``; in the second
  copy every token has exactly one earlier occurrence, and the token *after* that occurrence is what an
  induction head ("A B … A → look at B") attends to. Scores are averaged over several seeds' sequences.

Definitions, for attention weights ``A[query, key]`` (rows sum to 1 over keys 0..query):
- previous-token: mean over queries q ≥ 2 of ``A[q, q-1]`` (q = 1 is left out: its previous token is the
  first token, which would count the sink);
- first-token (sink): mean over queries q ≥ 1 of ``A[q, 0]``;
- duplicate-token: for each query whose token occurred earlier, the total weight on those earlier
  occurrences; mean over such queries;
- induction: for each query whose token occurred earlier at p (with p + 1 < q), the total weight on the
  tokens that followed those occurrences (keys p + 1); mean over such queries.
Each is a sum of attention weights over distinct keys, so it lies in [0, 1].

No Qt here. ``add_arguments`` registers the ``explainer heads`` subcommand.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explainer.core.types import Attention

log = logging.getLogger(__name__)

ROLES = ("induction", "previous_token", "first_token", "duplicate_token")
ROLE_LABELS = {
    "induction": "Induction",
    "previous_token": "Previous token",
    "first_token": "First token (sink)",
    "duplicate_token": "Duplicate token",
}
ROLE_HELP = {
    "induction": "after seeing “A B … A”, looks at B: the token that followed the earlier copy of the current "
    "token (copies a pattern)",
    "previous_token": "looks at the token just before the current one",
    "first_token": "puts its weight on the first token (an “attention sink”: a place to park attention when "
    "nothing else is relevant)",
    "duplicate_token": "looks at earlier copies of the current token",
}
WORD_ID_RANGE = (1000, 10000)  # ordinary-word token ids for the reference sequences (" [a-z]{3,}" tokens)
_WORD = re.compile(rb"^ [a-z]{3,}$")
DEFAULT_SEED, DEFAULT_LENGTH, DEFAULT_SEEDS = 0, 50, 3
MAX_SEEDS = 100  # (each seed is one pass; the scores' spread over seeds is small long before this)
CACHE_VERSION = 3


def method_text(seed: int = DEFAULT_SEED, length: int = DEFAULT_LENGTH, n_seeds: int = DEFAULT_SEEDS) -> str:
    seeds = ", ".join(str(seed + i) for i in range(n_seeds))
    return (
        f"Reference test: for each of {n_seeds} random seeds ({seeds}), {length} distinct random tokens are drawn "
        f"from ordinary-word tokens (ids {WORD_ID_RANGE[0]}-{WORD_ID_RANGE[1] - 1} that are a space plus 3 or more "
        f"lower-case letters) and written twice after the start token (id 0): [start, t1..t{length}, "
        f"t1..t{length}], {2 * length + 1} tokens. Scores are attention weights A[query, key] averaged over "
        "queries, then over the seeds: previous_token = mean A[q, q-1] over q >= 2; first_token = mean A[q, 0] "
        "over q >= 1; duplicate_token = mean A[q, q-N] over the second copy (weight on the earlier occurrence "
        "of the same token); induction = mean A[q, q-N+1] over the second copy (weight on the token that "
        "followed the earlier occurrence). Arrays are [layer][head], counted from 0 (the app labels them from 1)."
    )


@dataclass(frozen=True)
class HeadScores:
    """Scores ``[L, H]`` per role (NaN where the role is undefined on this text) and how many queries each
    score averages (``counts[role]``, 0 when undefined)."""

    induction: np.ndarray
    previous_token: np.ndarray
    first_token: np.ndarray
    duplicate_token: np.ndarray
    counts: dict = field(default_factory=dict)
    method: str = ""
    per_seed: tuple = ()  # reference test: one HeadScores per seed
    seeds: tuple = ()  # reference test: the seeds averaged
    length: int = 0  # reference test: random tokens per copy

    @classmethod
    def from_roles(cls, roles: Mapping[str, np.ndarray], **rest: Any) -> HeadScores:
        """The scores of each name in ``ROLES`` taken from ``roles``; ``rest``: the other fields."""
        return cls(roles["induction"], roles["previous_token"], roles["first_token"], roles["duplicate_token"], **rest)

    def role(self, name: str) -> np.ndarray:
        if name not in ROLES:
            raise KeyError(name)
        return getattr(self, name)

    @property
    def shape(self) -> tuple[int, int]:
        return self.induction.shape

    def top(self, name: str, k: int = 5) -> list[tuple[int, int, float]]:
        """The ``k`` highest-scoring heads for a role, best first, as ``(layer, head, score)`` (0-based)."""
        s = self.role(name)
        flat = np.where(np.isnan(s), -np.inf, s).ravel()
        order = np.argsort(-flat, kind="stable")[:k]
        H = s.shape[1]
        return [(int(i // H), int(i % H), float(s.flat[i])) for i in order if np.isfinite(flat[i])]

    def to_json(self) -> dict:
        def clean(a):
            return [[None if np.isnan(x) else round(float(x), 6) for x in row] for row in a]

        out = {name: clean(self.role(name)) for name in ROLES}
        out["method"] = self.method
        return out


# --- scoring ---------------------------------------------------------------------------------------------------
def _pairs(ids: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(query, key) index pairs each role sums over; the query array repeats a query for several keys."""
    ids = np.asarray(ids).ravel()
    T = ids.size
    q_prev = np.arange(2, T)
    q_first = np.arange(1, T)
    dq, dk, iq, ik = [], [], [], []
    seen: dict[int, list[int]] = {}
    for q in range(T):
        earlier = seen.setdefault(int(ids[q]), [])
        for p in earlier:
            dq.append(q)
            dk.append(p)
            if p + 1 < q:
                iq.append(q)
                ik.append(p + 1)
        earlier.append(q)
    arr = lambda x: np.asarray(x, np.int64)  # noqa: E731
    return {
        "previous_token": (q_prev, q_prev - 1),
        "first_token": (q_first, np.zeros_like(q_first)),
        "duplicate_token": (arr(dq), arr(dk)),
        "induction": (arr(iq), arr(ik)),
    }


def _gather(attention: Attention, qs: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """``[L, H, n]``: ``A[:, :, qs[i], ks[i]]`` read straight from the row blocks (no T×T copy)."""
    out = np.zeros((attention.n_layers, attention.n_heads, qs.size), np.float64)
    starts = np.cumsum([0] + [b.shape[2] for b in attention.blocks])
    for s, b in zip(starts[:-1], attention.blocks):
        sel = np.nonzero((qs >= s) & (qs < s + b.shape[2]))[0]
        if sel.size:
            out[:, :, sel] = b[:, :, qs[sel] - s, ks[sel]]
    return out


def score_attention(attention, ids, method: str = "") -> HeadScores:
    """Role scores for one sequence. ``attention``: an ``Attention`` or an array ``[L, H, T, T]``; ``ids``: the
    ``T`` token ids (repeats define the duplicate / induction roles)."""
    if not isinstance(attention, Attention):
        a = np.asarray(attention, np.float32)
        if a.ndim != 4 or a.shape[2] != a.shape[3]:
            raise ValueError(f"attention must be [L, H, T, T], got {a.shape}")
        attention = Attention([a.copy()])
    if attention.n_tokens != np.asarray(ids).size:
        raise ValueError(f"{np.asarray(ids).size} ids for {attention.n_tokens} attention rows")
    L, H = attention.n_layers, attention.n_heads
    scores, counts = {}, {}
    for name, (qs, ks) in _pairs(ids).items():
        uq, inverse = np.unique(qs, return_inverse=True)
        counts[name] = int(uq.size)
        if uq.size == 0:
            scores[name] = np.full((L, H), np.nan, np.float32)
            continue
        vals = _gather(attention, qs, ks)  # [L, H, pairs]
        per_query = _sum_by(vals, inverse.ravel(), uq.size)  # [L, H, queries]: weight on the role's keys
        scores[name] = np.clip(per_query.mean(-1), 0.0, 1.0).astype(np.float32)
    return HeadScores.from_roles(scores, counts=counts, method=method)


def _sum_by(vals: np.ndarray, groups: np.ndarray, n: int) -> np.ndarray:
    """Sum ``vals[..., i]`` into ``out[..., groups[i]]``."""
    order = np.argsort(groups, kind="stable")
    g = groups[order]
    starts = np.r_[0, np.nonzero(np.diff(g))[0] + 1]
    out = np.zeros(vals.shape[:-1] + (n,), np.float64)
    out[..., g[starts]] = np.add.reduceat(vals[..., order], starts, axis=-1)
    return out


def scores_from_result(result) -> HeadScores:
    """Live scores on the text of an ``AnalysisResult`` (induction / duplicate-token only where tokens repeat)."""
    return score_attention(
        result.attention,
        result.ids,
        method=(
            "Live on this text: previous_token = mean A[q, q-1] (q >= 2); first_token = mean A[q, 0] (q >= 1); "
            "duplicate_token = weight on earlier copies of the query's token; induction = weight on the tokens "
            "that followed those copies; the last two only where tokens repeat."
        ),
    )


# --- the reference test ----------------------------------------------------------------------------------------
def word_pool(tokenizer=None, vocab_size: int = 49152) -> np.ndarray:
    """Token ids for the reference sequences: ids in ``WORD_ID_RANGE`` whose bytes are a space and ≥ 3 lower-case
    letters; without a tokenizer (or too few such tokens), every id in the range."""
    lo, hi = WORD_ID_RANGE[0], min(WORD_ID_RANGE[1], vocab_size)
    if tokenizer is not None:
        ids = [i for i in range(lo, hi) if _WORD.match(tokenizer.token_bytes(i))]
        if len(ids) >= 4 * DEFAULT_LENGTH:
            return np.asarray(ids, np.int64)
    return np.arange(min(lo, max(0, vocab_size - 2 * DEFAULT_LENGTH)), hi, dtype=np.int64)


def repeated_sequence(pool: np.ndarray, seed: int, length: int, start_id: int | None = 0) -> np.ndarray:
    """``[start, t1..tN, t1..tN]``: ``N`` distinct random tokens from ``pool``, written twice (no start token when
    ``start_id`` is None)."""
    if length < 2:
        from explainer.core.errors import UserError

        raise UserError("--length must be at least 2.")
    if length > pool.size:
        from explainer.core.errors import UserError

        raise UserError(f"--length can be at most {pool.size} (the number of distinct word tokens).")
    rng = np.random.default_rng(seed)
    seq = rng.choice(pool, size=length, replace=False)
    return np.concatenate([[] if start_id is None else [start_id], seq, seq]).astype(np.int64)


def attention_for_ids(engine, ids: np.ndarray) -> Attention:
    """Run the engine's model on raw token ids (no tokenizer, no incremental state): ``[L, H, T, T]``.

    It does not touch ``engine.analyze``'s state."""
    return engine.attention_for_ids(ids)


def reference_scores(
    engine, seed: int = DEFAULT_SEED, length: int = DEFAULT_LENGTH, n_seeds: int = DEFAULT_SEEDS
) -> HeadScores:
    """The reference test on ``engine``'s model, averaged over seeds ``seed .. seed + n_seeds - 1``."""
    pool = word_pool(getattr(engine, "tokenizer", None), engine.info.vocab_size)
    info = engine.info
    start = info.start.id if info.start is not None else 0  # the model's own start-of-text token
    if info.positions == "learned":  # a position table ends: the sequence must fit in it
        length = max(2, min(length, (info.context_length - 1) // 2))
    runs = []
    for s in range(seed, seed + n_seeds):
        ids = repeated_sequence(pool, s, length, start)
        runs.append(score_attention(attention_for_ids(engine, ids), ids, method=f"seed {s}"))
    mean = {name: np.mean([r.role(name) for r in runs], axis=0).astype(np.float32) for name in ROLES}
    counts = {name: sum(r.counts[name] for r in runs) for name in ROLES}
    return HeadScores.from_roles(
        mean,
        counts=counts,
        method=method_text(seed, length, n_seeds),
        per_seed=tuple(runs),
        seeds=tuple(range(seed, seed + n_seeds)),
        length=length,
    )


def _model_key(engine) -> str:
    info, table = engine.info, engine.embedding_table
    h = hashlib.sha1(f"{info.name}|{info.n_layers}|{info.n_heads}|{info.d_model}|{info.vocab_size}".encode())
    h.update(np.ascontiguousarray(table[:: max(1, table.shape[0] // 64)]).tobytes())
    h.update(np.ascontiguousarray(engine.weights.layer(0)["wq"][:4]).tobytes())
    return h.hexdigest()[:16]


def cached_reference_scores(
    engine, seed: int = DEFAULT_SEED, length: int = DEFAULT_LENGTH, n_seeds: int = DEFAULT_SEEDS, use_cache: bool = True
) -> HeadScores:
    """``reference_scores`` with a small JSON cache in ``paths.cache_dir()`` (keyed by the model's weights)."""
    from explainer.core import paths

    path = None
    if use_cache:
        try:
            path = paths.cache_dir() / f"heads-v{CACHE_VERSION}-{_model_key(engine)}-{seed}-{length}-{n_seeds}.json"
            data = json.loads(paths.read_regular_text(path))
            if data.pop("sha256", None) != paths.json_digest(data):
                raise ValueError("its checksum does not match (damaged)")
            return HeadScores.from_roles(
                {n: np.asarray(data[n], np.float32) for n in ROLES},
                counts=data["counts"],
                method=data["method"],
                seeds=tuple(data["seeds"]),
                length=int(data["length"]),
            )
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("ignoring the head-score cache %s: %s", path, e)
    scores = reference_scores(engine, seed, length, n_seeds)
    if path is not None:
        try:
            data = {n: scores.role(n).tolist() for n in ROLES} | {
                "counts": scores.counts,
                "method": scores.method,
                "seeds": list(scores.seeds),
                "length": length,
            }
            data = json.loads(json.dumps(data))  # as it reads back (the checksum is of that)
            paths.atomic_write(path, json.dumps({**data, "sha256": paths.json_digest(data)}).encode("utf-8"))
        except OSError as e:
            log.warning("could not write the head-score cache %s: %s", path, e)
    return scores


# --- command line ------------------------------------------------------------------------------------------------
def add_arguments(parser) -> None:
    """score every attention head's role (induction, previous-token, first-token, duplicate-token) with the
    standard repeated-random-tokens test"""
    parser.description = "Score every attention head's role. " + method_text()
    parser.add_argument("--json", action="store_true", help="print the scores as one JSON object")
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        metavar="S",
        help=f"first random seed (default {DEFAULT_SEED}); seeds S, S+1, … are averaged (see --seeds)",
    )
    parser.add_argument(
        "--length",
        type=int,
        default=DEFAULT_LENGTH,
        metavar="N",
        help=f"random tokens per copy (default {DEFAULT_LENGTH}); the sequence has 2N+1 tokens",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=DEFAULT_SEEDS,
        metavar="K",
        help=f"how many seeds to average (default {DEFAULT_SEEDS}, at most {MAX_SEEDS})",
    )
    parser.set_defaults(handler=_cmd_heads)


def _cmd_heads(args) -> int:
    from explainer.core import work_memory
    from explainer.core.engine import Engine
    from explainer.core.errors import UserError

    if not 1 <= args.seeds <= MAX_SEEDS:
        raise UserError(f"--seeds must be between 1 and {MAX_SEEDS}.")
    if args.seed < 0:
        raise UserError("--seed must be 0 or more.")
    if args.length < 2:
        raise UserError("--length must be at least 2.")
    engine = Engine(args.model, device=args.device)
    if 2 * args.length + 1 > engine.info.context_length:
        raise UserError(f"--length can be at most {(engine.info.context_length - 1) // 2} for this model.")
    work_memory.require(
        work_memory.HEAD_SCORES * work_memory.attention_weights(engine.info, 2 * args.length + 1),
        f"The test with --length {args.length} ({2 * args.length + 1} tokens)",
        "use a smaller --length",
    )
    scores = reference_scores(engine, args.seed, args.length, args.seeds)
    if args.json:
        import sys

        sys.stdout.write(json.dumps(scores.to_json()) + "\n")
        return 0
    print(f"{engine.info.name}: head roles, top 5 per role (layer and head counted from 1)")
    for name in ROLES:
        tops = ", ".join(f"L{lay + 1} H{h + 1} {s:.2f}" for lay, h, s in scores.top(name, 5))
        med = float(np.nanmedian(scores.role(name)))
        print(f"  {ROLE_LABELS[name]:<20} {tops}   (median {med:.2f})")
    print(scores.method)
    return 0
