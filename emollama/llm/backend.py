"""The backend interface: one method, typed messages in, a typed reply out.

A message's ``content`` is either a plain string or a list of OpenAI "content parts" (text and
``image_url`` parts). The list form exists so a vision-capable model can be shown a picture; it
is the shape OpenAI, vLLM, Ollama and llama.cpp's server all accept, so the HTTP backend passes it
through unchanged. Backends that only read text use :func:`message_text`, which refuses images
with a clear error instead of silently dropping them (a model answering about a picture it never
saw would be stored as if it had seen it).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

from emollama.errors import EmollamaError


class ImageURL(TypedDict):
    url: str


class TextPart(TypedDict):
    type: Literal["text"]
    text: str


class ImagePart(TypedDict):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = TextPart | ImagePart


class ChatMessage(TypedDict):
    """One chat turn in the OpenAI message shape, which every common local server accepts."""

    role: Literal["system", "user", "assistant"]
    content: str | list[ContentPart]


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


def text_part(text: str) -> TextPart:
    return {"type": "text", "text": text}


def image_part(data: bytes, mime: str = "image/jpeg") -> ImagePart:
    """An inline image as a ``data:`` URL, so no file server is needed for the model to see it."""
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"}}


def decode_data_url(url: str) -> tuple[str, bytes] | None:
    """``(mime, bytes)`` of a base64 ``data:`` URL, ``None`` for any other URL (e.g. ``https://``)."""
    if not url.startswith("data:"):
        return None
    header, sep, payload = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        return None
    try:
        return header[: -len(";base64")], base64.b64decode(payload, validate=True)
    except ValueError:
        return None


def has_images(messages: Sequence[ChatMessage]) -> bool:
    return any(isinstance(m["content"], list) and any(p.get("type") == "image_url" for p in m["content"])
               for m in messages)


def message_text(message: ChatMessage, backend: str) -> str:
    """The text of a message for a text-only backend; image parts raise :class:`LLMRequestError`.

    Raising (rather than dropping the picture) matters: the caller then records a failure that a
    rerun retries, never a description written without the image.
    """
    content = message["content"]
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        if part.get("type") == "text":
            texts.append(part["text"])  # type: ignore[typeddict-item]
        else:
            raise LLMRequestError(f"{backend} reads text only and cannot take a {part.get('type')!r} content part; "
                                  "use an OpenAI-compatible server with a vision model for images")
    return "\n".join(texts)


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
