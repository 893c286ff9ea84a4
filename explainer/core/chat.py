"""Chat templates: how a conversation becomes the one text an instruct model reads.

An instruct model never sees "turns": it sees one token stream in which special tokens mark where each role's
message starts and ends. SmolLM2 uses ChatML; its GGUF stores the template (Jinja) under
``tokenizer.chat_template``. ``SMOLLM2_CHAT_TEMPLATE`` is that text verbatim and ``render`` does exactly what it
does:

- before the first message, when the conversation does not start with a ``system`` message, the template inserts
  a default system turn (``DEFAULT_SYSTEM_PROMPT``);
- every message becomes ``<|im_start|>{role}\\n{content}<|im_end|>\\n`` (role and content verbatim, nothing
  stripped);
- with ``add_generation_prompt`` it ends with ``<|im_start|>assistant\\n``: the model's next tokens are the
  assistant's answer.

An empty conversation renders as the generation prompt alone (Hugging Face's ``apply_chat_template`` refuses
an empty conversation instead). The rendered text must be tokenized with special-token parsing on, so that
``<|im_start|>`` becomes the single special token 1 instead of seven ordinary pieces.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelFileError

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
ROLES: tuple[str, ...] = ("system", "user", "assistant")
DEFAULT_SYSTEM_PROMPT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CHAT_TEMPLATE_KEY = "tokenizer.chat_template"


@dataclass(frozen=True)
class Message:
    role: str
    content: str


MessageLike = Message | Mapping[str, str]


@dataclass(frozen=True)
class Segment:
    """A stretch of the rendered text, for colouring it.

    ``kind``: "special" (``<|im_start|>`` / ``<|im_end|>``), "role" (the role name), "content" or "newline".
    ``turn``: index of the message it belongs to; -1 for the default system turn the template inserted, and
    ``len(messages)`` for the generation prompt."""

    text: str
    kind: str
    turn: int
    role: str
    inserted: bool = False  # added by the template on its own (default system turn, generation prompt)


def _message(m: MessageLike) -> Message:
    if isinstance(m, Message):
        return m
    return Message(str(m["role"]), str(m["content"]))


def normalise(messages: Iterable[MessageLike]) -> list[Message]:
    return [_message(m) for m in messages]


def uses_default_system_prompt(messages: Iterable[MessageLike]) -> bool:
    """True when the template inserts its default system turn (a non-empty conversation whose first message is
    not a system message)."""
    ms = normalise(messages)
    return bool(ms) and ms[0].role != "system"


def _turn(role: str, content: str, turn: int, inserted: bool = False) -> list[Segment]:
    parts = (
        (IM_START, "special"),
        (role, "role"),
        ("\n", "newline"),
        (content, "content"),
        (IM_END, "special"),
        ("\n", "newline"),
    )
    return [Segment(text, kind, turn, role, inserted) for text, kind in parts]


def render_segments(messages: Iterable[MessageLike], add_generation_prompt: bool = True) -> list[Segment]:
    """The rendered conversation as coloured stretches; ``"".join`` of their texts is ``render(...)``.
    Empty stretches (an empty message) are kept so that every turn has the same six segments."""
    ms = normalise(messages)
    out: list[Segment] = []
    for i, m in enumerate(ms):
        if i == 0 and m.role != "system":
            out += _turn("system", DEFAULT_SYSTEM_PROMPT, -1, inserted=True)
        out += _turn(m.role, m.content, i)
    if add_generation_prompt:
        out += _turn("assistant", "", len(ms), inserted=True)[:3]  # <|im_start|> assistant ⏎
    return out


def render(messages: Iterable[MessageLike], add_generation_prompt: bool = True) -> str:
    """The exact text SmolLM2's chat template produces for ``messages``."""
    return "".join(s.text for s in render_segments(messages, add_generation_prompt))


# -- the template stored in the model file ---------------------------------------------------------------------
def read_chat_template(gguf_path: str | Path) -> str | None:
    """The Jinja chat template stored in a GGUF file (``tokenizer.chat_template``), or None when it has none.
    Opening a GGUF takes about a second; results are cached per path."""
    return _read_chat_template(str(Path(gguf_path).expanduser().resolve()))


@functools.lru_cache(maxsize=4)
def _read_chat_template(path: str) -> str | None:
    import gguf

    try:
        reader = gguf.GGUFReader(path, "r")
    except Exception as e:  # noqa: BLE001 - the reader raises many kinds of errors on foreign files
        raise ModelFileError(f"The file {path} is not a readable GGUF model file ({type(e).__name__}: {e}).") from None
    f = reader.fields.get(CHAT_TEMPLATE_KEY)
    if f is None or not f.data:
        return None
    return bytes(f.parts[f.data[0]]).decode("utf-8", errors="replace")


def template_is_supported(template: str | None) -> bool:
    """True when ``template`` is the ChatML template ``render`` mirrors."""
    return template == SMOLLM2_CHAT_TEMPLATE
