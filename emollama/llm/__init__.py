"""Chat LLM backends shared by every part of emollama that talks to a language model.

The judge in :mod:`emollama.evaluate` and the MERR annotator both need "send these messages, get
text back" with the same guarantees: bounded time, retries that back off, a cap on parallel
requests, and a cache that lets a run be audited and repeated without calling the model again.
Keeping that in one small layer means those guarantees are written (and tested) once.
"""

from __future__ import annotations

from emollama.llm.backend import (
    ChatBackend,
    ChatMessage,
    ChatReply,
    LLMError,
    LLMReplyError,
    LLMRequestError,
    LLMTimeoutError,
)
from emollama.llm.cache import CachedBackend, CacheMissError, request_key
from emollama.llm.openai_http import OpenAICompatibleBackend

__all__ = [
    "CacheMissError",
    "CachedBackend",
    "ChatBackend",
    "ChatMessage",
    "ChatReply",
    "LLMError",
    "LLMReplyError",
    "LLMRequestError",
    "LLMTimeoutError",
    "OpenAICompatibleBackend",
    "request_key",
]
