"""explainer: watch a small language model think while you type."""

__version__ = "0.1.0"
