"""A content-addressed on-disk cache in front of any :class:`ChatBackend`.

The key is a SHA-256 of everything that decides the answer (model, messages, temperature,
max_tokens), so a changed prompt can never be served a stale reply. An inline image enters the key
through the SHA-256 of its decoded bytes (and its MIME type): a different picture is a different
request, while the same picture re-encoded to other base64 text is not. Cache files store that
digest in place of the base64 payload, so a cache of vision requests stays small and readable.
Only successful replies are written: a failure raises and leaves no file, so the next run asks
again instead of replaying an error forever. Each entry is a readable JSON file holding the
request and the raw reply, which is what makes a judged run auditable and re-scorable offline.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emollama.files import atomic_write_text
from emollama.llm.backend import ChatBackend, ChatMessage, ChatReply, LLMError, decode_data_url

CACHE_FORMAT = "emollama.llm-cache/1"


class CacheMissError(LLMError):
    """``offline=True`` was asked for and the cache has no reply for this request."""


def _canonical_part(part: dict[str, Any]) -> dict[str, Any]:
    """A content part with any inline image replaced by its MIME type, byte count and SHA-256."""
    if part.get("type") != "image_url":
        return dict(part)
    image = dict(part.get("image_url") or {})
    decoded = decode_data_url(str(image.get("url", "")))
    if decoded is not None:
        mime, data = decoded
        image["url"] = f"sha256:{hashlib.sha256(data).hexdigest()}"
        image["mime"] = mime
        image["bytes"] = len(data)
    return {**part, "image_url": image}


def canonical_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """Messages as they enter the key and the cache file (plain strings stay plain strings, so
    the keys of text-only requests are the same as before images were supported)."""
    out = []
    for m in messages:
        content = m["content"]
        if not isinstance(content, str):
            content = [_canonical_part(dict(p)) for p in content]  # type: ignore[misc]
        out.append({"role": m["role"], "content": content})
    return out


def request_key(model: str, messages: Sequence[ChatMessage], temperature: float, max_tokens: int) -> str:
    """Stable hex digest of a request (key order and whitespace in the JSON cannot change it)."""
    canonical = json.dumps(
        {
            "model": model,
            "messages": canonical_messages(messages),
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
        atomic_write_text(path, json.dumps(entry, ensure_ascii=False, indent=1))

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
                    "messages": canonical_messages(messages),
                    "temperature": temperature,
                    "max_tokens": max_tokens,
                },
                "model": reply.model,
                "text": reply.text,
                "raw": reply.raw,
            },
        )
        return reply
