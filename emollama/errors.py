"""Typed errors.

Every problem a user can fix (a missing file, a corrupt video, an unknown label set, absent
weights) is raised as an :class:`EmollamaError` subclass whose message is one actionable line.
The CLI prints that line and exits non-zero; Python callers can catch the class they care about.
Anything else escaping is a bug in emollama.
"""

from __future__ import annotations


class EmollamaError(Exception):
    """Base class: the message is a complete, user-facing sentence."""

    exit_code = 2


class InputError(EmollamaError):
    """The input path is missing, a directory, empty, or otherwise not a usable media file."""


class MediaDecodeError(InputError):
    """The file exists but cannot be decoded (corrupt, truncated, or not a media file)."""


class PathOutsideRootError(InputError):
    """A path a remote client named leads outside the folder the server may read (``--allow-root``)."""


class InputTooLongError(InputError):
    """The media is longer than the configured limit (``--max-duration``)."""


class SubtitleError(InputError):
    """A subtitle file was given but cannot be read or parsed."""


class ManifestError(InputError):
    """A batch manifest is missing, malformed, or lacks a required column."""


class UnknownLabelSetError(EmollamaError):
    """A label-set name that emollama does not define."""


class UnknownLabelError(EmollamaError):
    """A label spelling that maps to no known emotion category."""


class ModelUnavailableError(EmollamaError):
    """Weights or a packaged model that a component needs are not installed or not found."""


class Interrupted(EmollamaError):
    """Ctrl-C during a batch: finished items are on disk and a rerun resumes."""

    exit_code = 130


def unexpected_error_message(exc: BaseException) -> str:
    """One line for an error emollama did not anticipate, so a batch records it and goes on.

    Batch runs must not die on one odd file (and then die again on every resume), so per-item loops
    catch everything that is not a user error too and store this line as the item's error.
    """
    text = " ".join(str(exc).split())[:300] or "(no message)"
    return f"unexpected {type(exc).__name__}: {text} - please report this file to the emollama maintainers"


def error_line(exc: BaseException) -> str:
    """The line a batch records for an item that failed: a user error's own message, else the one above."""
    return str(exc) if isinstance(exc, EmollamaError) else unexpected_error_message(exc)
