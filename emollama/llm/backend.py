"""The backend interface: one method, typed messages in, a typed reply out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

from emollama.errors import EmollamaError


class ChatMessage(TypedDict):
    """One chat turn in the OpenAI message shape, which every common local server accepts."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class ChatReply:
    """What a backend returns.

    ``model`` is the model name the *server* reports (it can differ from the one requested, e.g.
    an alias resolved to a dated snapshot); it is kept so every score can name its judge.
    ``raw`` is the decoded response body, kept for auditing. ``cached`` tells whether the reply
    came from disk rather than from the model.
    """

    text: str
    model: str
    raw: dict[str, Any] = field(default_factory=dict)
    cached: bool = False


class LLMError(EmollamaError):
    """A chat request did not produce a usable reply. Never cached and never turned into a score."""


class LLMTimeoutError(LLMError):
    """The server did not answer within the configured timeout (after all retries)."""


class LLMRequestError(LLMError):
    """The server could not be reached or answered with an HTTP error status."""


class LLMReplyError(LLMError):
    """The server answered, but the body is not a chat completion we can read."""


@runtime_checkable
class ChatBackend(Protocol):
    """Anything that can answer a list of chat messages.

    Implementations must raise :class:`LLMError` (or a subclass) on failure and never return an
    error text as if it were a reply: callers rely on "a reply is a real model answer".
    """

    @property
    def model(self) -> str:
        """The model name requests are made for (used in cache keys and reports)."""
        ...

    def complete(
        self, messages: Sequence[ChatMessage], *, temperature: float = 0.0, max_tokens: int = 512
    ) -> ChatReply:
        """Return the model's reply to ``messages``."""
        ...
