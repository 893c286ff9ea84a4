"""What the attention panel says about itself: the "What am I seeing?" paragraph (with the model's own sizes), its
details, the note on the attention sink and the hints for the heatmap and the lines."""

from __future__ import annotations

SINK_NOTE = (
    "Most heads park most of their attention on the first token when they have nothing better to do; "
    "hiding it and renormalising shows what else they look at."
)
HINTS = (
    "Hover over a square to read its weight; click it to select the query token (and the key for the grid): "
    "the axes then name it and the key it gives the most weight. Scroll to zoom, double-click to see everything.",
    "Hover over a token to see only its lines: on the left, what it looks at; on the right, who looks at it.",
)


def explanation_for(info=None) -> str:
    h, kv, dk = (info.n_heads, info.n_kv_heads, info.d_head) if info else (9, 3, 64)
    return (
        "Row = the token that is looking (<i>query</i>), column = the token it looks at (<i>key</i>); colour = "
        f"attention weight, softmax(QK<sup>T</sup>/√d<sub>k</sub>), d<sub>k</sub> = {dk}. Every row sums to 1. "
        "The upper triangle is empty: this GPT-style model only looks left (causal mask), unlike BERT. "
        "The grid has one square per head (layers × heads): its colour is the number chosen beside it; hover a "
        "square to preview that head, click it to show it (↑↓ layer, ←→ head)."
    )


DETAILS = (
    "Each head computes, for every token, a query q (what it is looking for) and a key k (what it offers); the "
    "weight of key j for query i is softmax over j of q<sub>i</sub>·k<sub>j</sub>/√d<sub>k</sub>, and the "
    "head's output is the weighted sum of the value vectors. Groups of query heads share one key/value head "
    "(grouped-query attention). Word order enters through positions: Llama-style models (SmolLM2, Qwen2) "
    "rotate queries and keys by an angle proportional to their position before the dot product; GPT-2 adds a "
    "learned position vector to each input embedding. " + SINK_NOTE
)
