"""Which token stands before a text as "start of text", decided from the model's own tokenizer and config.

A causal model predicts every token from the ones before it, so the first typed token has no prediction
unless something precedes it. The rule, in order:

1. the model's tokenizer puts a beginning-of-sequence token before every text (``add_bos_token``, or its
   post-processor adds one, as Llama's ``<s>`` / ``<|begin_of_text|>``): that token;
2. else, ``<|endoftext|>`` when the vocabulary has it: the separator between the documents the model was
   trained on (GPT-2, Qwen2, SmolLM2 — whose configured ``bos_token_id`` is the chat marker ``<|im_start|>``);
3. else the configured ``bos_token_id``;
4. else none: the text is analysed as typed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

ENDOFTEXT = "<|endoftext|>"


@dataclass(frozen=True)
class StartToken:
    id: int | None  # None: the model has no start-of-text token
    text: str  # the token as written in the vocabulary
    reason: str  # why this token, for the UI

    @property
    def label(self) -> str:
        """``<|endoftext|> (id 50256)``, or "none"."""
        return "none" if self.id is None else f"{self.text} (id {self.id})"

    @property
    def description(self) -> str:
        """One sentence for a tooltip or the status bar."""
        if self.id is None:
            return "This model has no start-of-text token; the text is analysed as typed."
        return f"Start of text: {self.label}, {self.reason}."


def choose_start_token(
    *,
    tokenizer_adds: int | None,
    bos_id: int | None,
    lookup: Callable[[str], int | None],
    text_of: Callable[[int], str],
) -> StartToken:
    """Apply the rule of the module docstring. ``tokenizer_adds``: the id the tokenizer itself prepends (None if
    it prepends nothing); ``bos_id``: the configured ``bos_token_id``; ``lookup(text)`` → id or None;
    ``text_of(id)`` → the token's text."""
    if tokenizer_adds is not None:
        return StartToken(tokenizer_adds, text_of(tokenizer_adds), "which the model's tokenizer puts before every text")
    eot = lookup(ENDOFTEXT)
    if eot is not None:
        return StartToken(eot, ENDOFTEXT, "the separator between the documents the model was trained on")
    if bos_id is not None:
        return StartToken(bos_id, text_of(bos_id), "the model's configured beginning-of-sequence token")
    return StartToken(None, "", "")
