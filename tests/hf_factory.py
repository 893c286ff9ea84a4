"""Write small Hugging Face model folders for tests: random weights made and saved by transformers itself
(safetensors), and a tokenizer.json trained here with the ``tokenizers`` library.

Every parameter is drawn again after transformers' own initialisation (which zeroes biases and sets norm gains
to 1): a bias that is never read, or a norm gain applied the wrong way, must change the numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

CORPUS = [
    "The cat sat on the mat. The dog sat on the log. A cat and a dog are friends.",
    "How many r's are in strawberry? There are three r's in strawberry.",
    "I sat on the bank of the river. Then I went to the bank to deposit money.",
    "def add(a, b):\n    return a + b  # 123 456 7890",
    "Hello world! Hello again, world. Numbers: 1, 2, 3, 42, 1000.",
    "Ünïcödé wörds, 数字, emoji 🍓 and tabs\tand new\nlines.",
]
SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def make_tokenizer(vocab_size: int = 400, specials=SPECIALS, bos: str | None = None):
    """A byte-level BPE tokenizer (GPT-2 style, digits one by one) trained on CORPUS. With ``bos``, its
    post-processor puts that token before every text, as Llama's tokenizers do."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    specials = list(specials) + ([bos] if bos and bos not in specials else [])
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS * 4, trainer)
    if bos:
        bos_id = tok.token_to_id(bos)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]
        )
    return tok


def _randomise(model, seed: int) -> None:
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
            elif p.ndim == 1:  # norm gains
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=g))
            elif "wte" in name or "embed" in name or "wpe" in name or "lm_head" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5 * 1.5)


def write_folder(
    path: Path,
    arch: str,
    *,
    n_layers: int = 2,
    d_model: int = 32,
    n_heads: int = 4,
    n_kv_heads: int | None = None,
    d_ff: int = 64,
    tied: bool = True,
    seed: int = 0,
    context: int = 64,
    dtype: str = "float32",
    bos: str | None = None,
    chat_template: str | None = None,
    tokenizer=None,
    config_extra: dict | None = None,
) -> Path:
    """A model folder of ``arch`` ("llama", "qwen2", "gpt2") with random weights; returns ``path``."""
    import torch
    import transformers

    tok = tokenizer or make_tokenizer(bos=bos)
    V = tok.get_vocab_size()
    eot = tok.token_to_id("<|endoftext|>")
    extra = dict(config_extra or {})
    if arch == "gpt2":
        cfg = transformers.GPT2Config(
            vocab_size=V,
            n_positions=context,
            n_embd=d_model,
            n_layer=n_layers,
            n_head=n_heads,
            n_inner=d_ff,
            bos_token_id=eot,
            eos_token_id=eot,
            tie_word_embeddings=tied,
            **extra,
        )
        model = transformers.GPT2LMHeadModel(cfg)
    else:
        cls = {
            "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
            "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
        }[arch]
        kw = dict(
            vocab_size=V,
            hidden_size=d_model,
            intermediate_size=d_ff,
            num_hidden_layers=n_layers,
            num_attention_heads=n_heads,
            num_key_value_heads=n_kv_heads or n_heads,
            max_position_embeddings=context,
            tie_word_embeddings=tied,
            rms_norm_eps=1e-5,
        )
        if bos:
            kw["bos_token_id"] = tok.token_to_id(bos)
        elif arch == "llama":
            kw["bos_token_id"] = None
        kw.update(extra)
        model = cls[1](cls[0](**kw))
    _randomise(model, seed)
    if tied:
        model.tie_weights()
    model = model.to(getattr(torch, dtype))
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    tok.save(str(path / "tokenizer.json"))
    tc = {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|endoftext|>"}
    if bos:
        tc.update(bos_token=bos, add_bos_token=True)
    if chat_template:
        tc["chat_template"] = chat_template
    (path / "tokenizer_config.json").write_text(json.dumps(tc), encoding="utf-8")
    return path
