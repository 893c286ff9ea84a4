"""A model folder's own tokenizer (tokenizer.json through the ``tokenizers`` library): the ids transformers makes,
token bytes and character spans as the rest of the app expects, a cut after max_tokens that equals the full
tokenization, the start-of-text token rule and the model's chat template."""

from __future__ import annotations

import random

import pytest

from explainer.core.hf_tokenizer import HFTokenizer
from explainer.core.start_token import choose_start_token
from tests.hf_factory import CHATML, write_folder
from tests.robustness.hostile_texts import HOSTILE, LONE_SURROGATE_NAMES

transformers = pytest.importorskip("transformers")

TEXTS = [
    "The cat sat on the mat",
    " strawberry",
    "def add(a, b):\n    return a + b  # 数字 123 🍓",
    "<|im_start|>user\nHi<|im_end|>\n",
    "tabs\tand  double  spaces \n\n end ",
    "Ünïcödé wörds",
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("tok") / "m", "gpt2", chat_template=CHATML)


@pytest.fixture(scope="module")
def tok(folder):
    return HFTokenizer(folder / "tokenizer.json", "tiny")


@pytest.fixture(scope="module")
def hf_tok(folder):
    return transformers.AutoTokenizer.from_pretrained(str(folder))


def _texts():
    return TEXTS + [v for k, v in HOSTILE.items() if k not in LONE_SURROGATE_NAMES and len(v) < 5000]


def test_ids_equal_transformers(tok, hf_tok):
    for text in _texts():
        assert tok.encode(text, parse_specials=True) == hf_tok(text, add_special_tokens=False)["input_ids"], text


def test_typed_specials_are_text_unless_parsed(tok, hf_tok):
    text = "<|im_start|>user\nHi<|im_end|>"
    parsed = tok.tokenize(text, parse_specials=True)
    assert (
        parsed.specials_parsed
        and parsed.tokens[0].special
        and parsed.tokens[0].id == hf_tok.convert_tokens_to_ids("<|im_start|>")
    )
    plain = tok.tokenize(text)
    assert not plain.specials_parsed and not any(t.special for t in plain.tokens)
    split = transformers.AutoTokenizer.from_pretrained(hf_tok.name_or_path, split_special_tokens=True)
    assert plain.ids == split(text, add_special_tokens=False)["input_ids"]


def test_bytes_and_spans(tok):
    for text in _texts():
        t = tok.tokenize(text, parse_specials=True)
        # the bytes of all tokens are the text's bytes (a byte-level vocabulary drops nothing)
        assert b"".join(x.bytes for x in t.tokens) == text.encode("utf-8"), text
        for x in t.tokens:
            assert 0 <= x.start < x.end <= len(text)
            # a token's bytes lie inside the characters of its span
            assert x.bytes in text[x.start : x.end].encode("utf-8"), (text, x)
        assert [x.start for x in t.tokens] == sorted(x.start for x in t.tokens)


def test_max_tokens_equals_a_cut_of_the_full_tokenization(tok):
    rng = random.Random(0)
    words = ["the", " cat", " 数字", " 🍓", "\n", "  ", "123", "<|im_end|>", "strawberry", "\t", "é"]
    for _ in range(30):
        text = "".join(rng.choice(words) for _ in range(rng.randint(50, 3000)))
        full = tok.tokenize(text, parse_specials=True)
        for k in (1, 7, 64, 500):
            cut = tok.tokenize(text, parse_specials=True, max_tokens=k)
            assert cut.tokens == full.tokens[:k]
            assert cut.complete == (len(full.tokens) <= k)
    long = "a" * 200_000  # one piece: the prefix grows until the kept tokens are certain
    assert tok.tokenize(long, max_tokens=10).tokens == tok.tokenize(long).tokens[:10]


def test_same_as_the_tiktoken_tokenizer_on_smollm2s_vocabulary(tmp_path, bundled_gguf):
    """SmolLM2's vocabulary written as a tokenizer.json: the two tokenizers agree on ids and spans."""
    import gguf
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    from explainer.core.tokenizers import get_tokenizer

    r = gguf.GGUFReader(str(bundled_gguf))
    tokens = list(r.fields["tokenizer.ggml.tokens"].contents())
    types = list(r.fields["tokenizer.ggml.token_type"].contents())
    merges = [tuple(m.split(" ", 1)) for m in r.fields["tokenizer.ggml.merges"].contents()]
    t = Tokenizer(models.BPE(vocab={s: i for i, s in enumerate(tokens)}, merges=merges))
    t.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    t.decoder = decoders.ByteLevel()
    t.add_special_tokens([AddedToken(s, special=True, normalized=False) for s, ty in zip(tokens, types) if ty == 3])
    t.save(str(tmp_path / "tokenizer.json"))
    ours, theirs = HFTokenizer(tmp_path / "tokenizer.json", "smol"), get_tokenizer("smollm2", gguf_path=bundled_gguf)
    for text in _texts():
        a, b = ours.tokenize(text, parse_specials=True), theirs.tokenize(text, parse_specials=True)
        assert a.ids == b.ids, text
        if not b.dropped:
            assert [(x.start, x.end, x.bytes) for x in a.tokens] == [(x.start, x.end, x.bytes) for x in b.tokens], text


def test_start_token_rule():
    vocab = {"<|endoftext|>": 5, "<s>": 1}
    kw = dict(lookup=vocab.get, text_of={5: "<|endoftext|>", 1: "<s>", 9: "<bos>"}.get)
    assert choose_start_token(tokenizer_adds=1, bos_id=1, **kw).id == 1  # the tokenizer adds <s>
    assert choose_start_token(tokenizer_adds=None, bos_id=1, **kw).id == 5  # documents were separated by <|endoftext|>
    assert choose_start_token(tokenizer_adds=None, bos_id=9, lookup={}.get, text_of=kw["text_of"]).id == 9
    none = choose_start_token(tokenizer_adds=None, bos_id=None, lookup={}.get, text_of=kw["text_of"])
    assert none.id is None and "no start-of-text token" in none.description


def test_start_token_per_model(tmp_path, bundled_gguf):
    from explainer.core.engine import TINY_CONFIG
    from explainer.core.llama import random_weights
    from explainer.core.model_source import open_model
    from tests.gguf_factory import write_tiny_llama

    llama = open_model(write_folder(tmp_path / "l", "llama", bos="<s>"))
    assert llama.start.text == "<s>" and llama.start.id == llama.tokenizer.token_id("<s>") and llama.cfg.add_bos
    assert "tokenizer puts" in llama.start.description
    gpt2 = open_model(write_folder(tmp_path / "g", "gpt2"))
    assert gpt2.start.text == "<|endoftext|>" and not gpt2.cfg.add_bos
    gguf_model = write_tiny_llama(tmp_path / "t.gguf", TINY_CONFIG, random_weights(TINY_CONFIG), bundled_gguf)
    assert open_model(gguf_model).start.id == 0  # SmolLM2's vocabulary: <|endoftext|>, id 0


def test_chat_template_renders_as_transformers(folder, hf_tok, tok):
    from explainer.core.chat_jinja import model_chat_template, render_template, template_segments

    template = model_chat_template(folder)
    assert template == CHATML
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi\nthere"}]
    for gen in (True, False):
        text = render_template(template, msgs, gen, {"eos_token": "<|endoftext|>"})
        assert text == hf_tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)
        segs = template_segments(text, msgs, tok.special_ids)
        assert "".join(s.text for s in segs) == text
        assert [s.text for s in segs if s.kind == "content"] == ["Be brief.", "Hi\nthere"]
        assert [s.text for s in segs if s.kind == "special"][:2] == ["<|im_start|>", "<|im_end|>"]


def test_chat_template_refusal_is_one_sentence():
    from explainer.core.chat_jinja import ChatTemplateError, render_template

    t = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversations must start with a user') }}{% endif %}x"
    with pytest.raises(ChatTemplateError, match="must start with a user"):
        render_template(t, [{"role": "assistant", "content": "x"}])
    with pytest.raises(ChatTemplateError):
        render_template("{% for %}", [])
