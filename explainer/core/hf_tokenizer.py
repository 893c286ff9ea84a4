"""A model's own tokenizer from its ``tokenizer.json``, run by Hugging Face's ``tokenizers`` library.

The ids are exactly those of the model's tokenizer (the same Rust code transformers uses). What this adds is
what the app needs from any tokenizer (the interface of ``explainer.core.tokenizers.Tokenizer``): each token's
bytes and the character span ``text[start:end]`` it came from, special tokens marked, typed special strings
read as text unless asked otherwise, and a cut after ``max_tokens`` tokens that never looks at the rest of a
long paste.

Token bytes: in a byte-level vocabulary (GPT-2, Llama 3, Qwen2) every token string is bytes written with GPT-2's
byte-to-unicode table; in a SentencePiece-style one (Llama 2) "▁" is a space and ``<0x0A>`` a raw byte; other
vocabularies hold plain text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from explainer.core.bpe import unicode_to_bytes
from explainer.core.errors import ModelFileError
from explainer.core.types import Token, Tokenization

_SURROGATES = re.compile("[\ud800-\udfff]")
_BYTE_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")
_NO_LIMIT = 1 << 62
PREFIX_CHARS_PER_TOKEN = 16  # a long text is first tokenized in a prefix of this many characters per token wanted


def _kinds(node) -> set[str]:
    """Every component ``type`` in a tokenizer.json subtree (decoders and pre-tokenizers nest in Sequences)."""
    out: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("type"), str):
            out.add(node["type"])
        for v in node.values():
            out |= _kinds(v)
    elif isinstance(node, list):
        for v in node:
            out |= _kinds(v)
    return out


class HFTokenizer:
    """The tokenizer of a model folder. Thread-safe and immutable once built."""

    def __init__(self, path: str | Path, name: str):
        from tokenizers import Tokenizer as RustTokenizer

        p = Path(path)
        try:
            spec = json.loads(p.read_text(encoding="utf-8"))
            self._tk = RustTokenizer.from_file(str(p))
            self._tk_plain = RustTokenizer.from_file(str(p))  # the same, with special strings read as text
        except Exception as e:  # noqa: BLE001 - the tokenizers library raises plain Exceptions on bad files
            raise ModelFileError(
                f"The tokenizer.json of {name} cannot be read ({type(e).__name__}); the folder is damaged."
            ) from None
        self._tk_plain.encode_special_tokens = True
        from explainer.core.tokenizers import TOKENIZER_NAMES

        self.name = name if name not in TOKENIZER_NAMES else f"{name} (model)"  # never one of the built-in names
        self.pattern = None
        kinds = _kinds(spec.get("decoder")) | _kinds(spec.get("pre_tokenizer"))
        self.byte_level = "ByteLevel" in kinds
        self.sentencepiece = not self.byte_level and bool({"Metaspace", "ByteFallback", "Replace"} & kinds)
        added = self._tk.get_added_tokens_decoder()
        self.special_ids: dict[str, int] = {t.content: i for i, t in added.items() if t.special}
        self.n_special = len(self.special_ids)
        self._special_by_id = {i: s for s, i in self.special_ids.items()}
        self._added_text = {i: t.content for i, t in added.items()}
        self._max_added = max((len(s) for s in self._added_text.values()), default=0)
        self._bytes: dict[int, bytes] = {}
        self.vocab_size = max([*self._tk.get_vocab(with_added_tokens=True).values(), -1]) + 1
        self.missing_bytes: frozenset[int] = frozenset()
        self._u2b = unicode_to_bytes()
        # exact prefixes need the pre-tokenizer's pieces on the raw text (no normalizer moving characters)
        self._prefix_ok = self._tk.normalizer is None and self._tk.pre_tokenizer is not None

    def __repr__(self) -> str:
        return f"<HFTokenizer {self.name}: {self.vocab_size} ids, {self.n_special} special>"

    # -- vocabulary --------------------------------------------------------------------------------------------
    def token_bytes(self, token_id: int) -> bytes:
        b = self._bytes.get(token_id)
        if b is None:
            try:
                s = self._tk.id_to_token(int(token_id))
            except (TypeError, ValueError, OverflowError):
                s = None
            if s is None:
                raise ValueError(f"token id {token_id!r} is not in the {self.name} vocabulary")
            b = self._bytes[token_id] = self._to_bytes(int(token_id), s)
        return b

    def _to_bytes(self, token_id: int, s: str) -> bytes:
        if token_id in self._added_text:
            return s.encode("utf-8")
        if self.byte_level and all(c in self._u2b for c in s):
            return bytes(self._u2b[c] for c in s)
        if self.sentencepiece:
            m = _BYTE_TOKEN.fullmatch(s)
            if m:
                return bytes([int(m.group(1), 16)])
            return s.replace("▁", " ").encode("utf-8")
        return s.encode("utf-8")

    def token_id(self, text: str) -> int | None:
        """The id of the vocabulary entry ``text`` (as written in tokenizer.json), or None."""
        return self._tk.token_to_id(text)

    def is_special(self, token_id: int) -> bool:
        return token_id in self._special_by_id

    def decode(self, ids) -> str:
        return b"".join(self.token_bytes(i) for i in ids).decode("utf-8", errors="replace")

    def adds_start_token(self) -> int | None:
        """The id the tokenizer's own post-processor puts before a text (Llama's ``<s>``), or None."""
        with_specials = self._tk.encode("a", add_special_tokens=True).ids
        plain = self._tk.encode("a", add_special_tokens=False).ids
        if len(with_specials) > len(plain) and with_specials[0] != (plain[0] if plain else None):
            return int(with_specials[0])
        return None

    # -- encoding ----------------------------------------------------------------------------------------------
    def encode(self, text: str, parse_specials: bool = False) -> list[int]:
        return self.tokenize(text, parse_specials).ids

    def tokenize(self, text: str, parse_specials: bool = False, max_tokens: int | None = None) -> Tokenization:
        """Tokenize ``text`` without adding special tokens. With ``parse_specials`` the special strings typed in
        the text (``<|im_end|>``) become special tokens; otherwise they are cut as ordinary text. With
        ``max_tokens`` only the first ``max_tokens`` tokens are made (``complete`` is False when the text had
        more)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, not {type(text).__name__}")
        clean = _SURROGATES.sub("\ufffd", text)  # lone surrogates cannot be UTF-8: U+FFFD, same length
        tk = self._tk if parse_specials else self._tk_plain
        limit = _NO_LIMIT if max_tokens is None else max(0, int(max_tokens))
        ids, offsets, complete = self._encode_limited(tk, clean, limit)
        tokens = tuple(
            Token(i, self.token_bytes(i), s, e, special=i in self._special_by_id) for i, (s, e) in zip(ids, offsets)
        )
        parsed = any(t.special for t in tokens)
        return Tokenization(text, self.name, tokens, (), parsed, complete)

    def _encode_limited(self, tk, text: str, limit: int) -> tuple[list[int], list[tuple[int, int]], bool]:
        if limit == 0:
            return [], [], not text
        exact = limit >= _NO_LIMIT or not self._prefix_ok
        n = len(text) if exact else min(len(text), PREFIX_CHARS_PER_TOKEN * limit + 256)
        while True:
            enc = tk.encode(text[:n], add_special_tokens=False)
            ids, offsets = list(enc.ids), list(enc.offsets)
            if n >= len(text):
                return ids[:limit], offsets[:limit], len(ids) <= limit
            if len(ids) > limit and self._prefix_ok:
                safe = self._safe_end(tk, text[:n])
                if offsets[limit - 1][1] <= safe:  # the kept tokens cannot change when the text goes on
                    return ids[:limit], offsets[:limit], False
            n = min(len(text), 2 * n)

    def _safe_end(self, tk, prefix: str) -> int:
        """A character index before which ``prefix``'s tokens are those of any longer text: the start of the
        second-to-last pre-tokenized piece (a piece's regex may look one character ahead), less the longest added
        token (a special string cut at the end of the prefix)."""
        pieces = tk.pre_tokenizer.pre_tokenize_str(prefix)
        if len(pieces) < 3:
            return -1
        return pieces[-2][1][0] - self._max_added - 1


# -- the start-of-text token -----------------------------------------------------------------------------------
def read_tokenizer_config(folder: Path) -> dict:
    """tokenizer_config.json of a folder as a dict ({} when absent or unreadable)."""
    p = folder / "tokenizer_config.json"
    try:
        data = json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def token_text(value) -> str | None:
    """A special token as tokenizer_config.json writes it: a string or ``{"content": …}``."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else None
