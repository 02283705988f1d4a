"""Chat LLM backends shared by every part of emollama that talks to a language model.

The judge in :mod:`emollama.evaluate` and the MERR annotator both need "send these messages, get
text back" with the same guarantees: bounded time, retries that back off, a cap on parallel
requests, and a cache that lets a run be audited and repeated without calling the model again.
Keeping that in one small layer means those guarantees are written (and tested) once.
Messages may carry images (OpenAI content parts, :func:`image_part`) for vision-capable models
behind the HTTP backend; :func:`make_backend` turns a ``--llm`` spec into a (cached) backend.
"""

from __future__ import annotations

from emollama.llm.backend import (
    ChatBackend,
    ChatMessage,
    ChatReply,
    ContentPart,
    ImagePart,
    LLMError,
    LLMReplyError,
    LLMRequestError,
    LLMTimeoutError,
    TextPart,
    has_images,
    image_part,
    message_text,
    text_part,
)
from emollama.llm.cache import CachedBackend, CacheMissError, request_key
from emollama.llm.factory import LLMSpec, make_backend
from emollama.llm.openai_http import OpenAICompatibleBackend

__all__ = [
    "CacheMissError",
    "CachedBackend",
    "ChatBackend",
    "ChatMessage",
    "ChatReply",
    "ContentPart",
    "ImagePart",
    "LLMError",
    "LLMReplyError",
    "LLMRequestError",
    "LLMSpec",
    "LLMTimeoutError",
    "OpenAICompatibleBackend",
    "TextPart",
    "has_images",
    "image_part",
    "make_backend",
    "message_text",
    "request_key",
    "text_part",
]
