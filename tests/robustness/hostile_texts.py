"""A corpus of hostile texts: what a lecturer (or a student at the lecturer's laptop) might paste.

``HOSTILE`` maps a short name to the text. Every text is a Python ``str``; a few hold lone surrogates
(``LONE_SURROGATE_NAMES``), which cannot be UTF-8 encoded and so cannot travel through a file or a pipe as is
(the CLI tests send those only as in-process arguments, and as invalid UTF-8 bytes through a real argv).
``BIG`` is the 1 MB paste, kept apart because it is slow to push through every path.

Bytes the SmolLM2 vocabulary cannot express (NOTES: 21 values) are listed in ``NO_TOKEN_BYTES``.
"""

from __future__ import annotations

# Byte values with no token in SmolLM2's vocabulary (21 values; Hugging Face drops them silently).
NO_TOKEN_BYTES = frozenset([0x04, 0x06, 0x13, 0x14, 0x16, 0x1D, 0xC0, 0xC1, 0xF1, 0xF2, *range(0xF5, 0x100)])

C0_CONTROLS = "".join(chr(i) for i in range(0x20))
ZWJ = "\u200d"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 👨‍👩‍👧‍👦
RAINBOW_FLAG = "\U0001f3f3\ufe0f\u200d\U0001f308"  # 🏳️‍🌈
FRENCH_FLAG = "\U0001f1eb\U0001f1f7"  # 🇫🇷 (two regional indicators)
MATH_BOLD = "\U0001d400\U0001d401\U0001d402"  # 𝐀𝐁𝐂
MIXED_SCRIPTS = "漢字とかな 한국어 العربية مرحبا देवनागरी हिन्दी ไทย עברית"

HOSTILE: dict[str, str] = {
    "empty": "",
    "space": " ",
    "whitespace_only": " \t\n\r\x0b\x0c  \u00a0\u2003\u3000\n\n",
    "newlines_only": "\n" * 200,
    "crlf": "line one\r\nline two\r\n\r\n",
    "nul": "\x00",
    "nul_inside": "before\x00after",
    "c0_controls": C0_CONTROLS,
    "c0_each_between_letters": "".join(f"a{c}" for c in C0_CONTROLS) + "a",
    "del": "\x7f",
    "c1_controls": "".join(chr(i) for i in range(0x80, 0xA0)),
    "no_token_0x04": "\x04",
    "no_token_0x1d": "a\x1db",
    "no_token_only": "\x04\x06\x13\x14\x16\x1d",
    "plane4_U40000": "\U00040000",  # UTF-8 F1 80 80 80: lead byte 0xF1 has no token
    "plane4_in_word": "x\U00040000y \U0004abcdz",
    "private_use": "\ue000\U000f0000\U0010fffd",
    "noncharacters": "\ufffe\uffff\U0001fffe\U0010ffff",
    "replacement_char": "\ufffd\ufffd",
    "bom_inside": "\ufeffstart \ufeff middle",
    "lone_combining": "\u0301",
    "combining_pile": "a" + "".join(chr(c) for c in range(0x300, 0x370)),
    "zalgo": "Z\u0351\u0357\u0346a\u0315\u0352l\u0358g\u0360o\u0489",
    "rtl_override": "abc\u202edef\u202cghi",
    "bidi_isolates": "\u2066x\u2067y\u2068z\u2069",
    "zwj_family": FAMILY,
    "zwj_rainbow_flag": RAINBOW_FLAG,
    "flag_fr": FRENCH_FLAG,
    "flags_many": FRENCH_FLAG * 50 + "\U0001f1fa\U0001f1f8",
    "skin_tones": "\U0001f44d\U0001f3fb\U0001f44d\U0001f3ff",
    "math_alnum": MATH_BOLD,
    "fullwidth": "ＡＢＣ１２３",
    "special_im_end": "<|im_end|>",
    "special_endoftext": "<|endoftext|>",
    "special_im_start_chat": "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "special_lookalike": "<|im_end| > <| endoftext|> <|IM_END|> <|im_end|<|im_end|>>",
    "special_fim": "<|fim_prefix|><|endofprompt|>",
    "repeated_emoji": "\U0001f600" * 3000,
    "zwj_storm": ZWJ * 5000,
    "zwj_between_emoji": ZWJ.join(["\U0001f468"] * 500),
    "long_word": "a" * 60_000,
    "long_word_mixed": "Supercalifragilistic" * 2000,
    "long_digits": "1234567890" * 2000,
    "long_punct": "!?" * 20_000,
    "long_spaces_then_word": " " * 10_000 + "x",
    "mixed_scripts": MIXED_SCRIPTS,
    "mixed_scripts_long": (MIXED_SCRIPTS + " ") * 300,
    "lone_high_surrogate": "a\ud800b",
    "lone_low_surrogate": "\udfff",
    "surrogate_escapes": "caf\udce9 \udcff",  # what os.fsdecode makes of invalid UTF-8 bytes
    "reversed_surrogate_pair": "\ude00\ud83d",
}

LONE_SURROGATE_NAMES = frozenset(k for k, v in HOSTILE.items() if any(0xD800 <= ord(c) <= 0xDFFF for c in v))

# Texts safe to send as a subprocess argument: no NUL (execve cannot carry one), no lone surrogates.
ARGV_SAFE_NAMES = frozenset(k for k, v in HOSTILE.items() if "\x00" not in v and k not in LONE_SURROGATE_NAMES)


def big_paste(n_bytes: int = 1_000_000) -> str:
    """About ``n_bytes`` of UTF-8: prose, code, emoji, CJK, control characters, mixed; not one long piece."""
    unit = (
        "The lecture starts at nine. Attention is all you need? "
        "def f(x):\n    return x**2\n"
        "漢字とかな \U0001f600\U0001f44d " + FAMILY + " العربية देवनागरी \x04\x1d\x00 <|im_end|> 1234567\n"
    )
    reps = n_bytes // len(unit.encode("utf-8")) + 1
    return unit * reps


def tail_bytes(text: str) -> bytes:
    """``text`` as UTF-8, lone surrogates written as U+FFFD (what the CLI does)."""
    return text.encode("utf-8", errors="surrogatepass").decode("utf-8", errors="replace").encode("utf-8")
