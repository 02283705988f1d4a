"""Errors raised by ``emollama evaluate``; each message names the file and what to change."""

from __future__ import annotations

from emollama.errors import EmollamaError, InputError


class EvaluationInputError(InputError):
    """A prediction or reference file is missing, empty, malformed, or lacks a needed column."""


class LabelMismatchError(EmollamaError):
    """Reference labels cannot be scored with the chosen label set (unknown or outside the set)."""
