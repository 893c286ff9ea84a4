"""The immutable values that travel from the core to the CLI and to every panel.

Shapes are written ``[axis, axis]``; ``T`` is the number of analysed tokens (the start token included), ``L`` the
number of layers, ``H`` query heads, ``D`` the model width and ``V`` the vocabulary size. Probabilities are in
[0, 1], surprisal in bits, ``sentence_logprob`` in nats (natural log). Arrays are read-only numpy arrays.
"""

from __future__ import annotations

import bisect
import functools
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from explainer.core.residuals import Residuals, compaction_groups, readonly, seal_blocks
from explainer.core.start_token import StartToken

_VISIBLE = {" ": "·", "\n": "⏎", "\t": "→", "\r": "␍"}
START_LABEL = "⟨start⟩"  # the start token the app adds (<|endoftext|>, id 0), as the screen names it


def visible_text(s: str) -> str:
    """Whitespace made visible: · for space, ⏎ for newline, → for tab; other control characters as ␀-style
    symbols or <U+XXXX>."""
    out = []
    for ch in s:
        if ch in _VISIBLE:
            out.append(_VISIBLE[ch])
        elif ord(ch) < 0x20:
            out.append(chr(0x2400 + ord(ch)))  # Unicode "control pictures" block
        elif ord(ch) == 0x7F:
            out.append("␡")
        elif ch.isspace():
            out.append("⎵")
        else:
            out.append(ch)
    return "".join(out)


def _draws_nothing(ch: str) -> bool:
    """A format character (zero-width joiner, …) or a variation selector: no glyph of its own."""
    o = ord(ch)
    return unicodedata.category(ch) == "Cf" or 0xFE00 <= o <= 0xFE0F or 0xE0100 <= o <= 0xE01EF


@dataclass(frozen=True)
class Token:
    """One token of a tokenized text.

    ``start``/``end`` are the character span ``text[start:end]`` that the token's bytes come from: the
    characters containing its first and last byte. A character whose UTF-8 bytes are split over two tokens
    belongs to the spans of both. Special tokens added by the app (the start token) have ``start == end``.
    """

    id: int
    bytes: bytes
    start: int
    end: int
    special: bool = False
    added: bool = False  # inserted by the app (start token), not typed by the user

    @property
    def incomplete(self) -> bool:
        """True when the bytes are not a complete UTF-8 sequence (part of a multi-byte character)."""
        try:
            self.bytes.decode("utf-8")
            return False
        except UnicodeDecodeError:
            return True

    @property
    def text(self) -> str:
        """The token's text; an incomplete UTF-8 piece decodes with U+FFFD (use ``display`` for screens)."""
        return self.bytes.decode("utf-8", errors="replace")

    @property
    def label(self) -> str:
        """The token as every panel names it: ``⟨start⟩`` for the start token the app added, else ``display``."""
        return START_LABEL if self.added else self.display

    @property
    def display(self) -> str:
        """Text for a chip: whitespace made visible; incomplete UTF-8 pieces, and pieces that would draw nothing
        (a lone variation selector or zero-width joiner after an emoji), as their bytes (<E6 97>, <EF B8 8F>);
        a lone combining mark on a dotted circle (◌َ)."""
        return display_bytes(self.bytes)


@functools.lru_cache(maxsize=1 << 16)
def display_bytes(data: bytes) -> str:
    """``Token.display`` of a token with these bytes (remembered: every panel names every token at every
    keystroke, and a vocabulary has a bounded number of pieces)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "<" + " ".join(f"{b:02X}" for b in data) + ">"
    if data and all(_draws_nothing(c) for c in text):
        return "<" + " ".join(f"{b:02X}" for b in data) + ">"
    if data and all(unicodedata.category(c) in ("Mn", "Me") for c in text):
        return "◌" + text
    return visible_text(text)


@dataclass(frozen=True)
class DroppedByte:
    """A byte of the input that has no token in the vocabulary (it is left out, as Hugging Face does)."""

    char_index: int  # index of the character in the text whose UTF-8 encoding contains the byte
    value: int  # 0..255


@dataclass(frozen=True)
class Tokenization:
    text: str
    tokenizer: str  # "smollm2", "cl100k_base", "o200k_base"
    tokens: tuple[Token, ...]
    dropped: tuple[DroppedByte, ...] = ()
    specials_parsed: bool = False  # True when "<|im_end|>" typed in the text became a special token
    # False when max_tokens (or too many bytes without a token) stopped the tokenizer before the end of the text
    # (a paste of thousands of such bytes must not hide the rest of the text without saying so)
    complete: bool = True

    @property
    def ids(self) -> list[int]:
        return [t.id for t in self.tokens]


@dataclass(frozen=True)
class ModelInfo:
    """What the UI and CLI need to know about the loaded model (no tensors)."""

    name: str
    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_model: int
    d_head: int
    d_ff: int
    vocab_size: int
    n_params: int
    context_length: int
    rope_theta: float
    norm_eps: float
    path: str = ""
    arch: str = "llama"  # "llama", "qwen2" or "gpt2"
    positions: str = "rotary"  # "rotary" (RoPE) or "learned" (GPT-2's position table)
    norm: str = "rms"  # "rms" (RMSNorm) or "layer" (LayerNorm)
    mlp: str = "swiglu"  # "swiglu" or "plain" (GPT-2: up, GELU, down)
    tied: bool = True  # the output layer is the input embedding table
    start: StartToken | None = None  # the start-of-text token (None: not known, as in demo results)


class Attention:
    """Attention weights ``[L, H, T, T]`` (query × key), stored as immutable row blocks.

    Each block holds the rows of queries ``[q0, q1)`` against keys ``[0, q1)`` (the causal mask makes every
    later key 0), shape ``[L, H, q1 - q0, q1]``. Results of successive keystrokes share their unchanged blocks,
    so an incremental update adds only the new rows and copies nothing. Read it through the methods.
    """

    __slots__ = ("_blocks", "_starts", "n_tokens", "n_layers", "n_heads")

    def __init__(self, blocks: Sequence[np.ndarray]):
        def misfit(b: np.ndarray, q: int) -> bool:
            return b.ndim != 4 or b.shape[3] != q + b.shape[2]

        self._blocks, self._starts, q = seal_blocks(blocks, 2, misfit, "does not continue the rows before it")
        self.n_tokens = q
        first = blocks[0] if blocks else np.zeros((0, 0, 0, 0), np.float32)
        self.n_layers, self.n_heads = first.shape[0], first.shape[1]

    @property
    def blocks(self) -> tuple[np.ndarray, ...]:
        return self._blocks

    def truncated(self, n_rows: int) -> Attention:
        """The first ``n_rows`` query rows (shares memory)."""
        out = []
        for s, b in zip(self._starts, self._blocks):
            if s >= n_rows:
                break
            k = min(b.shape[2], n_rows - s)
            out.append(b[:, :, :k, : s + k])
        return Attention(out)

    def compacted(self, max_blocks: int = 32, rows_per_block: int = 64) -> Attention:
        """Merge runs of small blocks (left by many one-token updates) into blocks of about
        ``rows_per_block`` rows, so reads stay fast. Returns ``self`` when there are few blocks."""
        if len(self._blocks) <= max_blocks:
            return self
        bs, starts = self._blocks, self._starts

        def merge(group: list[int]) -> np.ndarray:
            if bs[group[0]].shape[2] >= rows_per_block:  # a large block stays; small ones are copied out (a
                return bs[group[0]]  # truncated block is a view that would keep its whole base array alive)
            q0, last = starts[group[0]], group[-1]
            q1 = starts[last] + bs[last].shape[2]
            out = np.zeros(bs[group[0]].shape[:2] + (q1 - q0, q1), bs[group[0]].dtype)
            for i in group:
                b = bs[i]
                out[:, :, starts[i] - q0 : starts[i] - q0 + b.shape[2], : b.shape[3]] = b
            return out

        # float32 rows and float16 rows (engine.FP32_ROWS) stay apart
        groups = compaction_groups([b.shape[2] for b in bs], rows_per_block, lambda a, i: bs[a].dtype == bs[i].dtype)
        return Attention([merge(g) for g in groups])

    def _fill(self, dst: np.ndarray, sel: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        for s, b in zip(self._starts, self._blocks):
            part = sel(b)  # [..., rows, keys]
            dst[..., s : s + part.shape[-2], : part.shape[-1]] = part
        return readonly(dst)

    def head(self, layer: int, head: int) -> np.ndarray:
        """``[T, T]`` float32 for one head."""
        T = self.n_tokens
        return self._fill(np.zeros((T, T), np.float32), lambda b: b[layer, head])

    def layer(self, layer: int) -> np.ndarray:
        """``[H, T, T]`` float32."""
        T = self.n_tokens
        return self._fill(np.zeros((self.n_heads, T, T), np.float32), lambda b: b[layer])

    def full(self) -> np.ndarray:
        """``[L, H, T, T]`` float32 (T² memory: prefer ``head`` / ``layer``)."""
        T = self.n_tokens
        return self._fill(np.zeros((self.n_layers, self.n_heads, T, T), np.float32), lambda b: b)

    def row(self, layer: int, head: int, query: int) -> np.ndarray:
        """``[query + 1]`` weights of one query over keys ``0..query``."""
        return readonly(np.asarray(self.query_rows(query)[layer, head], np.float32))

    def query_rows(self, query: int) -> np.ndarray:
        """``[L, H, query + 1]``: every head's weights of one query over keys ``0..query``, a (read-only) view into
        its row block, in the block's own number type."""
        if not 0 <= query < self.n_tokens:
            raise IndexError(query)
        i = bisect.bisect_right(self._starts, query) - 1  # the last block starting at or before the query
        return self._blocks[i][:, :, query - self._starts[i], : query + 1]

    def nbytes(self) -> int:
        return sum(b.nbytes for b in self._blocks)


class WeightsView:
    """Read-only numpy views of the model's parameters, for core functions that re-derive internals from a
    result (attention walk-through: q, k, v of one layer; logit lens: final norm). Layers are fetched lazily
    (a copy only when the model lives on a GPU).

    ``layer(l)`` gives ``attn_norm [D]``, ``wq [H*hd, D]``, ``wk [Hkv*hd, D]``, ``wv [Hkv*hd, D]``,
    ``wo [D, H*hd]``, ``ffn_norm [D]``, ``w_gate``, ``w_up [F, D]``, ``w_down [D, F]`` (rotate-half q/k layout),
    and where the model has them ``attn_norm_bias``, ``ffn_norm_bias [D]`` (LayerNorm) and ``bq``, ``bk``, ``bv``.
    ``positions`` is "rotary" (q and k rotated by ``rope_theta`` / ``rope_scaling``) or "learned" (a position
    vector was added to the input embedding; nothing rotates).
    """

    def __init__(
        self,
        get_layer: Callable[[int], dict],
        final_norm: np.ndarray,
        norm_eps: float,
        rope_theta: float,
        *,
        final_norm_bias: np.ndarray | None = None,
        positions: str = "rotary",
        rope_scaling: tuple = (),
    ):
        self._get_layer = get_layer
        self._layers: dict[int, dict] = {}
        self.final_norm = readonly(final_norm)
        self.final_norm_bias = None if final_norm_bias is None else readonly(final_norm_bias)
        self.norm_eps = norm_eps
        self.rope_theta = rope_theta
        self.positions = positions
        self.rope_scaling = rope_scaling

    def layer(self, index: int) -> dict:
        if index not in self._layers:
            self._layers[index] = {k: readonly(v) for k, v in self._get_layer(index).items()}
        return self._layers[index]


@dataclass(frozen=True)
class AnalysisResult:
    """Everything the panels show for one text. Built by ``core.analysis``; never modified.

    Position ``i`` is the i-th analysed token (``tokens[0]`` is the start token when ``start_token``).
    - ``token_prob[i]``: P(token i | tokens before it); NaN for i = 0.
    - ``surprisal_bits[i]`` = −log2 ``token_prob[i]``; NaN for i = 0.
    - ``top_ids[i]``, ``top_probs[i]``: the K most likely tokens to *follow* position i, best first.
    - ``entropy_bits[i]``: entropy of the distribution that follows position i.
    - ``hidden[0]`` the input embeddings, ``hidden[l]`` the residual stream after layer l: ``[L+1, T, D]``
      (``core.residuals.Residuals``: indexed like the array, ``np.asarray`` for the whole of it).
    - ``final_normed``: the last residual after the final RMSNorm, ``[T, D]``; logits = final_normed @ Eᵀ.
    """

    text: str
    model: ModelInfo
    device: str
    backend: str
    tokenizer: str
    tokens: tuple[Token, ...]
    ids: np.ndarray  # [T] int64
    start_token: bool
    truncated: bool
    dropped: tuple[DroppedByte, ...]
    specials_parsed: bool
    token_prob: np.ndarray  # [T] float32
    surprisal_bits: np.ndarray  # [T] float32
    entropy_bits: np.ndarray  # [T] float32
    top_ids: np.ndarray  # [T, K] int64
    top_probs: np.ndarray  # [T, K] float32
    sentence_logprob: float  # Σ ln token_prob over positions that have one (nats)
    hidden: Residuals  # [L+1, T, D] float32
    final_normed: np.ndarray  # [T, D] float32
    attention: Attention
    unembedding: np.ndarray = field(repr=False)  # [V, D] float32, shared read-only view of the model's table
    weights: WeightsView | None = field(default=None, repr=False, compare=False)  # the model's parameters
    latency_ms: float = 0.0
    generation: int = 0  # request number; the runtime drops stale results
    ablated: tuple[tuple[int, int], ...] = ()  # heads (layer, head), 0-based, knocked out for every number here

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    @property
    def sentence_log10(self) -> float:
        return self.sentence_logprob / np.log(10.0)

    @property
    def sentence_bits(self) -> float:
        """−log2 P(text): the total surprisal in bits."""
        return -self.sentence_logprob / np.log(2.0)

    def logits_at(self, position: int) -> np.ndarray:
        """``[V]`` float32 logits of the token that follows ``position``."""
        return self.unembedding @ self.final_normed[position]

    def distribution(self, position: int, temperature: float = 1.0) -> np.ndarray:
        """``[V]`` float64 probabilities of the next token after ``position`` at a temperature (> 0)."""
        from explainer.core.numerics import softmax

        return softmax(self.logits_at(position), temperature=temperature)
