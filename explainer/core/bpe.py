"""Byte-level BPE: GPT-2's byte table, reading vocabularies (GGUF, tiktoken files), and teaching views.

Teaching views: a step-by-step replay of the merges, a byte inspector and the tokenizations of a word's
spelling variants. The replay follows tiktoken's rule (which gives the same ids as the tokenizer): within each
pre-tokenized piece, start from single bytes and repeatedly merge the adjacent pair whose joined bytes have the
lowest rank; on a tie the leftmost pair wins; stop when no adjacent pair joins into a token. A rank is the
token's id.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ModelFileError, TokenizerError
from .paths import cache_dir, json_digest, read_regular_text
from .types import Tokenization

if TYPE_CHECKING:
    from .tokenizers import Tokenizer

_GGUF_CONTROL = 3  # llama.cpp token type of control (special) tokens
_CACHE_FORMAT = 2


# -- GPT-2's byte table ----------------------------------------------------------------------------------------
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte → printable character table: printable Latin-1 bytes stand for themselves, the other 68
    byte values take the code points 256, 257, … in byte order."""
    keep = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    table, extra = {}, 256
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(extra)
            extra += 1
    return table


def unicode_to_bytes() -> dict[str, int]:
    return {c: b for b, c in bytes_to_unicode().items()}


# -- vocabulary files ------------------------------------------------------------------------------------------
def load_tiktoken_data(path: Path, sha256: str | None = None) -> dict[bytes, int]:
    """Read a (gzip'd) tiktoken-format file: one ``base64(token) rank`` per line."""
    try:
        raw = path.read_bytes()
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError("checksum mismatch")
        ranks = {}
        for line in data.splitlines():
            if line:
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
        return ranks
    except (OSError, ValueError, EOFError) as e:
        raise TokenizerError(f"The tokenizer data file {path} is damaged or unreadable ({e}).") from None


def gguf_vocab(path: Path) -> tuple[dict[bytes, int], dict[str, int]]:
    """The ordinary tokens (bytes → id) and special tokens (text → id) of a GGUF's byte-level vocabulary.

    Reading a GGUF takes seconds, so the result is cached in the cache folder, keyed by the file's path, size
    and modification time."""
    try:
        st = path.stat()
    except OSError as e:
        raise ModelFileError(f"The model file {path} cannot be opened ({e.strerror or e}).") from None
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    cache_file = None
    try:
        cache_file = cache_dir() / f"vocab-{hashlib.sha256(key.encode()).hexdigest()[:20]}.json"
        cached = _read_vocab_cache(cache_file, key)
        if cached is not None:
            return cached
    except OSError:
        cache_file = None  # no usable cache folder: work without it
    ranks, specials = read_gguf_vocab(path)
    if cache_file is not None:
        _write_vocab_cache(cache_file, key, ranks, specials)
    return ranks, specials


def _read_vocab_cache(path: Path, key: str):
    try:
        data = json.loads(read_regular_text(path))
        if data.get("format") != _CACHE_FORMAT or data.get("key") != key:
            return None
        if data.get("sha256") != json_digest([data["tokens"], data["specials"]]):
            return None  # damaged: a changed byte would change the tokens without a word
        ranks = {base64.b64decode(t, validate=True): int(i) for t, i in data["tokens"]}
        specials = {str(s): int(i) for s, i in data["specials"].items()}
        if len(ranks) != len(data["tokens"]) or not ranks:
            return None
        return ranks, specials
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # corrupt: rebuilt and overwritten


def _write_vocab_cache(path: Path, key: str, ranks: dict[bytes, int], specials: dict[str, int]) -> None:
    tokens = [[base64.b64encode(b).decode("ascii"), i] for b, i in ranks.items()]
    payload = {
        "format": _CACHE_FORMAT,
        "key": key,
        "sha256": json_digest([tokens, specials]),
        "tokens": tokens,
        "specials": specials,
    }
    from explainer.core.paths import atomic_write

    try:
        atomic_write(path, json.dumps(payload, separators=(",", ":")).encode("utf-8"))
    except OSError as e:  # the cache is only a speed-up: say so, and go on without it
        logging.getLogger(__name__).warning("could not write the vocabulary cache %s: %s", path, e)


def read_gguf_vocab(path: Path) -> tuple[dict[bytes, int], dict[str, int]]:
    """Read the vocabulary out of a GGUF file (slow: seconds); see ``gguf_vocab``."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(path), "r")
    except Exception as e:  # noqa: BLE001 - the reader raises ValueError, struct errors, IndexError… on foreign files
        raise ModelFileError(f"The file {path} is not a readable GGUF model file ({type(e).__name__}: {e}).") from None

    def field(name):
        f = reader.fields.get(name)
        if f is None or not f.data:
            return None
        return f

    model = field("tokenizer.ggml.model")
    kind = bytes(model.parts[model.data[0]]).decode("utf-8", "replace") if model is not None else None
    tokens_f, types_f = field("tokenizer.ggml.tokens"), field("tokenizer.ggml.token_type")
    if kind != "gpt2" or tokens_f is None:
        raise ModelFileError(
            f"The model file {path} has no GPT-2 style byte-level vocabulary (its tokenizer is {kind or 'missing'})."
        )
    try:
        tokens = [bytes(tokens_f.parts[i]).decode("utf-8") for i in tokens_f.data]
        types = [int(types_f.parts[i][0]) for i in types_f.data] if types_f is not None else [1] * len(tokens)
    except (UnicodeDecodeError, IndexError, ValueError) as e:
        raise ModelFileError(f"The vocabulary in the model file {path} is damaged ({e}).") from None
    if len(types) != len(tokens):
        raise ModelFileError(f"The vocabulary in the model file {path} is damaged (token types do not match).")
    to_byte = unicode_to_bytes()
    ranks: dict[bytes, int] = {}
    specials: dict[str, int] = {}
    for i, (tok, typ) in enumerate(zip(tokens, types)):
        if typ == _GGUF_CONTROL:
            specials.setdefault(tok, i)
            continue
        # Byte-level spelling; a token with other characters is taken as its UTF-8 (as Hugging Face does).
        b = bytes(to_byte[c] for c in tok) if all(c in to_byte for c in tok) else tok.encode("utf-8")
        ranks.setdefault(b, i)  # a duplicate spelling keeps its lowest id
    if not ranks:
        raise ModelFileError(f"The model file {path} has an empty vocabulary.")
    return ranks, specials


# -- teaching views --------------------------------------------------------------------------------------------
MAX_REPLAY_BYTES = 1024


@dataclass(frozen=True)
class MergeStep:
    """One merge. ``pieces`` holds the byte parts of every pre-tokenized piece *after* this step (pieces before
    ``piece`` are finished, later ones are still single bytes); ``ids`` the same parts as token ids, flattened."""

    pieces: tuple[tuple[bytes, ...], ...]
    ids: tuple[int, ...]
    piece: int  # which piece the merge happened in
    index: int  # position of the merged part inside that piece
    left: bytes
    right: bytes
    rank: int  # rank of left + right, which is its token id
    whole: bool = False  # tiktoken's shortcut: the piece is itself a token; all its parts joined at once

    @property
    def merged(self) -> bytes:
        return self.left + self.right

    @property
    def parts(self) -> tuple[bytes, ...]:
        return tuple(p for piece in self.pieces for p in piece)


def initial_pieces(tokenizer: Tokenizer, word: str) -> tuple[tuple[bytes, ...], ...]:
    """The starting point of the replay: every piece of ``word`` as single bytes (bytes without a token left
    out, as the tokenizer does)."""
    return tuple(tuple(bytes([b]) for b in kept) for _, _, kept in tokenizer.pieces(word) if kept)


def replay_merges(tokenizer: Tokenizer, word: str, max_bytes: int = MAX_REPLAY_BYTES) -> list[MergeStep]:
    """Every merge BPE makes on ``word``, in order. The ids of the last step's parts equal
    ``tokenizer.encode(word)`` (with no steps, the initial single bytes already are the tokens)."""
    pieces = [list(p) for p in initial_pieces(tokenizer, word)]
    total = sum(len(p) for p in pieces)
    if total > max_bytes:
        raise TokenizerError(
            f"The text is too long to replay its merges ({total} bytes; at most {max_bytes}): shorten it."
        )
    rank = tokenizer.rank
    steps: list[MergeStep] = []
    for k, parts in enumerate(pieces):
        whole = b"".join(parts)
        while len(parts) > 1:
            best, at = None, -1
            for i in range(len(parts) - 1):
                r = rank(parts[i] + parts[i + 1])
                if r is not None and (best is None or r < best):
                    best, at = r, i
            if best is None:
                break
            left, right = parts[at], parts[at + 1]
            parts[at : at + 2] = [left + right]
            steps.append(_step(tokenizer, pieces, k, at, left, right, best))
        if len(parts) > 1 and rank(whole) is not None:
            # tiktoken takes a piece that is itself a token whole, even if merging would not reach it (no such
            # token in the bundled vocabularies: every token there is reachable by merges)
            left, right = parts[0], b"".join(parts[1:])
            parts[:] = [whole]
            steps.append(_step(tokenizer, pieces, k, 0, left, right, rank(whole), whole=True))
    return steps


def _step(tokenizer, pieces, k, index, left, right, rank, whole=False) -> MergeStep:
    frozen = tuple(tuple(p) for p in pieces)
    ids = tuple(tokenizer.rank(p) for piece in frozen for p in piece)
    return MergeStep(frozen, ids, k, index, left, right, rank, whole)


@dataclass(frozen=True)
class ByteRow:
    """One character of the text for the byte inspector."""

    char_index: int
    char: str
    bytes: bytes  # its UTF-8 encoding (U+FFFD's for a lone surrogate)
    tokens: tuple[int | None, ...]  # per byte: index into Tokenization.tokens, None when dropped / not reached

    @property
    def hex(self) -> str:
        return " ".join(f"{b:02X}" for b in self.bytes)


def byte_view(tokenization: Tokenization) -> list[ByteRow]:
    """Per-character rows: the character, its UTF-8 bytes and which token each byte went into. Covers the text
    up to the last token (or dropped byte) when the tokenization was cut short."""
    text = tokenization.text
    toks = [(i, len(t.bytes)) for i, t in enumerate(tokenization.tokens) if not t.added]
    end = max([t.end for t in tokenization.tokens] + [d.char_index + 1 for d in tokenization.dropped] + [0])
    dropped = list(tokenization.dropped)
    rows: list[ByteRow] = []
    ti, left, di = 0, toks[0][1] if toks else 0, 0
    for ci in range(end):
        ch = text[ci]
        raw = ("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch).encode("utf-8")
        owners: list[int | None] = []
        for value in raw:
            if di < len(dropped) and dropped[di].char_index == ci and dropped[di].value == value:
                owners.append(None)
                di += 1
                continue
            while ti < len(toks) and left == 0:
                ti += 1
                left = toks[ti][1] if ti < len(toks) else 0
            if ti < len(toks):
                owners.append(toks[ti][0])
                left -= 1
            else:
                owners.append(None)
        rows.append(ByteRow(ci, ch, raw, tuple(owners)))
    return rows


def variants(tokenizer: Tokenizer, word: str) -> list[tuple[str, Tokenization]]:
    """How the same word tokenizes as typed, after a space, capitalised and in upper case. Labels show
    the text with a visible space (·); variants that coincide are listed once."""
    w = word.strip()
    cap = w[:1].upper() + w[1:]
    out, seen = [], set()
    for text in (w, " " + w, cap, " " + cap, w.upper()):
        if text not in seen:
            seen.add(text)
            out.append((text.replace(" ", "·"), tokenizer.tokenize(text)))
    return out
