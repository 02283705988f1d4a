"""The analysis engine a server worker process holds: models loaded once, one job at a time.

An engine is built inside the worker process from an :class:`EngineSpec` (a ``module:callable``
and its keyword options), so the server's own process never imports torch and a crashed worker
takes no state with it. :class:`AnalysisEngine` is the real one: the same
:class:`~emollama.api.Analyzer` as ``emollama analyze``, with one recogniser per served tier over a
single set of perception models.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = ["AnalysisEngine", "Emit", "Engine", "EngineSpec", "SERVED_TIERS"]

#: Tiers a server can hold: the offline clues tier and the multimodal LLM.
SERVED_TIERS = ("clues", "emotion-llama")

#: ``emit(event, data)``: a progress event for the job being run (stage, media, token).
Emit = Callable[[str, dict[str, Any]], None]


class Engine(Protocol):
    """What a worker needs: a description of what it loaded, and a way to run one job."""

    def describe(self) -> dict[str, Any]: ...

    def run(self, job: dict[str, Any], emit: Emit) -> dict[str, Any]: ...


@dataclass(frozen=True)
class EngineSpec:
    """How a worker process builds its engine: ``factory`` is ``"module:callable"``."""

    factory: str = "emollama.serve.engine:AnalysisEngine"
    options: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Engine:
        module, _, name = self.factory.partition(":")
        return getattr(importlib.import_module(module), name)(**self.options)


class AnalysisEngine:
    """Perception models plus the recognisers of the served tiers, loaded once per worker."""

    def __init__(self, tiers: list[str], model_dir: str | None = None, fusion: str = "learned", asr: bool = True,
                 max_duration_s: float | None = None) -> None:
        from emollama.api import Analyzer, load_recognizer
        from emollama.settings import AnalysisSettings

        self._emit: Emit | None = None
        self.recognizers = {}
        for tier in tiers:
            if tier == "clues":
                self.recognizers[tier] = load_recognizer("clues", fusion=fusion)
            elif tier == "emotion-llama":
                self.recognizers[tier] = load_recognizer("emotion-llama", model_dir, on_text=self._on_text)
            else:
                raise ValueError(f"tier {tier!r} cannot be served; choose from {SERVED_TIERS}")
        settings = AnalysisSettings(asr=asr).replace(max_duration_s=max_duration_s)
        self.analyzer = Analyzer(settings, recognizer=self.recognizers[tiers[0]])

    def _on_text(self, task: str, piece: str) -> None:
        if self._emit is not None:
            self._emit("token", {"task": task, "text": piece})

    def describe(self) -> dict[str, Any]:
        perception = self.analyzer.model_names()
        return {"tiers": {tier: {"recognizer": type(r).__name__, "perception": perception}
                          for tier, r in self.recognizers.items()}}

    def run(self, job: dict[str, Any], emit: Emit) -> dict[str, Any]:
        """Analyse ``job["path"]``; the answer names the upload, never the server's temporary path."""
        self.analyzer.recognizer = self.recognizers[job["tier"]]
        last = [0.0]

        def media(done_s: float, total_s: float) -> None:  # a few updates a second are plenty for a bar
            now = time.monotonic()
            if now - last[0] >= 0.2 or done_s >= total_s:
                last[0] = now
                emit("media", {"done_s": round(min(done_s, total_s), 2), "total_s": round(total_s, 2)})

        self._emit = emit
        try:
            emit("stage", {"stage": "decode"})
            result = self.analyzer.analyze(Path(job["path"]), subtitle=job.get("subtitle"),
                                           label_set=job["labels"], fps=job["fps"],
                                           progress=lambda stage: emit("stage", {"stage": stage}),
                                           media_progress=media)
        finally:
            self._emit = None
        data = json.loads(result.model_dump_json())
        data["media"]["path"] = job["name"]
        return data
