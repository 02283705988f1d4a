"""Light engines for the worker-pool tests: they exercise the pool's mechanics (time limit, crashes,
load failures) in seconds, where the real analysis would take a model load per case. The API tests
in test_api.py run the real :class:`~emollama.serve.engine.AnalysisEngine`."""

from __future__ import annotations

import time
from typing import Any


class ScriptedEngine:
    """Behaves by the upload's name: ``sleep*`` runs long, ``crash*`` raises, anything else answers."""

    def __init__(self, fail_to_load: bool = False, **_options: Any) -> None:
        if fail_to_load:
            from emollama.errors import ModelUnavailableError

            raise ModelUnavailableError("the test model folder is missing")

    def describe(self) -> dict[str, Any]:
        return {"tiers": {"clues": {"recognizer": "ScriptedEngine"}}}

    def run(self, job: dict[str, Any], emit: Any) -> dict[str, Any]:
        emit("stage", {"stage": "decode"})
        if job["name"].startswith("sleep"):
            time.sleep(60)
        if job["name"].startswith("crash"):
            raise RuntimeError("a bug in the engine")
        return {"label": "neutral", "media": {"path": job["name"], "kind": job["kind"]}}
