"""Any model's own chat template: read it from the model (GGUF metadata or the folder's tokenizer files) and render
a conversation with it, as transformers' ``apply_chat_template`` does (Jinja in a sandbox, ``trim_blocks`` and
``lstrip_blocks``, ``raise_exception``, the tokenizer's special tokens as variables).

The rendered text is also cut into coloured stretches for the chat view: the tokenizer's special strings, each
message's content where the template wrote it verbatim, and the template's own text in between.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from explainer.core.chat import MessageLike, Segment, normalise
from explainer.core.errors import UserError

__all__ = ["ChatTemplateError", "model_chat_template", "render_template", "template_segments", "template_variables"]


class ChatTemplateError(UserError):
    """The model's chat template failed on this conversation (its own ``raise_exception``, or bad Jinja)."""


def model_chat_template(path: str | Path) -> str | None:
    """The chat template of a model: a GGUF file's ``tokenizer.chat_template``, or a folder's
    ``chat_template.jinja`` / ``chat_template.json`` / ``tokenizer_config.json`` entry. None when it has none."""
    p = Path(path).expanduser()
    if not p.is_dir():
        from explainer.core.chat import read_chat_template

        return read_chat_template(p)
    jinja = p / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8", errors="replace")
    for name in ("chat_template.json", "tokenizer_config.json"):
        f = p / name
        if not f.is_file():
            continue
        try:
            value = json.loads(f.read_text(encoding="utf-8")).get("chat_template")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(value, list):  # named templates: the default one
            named = {t.get("name"): t.get("template") for t in value if isinstance(t, dict)}
            value = named.get("default") or next(iter(named.values()), None)
        if isinstance(value, str) and value.strip():
            return value
    return None


def template_variables(folder: str | Path) -> dict[str, str]:
    """The special tokens a folder's tokenizer_config.json names (``bos_token``, ``eos_token``, …), as text: the
    variables a chat template may use."""
    from explainer.core.hf_tokenizer import read_tokenizer_config, token_text

    tc = read_tokenizer_config(Path(folder))
    names = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token")
    texts = {k: token_text(tc.get(k)) for k in names}
    return {k: v for k, v in texts.items() if v is not None}


@functools.lru_cache(maxsize=8)
def _compile(template: str):
    from jinja2 import TemplateError
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise ChatTemplateError(f"The model's chat template refuses this conversation: {message}")

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        import datetime

        return datetime.datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    try:
        return env.from_string(template)
    except TemplateError as e:
        raise ChatTemplateError(f"The model's chat template cannot be read ({e}).") from None


def render_template(
    template: str,
    messages: Iterable[MessageLike],
    add_generation_prompt: bool = True,
    special_tokens: Mapping[str, str] | None = None,
) -> str:
    """The text ``template`` makes of ``messages``. ``special_tokens``: variables such as ``bos_token`` and
    ``eos_token`` (their text)."""
    from jinja2 import TemplateError

    msgs = [{"role": m.role, "content": m.content} for m in normalise(messages)]
    try:
        return _compile(template).render(
            messages=msgs,
            add_generation_prompt=add_generation_prompt,
            tools=None,
            documents=None,
            **dict(special_tokens or {}),
        )
    except ChatTemplateError:
        raise
    except (TemplateError, TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
        raise ChatTemplateError(f"The model's chat template failed on this conversation ({e}).") from None


def template_segments(text: str, messages: Iterable[MessageLike], specials: Iterable[str]) -> list[Segment]:
    """``text`` (as rendered) cut into stretches: the special strings ("special"), each message's content where
    it appears in order ("content", with its turn), line breaks ("newline") and the template's own words
    ("role"); ``"".join`` of the texts is ``text``."""
    ms = normalise(messages)
    marks: list[tuple[int, int, str, int, str]] = []  # start, end, kind, turn, role
    pos = 0
    for i, m in enumerate(ms):
        if not m.content:
            continue
        at = text.find(m.content, pos)
        if at >= 0:
            marks.append((at, at + len(m.content), "content", i, m.role))
            pos = at + len(m.content)
    names = sorted({s for s in specials if s}, key=len, reverse=True)
    out: list[Segment] = []

    def plain(a: int, b: int) -> None:
        """Template text between marks: special strings, line breaks and words."""
        i = a
        while i < b:
            hit = next((s for s in names if text.startswith(s, i) and i + len(s) <= b), None)
            if hit is not None:
                out.append(Segment(hit, "special", -1, ""))
                i += len(hit)
            elif text[i] == "\n":
                out.append(Segment("\n", "newline", -1, ""))
                i += 1
            else:
                j = i + 1
                while j < b and text[j] != "\n" and not any(text.startswith(s, j) for s in names):
                    j += 1
                out.append(Segment(text[i:j], "role", -1, ""))
                i = j

    cursor = 0
    for start, end, kind, turn, role in marks:
        plain(cursor, start)
        out.append(Segment(text[start:end], kind, turn, role))
        cursor = end
    plain(cursor, len(text))
    return out
