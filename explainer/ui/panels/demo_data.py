"""The text a panel shows when it runs alone (``python -m explainer.ui.panels.attention``): one sentence in which
"bank" means two things, so attention and embeddings have something to show."""

from __future__ import annotations

DEMO_TEXT = "I sat on the bank of the river. I put money in the bank account."
