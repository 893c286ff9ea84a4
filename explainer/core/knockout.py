"""Head knock-out (zero ablation): the model with chosen attention heads switched off.

A head is knocked out by setting its slice of the attention output (its ``d_head`` numbers per position: the
weighted sum of values, before the output projection ``wo`` mixes the heads) to zero. Everything after that
point (the residual stream, later layers' attention, the next-token distribution) is then the knocked-out
model's own. Equivalent to zeroing the head's ``d_head`` columns of ``wo``.

Heads are ``(layer, head)`` pairs numbered from 0 in the Python API; the CLI and the window number them from 1.
This module reads and checks them (no torch); the hooks that zero the heads are ``llama.KnockOut``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from explainer.core.errors import UserError

Head = tuple[int, int]  # (layer, head), 0-based
_SPEC = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")


def normalize_heads(heads: Iterable[Head], n_layers: int, n_heads: int) -> tuple[Head, ...]:
    """Sorted, without repeats, each checked against the model (a head outside it: UserError, numbered from 1)."""
    out = set()
    for layer, head in heads:
        layer, head = int(layer), int(head)
        if not (0 <= layer < n_layers and 0 <= head < n_heads):
            raise UserError(
                f"There is no head {layer + 1}:{head + 1} in this model; layers go from 1 to {n_layers} "
                f"and heads from 1 to {n_heads}."
            )
        out.add((layer, head))
    return tuple(sorted(out))


def parse_heads(spec: str, n_layers: int, n_heads: int) -> tuple[Head, ...]:
    """``"L:H[,L:H...]"`` numbered from 1 (as the window shows them) -> 0-based pairs; a malformed spec or a head
    outside the model: UserError."""
    pairs = []
    for part in spec.split(","):
        m = _SPEC.match(part)
        if m is None:
            raise UserError(
                f"Cannot read the head '{part.strip()}' in --ablate; write layer:head numbered from 1, "
                "several separated by commas (for example 3:5,12:1)."
            )
        pairs.append((int(m.group(1)) - 1, int(m.group(2)) - 1))
    return normalize_heads(pairs, n_layers, n_heads)


def heads_label(heads: Iterable[Head]) -> str:
    """``"3:5, 12:1"``: heads numbered from 1, for messages and titles."""
    return ", ".join(f"{layer + 1}:{head + 1}" for layer, head in heads)
