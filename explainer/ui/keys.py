"""Key sequences for the window's actions."""

from __future__ import annotations

from PySide6.QtGui import QKeySequence


def key_list(*keys) -> list[QKeySequence]:
    """Key sequences without repeats: a standard key's bindings (``QKeySequence.Redo``) may already hold one of the
    others, and an action given the same sequence twice never fires (the sequence is ambiguous)."""
    out: list[QKeySequence] = []
    for k in keys:
        for seq in QKeySequence.keyBindings(k) if isinstance(k, QKeySequence.StandardKey) else [QKeySequence(k)]:
            if not seq.isEmpty() and seq not in out:
                out.append(seq)
    return out
