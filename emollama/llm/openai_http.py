"""A chat backend for any server that speaks the OpenAI ``/v1/chat/completions`` protocol.

Ollama, vLLM, llama.cpp's server, LM Studio and the hosted OpenAI API all accept the same request,
so one small client built on the standard library covers them without a new dependency.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from emollama.llm.backend import (
    ChatMessage,
    ChatReply,
    LLMError,
    LLMReplyError,
    LLMRequestError,
    LLMTimeoutError,
)

#: HTTP statuses worth retrying: rate limits and server-side trouble. A 400/401/404 will not get
#: better by asking again, so those fail at once with the server's message.
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


def _endpoint(base_url: str) -> str:
    """Accept ``http://host:port``, ``…/v1`` or the full ``…/chat/completions`` URL alike."""
    url = base_url.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    if not url.endswith("/v1"):
        url += "/v1"
    return url + "/chat/completions"


class OpenAICompatibleBackend:
    """Blocking HTTP client with timeouts, retries with exponential backoff, and a concurrency cap.

    ``max_concurrency`` bounds in-flight requests across all threads that share this object, so a
    caller can fan out with a thread pool without overrunning a small local server. ``sleep`` is
    injectable so tests of the backoff do not have to wait in real time.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        max_concurrency: int = 4,
        extra_body: dict[str, Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self.url = _endpoint(base_url)
        self._model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.extra_body = dict(extra_body or {})
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._sleep = sleep

    @property
    def model(self) -> str:
        return self._model

    def _delay(self, attempt: int) -> float:
        """Exponential backoff with a little jitter so parallel workers do not retry in lockstep."""
        base = min(self.max_backoff_s, self.backoff_s * (2**attempt))
        return base * (1.0 + 0.1 * random.random())

    def _post(self, body: bytes) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with self._slots, urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            payload = response.read()
        try:
            decoded = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            snippet = payload[:120].decode("utf-8", "replace")
            raise LLMReplyError(f"{self.url} returned a body that is not JSON: {snippet!r}") from exc
        if not isinstance(decoded, dict):
            raise LLMReplyError(f"{self.url} returned JSON that is not an object")
        return decoded

    def _parse(self, decoded: dict[str, Any]) -> ChatReply:
        try:
            content = decoded["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            if "error" in decoded:
                raise LLMReplyError(f"{self.url} returned an error object: {decoded['error']}") from exc
            raise LLMReplyError(f"{self.url} returned JSON without choices[0].message.content") from exc
        if not isinstance(content, str):
            raise LLMReplyError(f"{self.url} returned a non-text message content")
        return ChatReply(text=content, model=str(decoded.get("model") or self._model), raw=decoded)

    def complete(
        self, messages: Sequence[ChatMessage], *, temperature: float = 0.0, max_tokens: int = 512
    ) -> ChatReply:
        """Send one chat request; retry transient failures; raise :class:`LLMError` when out of tries."""
        body = json.dumps(
            {
                **self.extra_body,
                "model": self._model,
                "messages": [dict(m) for m in messages],
                "temperature": temperature,
                "max_tokens": max_tokens,
                "stream": False,
            },
            ensure_ascii=False,
        ).encode("utf-8")
        last: LLMError | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self._sleep(self._delay(attempt - 1))
            try:
                return self._parse(self._post(body))
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:200].decode("utf-8", "replace").strip()
                last = LLMRequestError(f"{self.url} answered HTTP {exc.code}: {detail or exc.reason}")
                if exc.code not in RETRYABLE_STATUS:
                    raise last from exc
            except TimeoutError as exc:
                last = LLMTimeoutError(f"{self.url} did not answer within {self.timeout_s:g} s")
                last.__cause__ = exc
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, TimeoutError):
                    last = LLMTimeoutError(f"{self.url} did not answer within {self.timeout_s:g} s")
                else:
                    last = LLMRequestError(f"cannot reach {self.url}: {exc.reason}")
            except (OSError, http.client.HTTPException) as exc:
                last = LLMRequestError(f"connection to {self.url} failed: {exc}")
            except LLMReplyError as exc:
                last = exc
        assert last is not None
        tries = self.max_retries + 1
        raise type(last)(f"{last} (gave up after {tries} attempt{'s' if tries > 1 else ''})")
