"""Late fusion of per-modality label scores (the ``clues`` tier).

Rule (weighted log-linear pooling): for every label y of the target set,

    log s(y) = Σ_m  w_m · r_m · log p̃_m(y)      then s is renormalised (softmax),

where p_m are modality m's probabilities projected onto the label set
(:func:`emollama.labels.project_scores`). A label the modality's model cannot express at all
(the face network has no *doubt*) gets the uniform 1/K - no opinion, neither for nor against - and
the expressible labels share the rest. p̃_m = (1-ε)·p_m + ε/K keeps one confident zero from
vetoing a label, w_m is a fixed prior weight per modality (:data:`BASE_WEIGHTS`) and r_m ∈ [0, 1]
is the modality's reliability for *this* clip, measured by the pipeline (face coverage and
detection confidence, speech duration and VAD confidence, ASR confidence and transcript length).
A missing modality has r_m = 0 and drops out exactly. A later issue learns w_m.

Calibration (issue 3): the face, voice and text heads each divide their logits by a temperature
fitted on their own dev data (``emollama.heads.calibration``; ECE before/after in each
``emollama/assets/heads/*/MODEL_CARD.md``), so p_m are calibrated probabilities and the pooled
sum adds comparable log-probabilities. Reliability signals per modality, unchanged:
face = sqrt(coverage) x mean detection confidence; voice = min(1, speech s / 2) x VAD confidence;
words = min(1, characters / 12), times the ASR confidence for ASR text (0.5 when unknown).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from emollama.labels import LabelSet, get_label_set, project_scores, reachable_labels
from emollama.schema import ModalityScores

#: Prior trust per modality, reflecting how informative each cue was on the example clips and
#: in the literature (face > words > AU rules > prosody-only arousal).
BASE_WEIGHTS: dict[str, float] = {"face": 1.0, "words": 0.8, "action_units": 0.6, "voice": 0.4}
EPSILON = 0.05


@dataclass(frozen=True)
class ModalityEvidence:
    modality: str
    probs: Mapping[str, float]  # canonical labels → probability
    reliability: float  # 0..1, from quality signals
    source: str


def fuse(evidence: list[ModalityEvidence], label_set: LabelSet | str
         ) -> tuple[dict[str, float], list[ModalityScores]]:
    """Fused scores over ``label_set`` and each modality's projected scores with its weight."""
    labels = get_label_set(label_set)
    k = len(labels)
    log_total = np.zeros(k)
    per_modality = []
    for ev in evidence:
        weight = BASE_WEIGHTS.get(ev.modality, 0.5) * float(np.clip(ev.reliability, 0.0, 1.0))
        projected = project_scores(ev.probs, labels)
        reachable = reachable_labels(ev.probs, labels)
        share = len(reachable) / k
        p = np.array([projected[y] * share if y in reachable else 1.0 / k for y in labels.labels])
        p = (1 - EPSILON) * p + EPSILON / k
        log_total += weight * np.log(p)
        per_modality.append(ModalityScores(
            modality=ev.modality, scores={y: round(float(v), 4) for y, v in zip(labels.labels, p, strict=True)},
            weight=round(weight, 3), source=ev.source))
    fused = np.exp(log_total - log_total.max())
    fused /= fused.sum()
    return {y: round(float(v), 4) for y, v in zip(labels.labels, fused, strict=True)}, per_modality


def face_reliability(coverage: float, mean_confidence: float) -> float:
    """A face seen in few frames, or detected hesitantly, counts less."""
    return float(np.sqrt(np.clip(coverage, 0, 1)) * np.clip(mean_confidence, 0, 1))


def voice_reliability(speech_s: float, vad_confidence: float) -> float:
    """Prosody from under two seconds of speech is thin evidence."""
    return float(min(1.0, speech_s / 2.0) * np.clip(vad_confidence, 0, 1))


def words_reliability(source: str, text: str, asr_confidence: float | None) -> float:
    """A given subtitle is trusted; ASR text by its own confidence; very short text counts less."""
    length = min(1.0, len(text.strip()) / 12.0)
    if source == "subtitle":
        return length
    return length * float(np.clip(asr_confidence if asr_confidence is not None else 0.5, 0, 1))
