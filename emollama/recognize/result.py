"""The one place an :class:`~emollama.schema.AnalysisResult` is assembled, for every tier.

Why: each tier decides the label, scores and reasoning its own way, but the rest of the result —
media facts, clues, model names, timings, warnings, the version stamp — comes from the same
:class:`~emollama.perception.pipeline.Perception` and must be filled the same way, or JSON
consumers (``evaluate``, batch JSONL readers) would see tiers that disagree on what a field means.
"""

from __future__ import annotations

import time

from emollama.labels import LabelSet
from emollama.perception.pipeline import Perception
from emollama.schema import AnalysisResult, ModalityScores


def uniform_scores(labels: LabelSet) -> dict[str, float]:
    """What a result without a label reports: every label equally likely (never a silent "neutral")."""
    return {y: round(1.0 / len(labels), 4) for y in labels.labels}


def build_result(p: Perception, *, tier: str, labels: LabelSet, label: str | None, scores: dict[str, float],
                 reasoning: str, models: dict[str, str], warnings: list[str],
                 modality_scores: list[ModalityScores] | None = None) -> AnalysisResult:
    """Stamp the total time and assemble the result of one clip."""
    from emollama import __version__

    p.timings["total_s"] = time.perf_counter() - p.started
    return AnalysisResult(
        emollama_version=__version__, tier=tier, media=p.media, label_set=labels.name, label=label,
        scores=scores, reasoning=reasoning, clues=p.clues, modality_scores=modality_scores or [],
        models=models, timings_s={k: round(v, 3) for k, v in p.timings.items()}, warnings=warnings,
    )
