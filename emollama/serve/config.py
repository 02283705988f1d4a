"""The server's settings: one dataclass, a field per ``emollama serve`` option."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from emollama.media.decode import DEFAULT_MAX_DURATION_S

__all__ = ["ServeConfig"]


@dataclass(frozen=True)
class ServeConfig:
    """What the app and its worker pool need to know."""

    tiers: tuple[str, ...] = ("clues",)
    """Tiers the workers load; the first is a request's default. Each worker holds all of them."""
    model_dir: str | None = None
    """The emotion-llama model folder (None: the shipped emotion-llama-mini)."""
    fusion: str = "learned"
    """The clues tier's fusion ('learned' or 'handset')."""
    asr: bool = True
    """Transcribe speech when no subtitle is sent (off saves seconds per request)."""
    workers: int = 1
    """Worker processes; each loads every model once (about 1.5-2 GB of memory each)."""
    max_queue: int = 8
    """Requests that may wait for a worker; one more is answered 429 with Retry-After."""
    timeout_s: float = 300.0
    """A request still running after this many seconds is stopped (its worker is replaced) and answered 504."""
    max_upload_mb: float = 200.0
    """Largest media upload, checked while it streams in (413 beyond it)."""
    max_duration_s: float = DEFAULT_MAX_DURATION_S
    """Longest media accepted (413 beyond it), checked from the file's header before any work."""
    allow_root: Path | None = None
    """When set, requests may name a file under this folder (form field ``path``) instead of uploading."""
    api_key: str | None = field(default=None, repr=False)
    """When set, every /v1 endpoint but health needs ``Authorization: Bearer <key>``."""
    tmp_dir: Path | None = None
    """Where each request's private folder is made (default: the system's temporary folder)."""
    engine_factory: str = "emollama.serve.engine:AnalysisEngine"
    """``module:callable`` building a worker's engine; the default is the real analysis."""

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)

    def engine_options(self) -> dict[str, object]:
        """The keyword arguments of the default engine."""
        return {"tiers": list(self.tiers), "model_dir": self.model_dir, "fusion": self.fusion, "asr": self.asr,
                "max_duration_s": self.max_duration_s}
