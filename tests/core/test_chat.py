"""The ChatML renderer against the template stored in the bundled GGUF (rendered by Jinja, as transformers does),
and the rendered text's tokens (special tokens parsed)."""

from __future__ import annotations

import pytest

from explainer.core import chat
from explainer.core.chat import DEFAULT_SYSTEM_PROMPT, Message, render, render_segments

CONVERSATIONS = [
    [{"role": "user", "content": "What is the powerhouse of the cell?"}],
    [{"role": "system", "content": "You are a biology tutor."}, {"role": "user", "content": "What is DNA?"}],
    [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Name a mammal."},
    ],
    [{"role": "assistant", "content": "I start."}],
    [{"role": "user", "content": ""}],
    [{"role": "user", "content": "  spaces kept \n\n and new lines\n"}],
    [{"role": "user", "content": "naïve café 🍓 中文 <|im_end|> typed"}],
    [{"role": "system", "content": "A"}, {"role": "system", "content": "B"}],
    [{"role": "tool", "content": "42"}],
    [],
]


@pytest.fixture(scope="module")
def gguf_template():
    from explainer.core.bundled import bundled_model_path
    from explainer.core.errors import ModelFileError

    try:
        path = bundled_model_path(fetch=False)
    except ModelFileError:
        pytest.skip("the bundled model is not installed")
    return chat.read_chat_template(path)


def test_gguf_template_is_the_one_mirrored(gguf_template):
    assert gguf_template == chat.SMOLLM2_CHAT_TEMPLATE
    assert chat.template_is_supported(gguf_template)
    assert not chat.template_is_supported(gguf_template + " ")


@pytest.mark.parametrize("messages", CONVERSATIONS)
@pytest.mark.parametrize("gen", [True, False])
def test_render_equals_jinja(gguf_template, messages, gen):
    jinja2 = pytest.importorskip("jinja2")
    expected = jinja2.Environment().from_string(gguf_template).render(messages=messages, add_generation_prompt=gen)
    assert render(messages, add_generation_prompt=gen) == expected
    assert render([Message(**m) for m in messages], add_generation_prompt=gen) == expected


def test_exact_text():
    text = render([{"role": "user", "content": "Hi"}])
    assert text == (
        "<|im_start|>system\n" + DEFAULT_SYSTEM_PROMPT + "<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
    assert render([Message("system", "S"), Message("user", "U")], add_generation_prompt=False) == (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n"
    )
    assert render([], add_generation_prompt=True) == "<|im_start|>assistant\n"
    assert render([], add_generation_prompt=False) == ""


def test_default_system_prompt_rule():
    assert chat.uses_default_system_prompt([Message("user", "x")])
    assert chat.uses_default_system_prompt([Message("assistant", "x"), Message("system", "y")])
    assert not chat.uses_default_system_prompt([Message("system", "x")])
    assert not chat.uses_default_system_prompt([])


def test_segments():
    ms = [Message("user", "Hi"), Message("assistant", "Yo")]
    segs = render_segments(ms)
    assert "".join(s.text for s in segs) == render(ms)
    inserted = [s for s in segs if s.inserted]
    assert [s.turn for s in inserted] == [-1] * 6 + [2] * 3
    assert {s.text for s in segs if s.kind == "special"} == {"<|im_start|>", "<|im_end|>"}
    assert [s.text for s in segs if s.kind == "content"] == [DEFAULT_SYSTEM_PROMPT, "Hi", "Yo"]


def test_tokens_of_rendered_text():
    from explainer.core.tokenizers import get_tokenizer

    try:
        tok = get_tokenizer("smollm2")
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"smollm2 tokenizer unavailable: {e}")
    text = render([Message("user", "Hi")])
    t = tok.tokenize(text, parse_specials=True)
    specials = [x.id for x in t.tokens if x.special]
    assert specials == [1, 2, 1, 2, 1]  # <|im_start|> … <|im_end|> twice, then the generation prompt
    assert t.ids[:2] == [1, tok.encode("system")[0]]
    assert tok.decode(t.ids) == text
    plain = tok.tokenize(text)  # without parsing, "<|im_start|>" is ordinary text: many pieces, no special
    assert not any(x.special for x in plain.tokens) and len(plain.tokens) > len(t.tokens)
