"""The memory a command's analysis will need, checked before it starts: a text too long for this machine gets one
sentence instead of the operating system's out-of-memory kill, which no handler can catch.

The sizes grow with the attention weights, one per layer, head, query and key (``attention_weights``). The bytes
per weight below were measured with the bundled model (peak RSS at two text lengths, the difference divided by the
weights added) and rounded up.
"""

from __future__ import annotations

from explainer.core import hf_folder
from explainer.core.errors import UserError

ANALYSIS = 1.5  # an analysis keeps the lower triangle, float16 beyond the first rows (measured 1.2)
ANALYSIS_FP32 = 2.5  # the same with every row float32
ANALYSIS_WITH_ATTENTION_JSON = 110.0  # float32 rows, the full matrix, Python lists of floats, the JSON (measured 98)
ATTRIBUTION = 16.0  # a forward pass that keeps what its backward pass needs (measured 15)
HEAD_SCORES = 8.0  # the full float32 matrix [L, H, T, T] and the pass that makes it
CANDIDATE_JSON = 1100.0  # one next-token candidate of ``analyze --json`` (an object with id, text, probability)


def attention_weights(info, n_tokens: int) -> int:
    """How many attention weights ``n_tokens`` tokens have in the model ``info`` describes (every layer and head)."""
    return int(info.n_layers) * int(info.n_heads) * int(n_tokens) ** 2


def free_memory() -> int:
    """Bytes of memory free now (what the operating system calls available)."""
    return hf_folder.available_memory()


def require(n_bytes: float, what: str, advice: str) -> None:
    """Raise UserError with one sentence when ``n_bytes`` will not fit in the memory free now."""
    free = free_memory()
    if n_bytes > free:
        raise UserError(f"{what} needs about {_size(n_bytes)} of memory, but only {_size(free)} is free; {advice}.")


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.1f} GB" if n_bytes >= 1e8 else f"{n_bytes / 1e6:.0f} MB"
