"""HTTP errors of the server: a status and the project's one-line message, never a traceback."""

from __future__ import annotations

from emollama.errors import EmollamaError, InputTooLongError, ModelUnavailableError

__all__ = ["ApiError", "status_for"]


class ApiError(Exception):
    """An answer the client gets as ``{"error": message, "status": status, "error_id": ...}``."""

    def __init__(self, status: int, message: str, *, error_id: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_id = error_id
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        return {"error": self.message, "status": self.status, "error_id": self.error_id}


def status_for(exc: EmollamaError) -> int:
    """The HTTP status of a project error raised while checking or analysing an upload.

    Too long (duration, pixels) is 413 like an oversized body; a model that is missing on the
    server is the server's fault (503); every other project error is about the input (422).
    """
    if isinstance(exc, InputTooLongError):
        return 413
    if isinstance(exc, ModelUnavailableError):
        return 503
    return 422
