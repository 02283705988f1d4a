"""A content-addressed on-disk cache in front of any :class:`ChatBackend`.

The key is a SHA-256 of everything that decides the answer (model, messages, temperature,
max_tokens), so a changed prompt can never be served a stale reply. Only successful replies are
written: a failure raises and leaves no file, so the next run asks again instead of replaying an
error forever. Each entry is a readable JSON file holding the request and the raw reply, which is
what makes a judged run auditable and re-scorable offline.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emollama.llm.backend import ChatBackend, ChatMessage, ChatReply, LLMError

CACHE_FORMAT = "emollama.llm-cache/1"


class CacheMissError(LLMError):
    """``offline=True`` was asked for and the cache has no reply for this request."""


def request_key(model: str, messages: Sequence[ChatMessage], temperature: float, max_tokens: int) -> str:
    """Stable hex digest of a request (key order and whitespace in the JSON cannot change it)."""
    canonical = json.dumps(
        {
            "model": model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "temperature": float(temperature),
            "max_tokens": int(max_tokens),
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class CachedBackend:
    """Wrap ``backend`` with a disk cache under ``cache_dir`` (one JSON file per request).

    With ``offline=True`` the inner backend is never called: a miss raises
    :class:`CacheMissError`, which lets a user re-score a finished run without network access.
    """

    def __init__(self, backend: ChatBackend, cache_dir: str | Path, *, offline: bool = False) -> None:
        self.backend = backend
        self.cache_dir = Path(cache_dir)
        self.offline = offline
        self.hits = 0
        self.misses = 0

    @property
    def model(self) -> str:
        return self.backend.model

    def path_for(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.json"

    def _load(self, path: Path) -> ChatReply | None:
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            return ChatReply(text=entry["text"], model=entry["model"], raw=entry.get("raw", {}), cached=True)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            # A torn or hand-edited file is treated as absent and overwritten by a fresh answer.
            return None

    def _store(self, path: Path, entry: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(entry, handle, ensure_ascii=False, indent=1)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def complete(
        self, messages: Sequence[ChatMessage], *, temperature: float = 0.0, max_tokens: int = 512
    ) -> ChatReply:
        key = request_key(self.model, messages, temperature, max_tokens)
        path = self.path_for(key)
        cached = self._load(path)
        if cached is not None:
            self.hits += 1
            return cached
        if self.offline:
            raise CacheMissError(f"no cached reply for request {key[:12]} in {self.cache_dir} (offline mode)")
        reply = self.backend.complete(messages, temperature=temperature, max_tokens=max_tokens)
        self.misses += 1
        self._store(
            path,
            {
                "format": CACHE_FORMAT,
                "key": key,
                "request": {
                    "model": self.model,
                    "messages": [dict(m) for m in messages],
                    "temperature": temperature,
                    "max_tokens": max_tokens,
                },
                "model": reply.model,
                "text": reply.text,
                "raw": reply.raw,
            },
        )
        return reply
