"""Errors a user can cause. Each carries one clear sentence for the UI / CLI."""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix: bad model path, unknown tokenizer, unreadable file.

    ``str(err)`` is one sentence that says what is wrong and what to do. The CLI prints it and exits 2; the
    window shows it in a dialog. Programming errors must *not* use this class.
    """


class ModelFileError(UserError):
    """The model file is missing, empty, truncated, not GGUF or not a supported architecture."""


class TokenizerError(UserError):
    """Unknown tokenizer name or missing tokenizer data."""


class Cancelled(Exception):
    """A long computation (activation patching) was stopped because its caller asked it to; not an error."""
