"""Late fusion of per-modality label scores (the ``clues`` tier).

Rule (weighted log-linear pooling, per label over the modalities that can judge it): with
v_m = w_m · r_m and M(y) the modalities whose model can express label y,

    log s(y) = V · Σ_{m ∈ M(y)} v_m log p̃_m(y) / Σ_{m ∈ M(y)} v_m,     V = Σ_m v_m,

then s is renormalised (softmax). When every modality can express every label this is plain
log-linear pooling, Σ_m v_m log p̃_m(y). A modality whose model has no such class (the face network
has no *doubt*) neither supports nor vetoes y: y is judged by the weighted geometric mean of the
modalities that can, so a label no modality favours cannot win just because some cannot see it,
and a label no modality can express gets score 0. p_m are modality m's probabilities projected
onto the label set (:func:`emollama.labels.project_scores`) and renormalised over the labels it can
express; p̃_m = (1-ε)·p_m + ε/K keeps one confident zero from vetoing a label. w_m is a fixed prior
weight per modality (:data:`BASE_WEIGHTS`) and r_m ∈ [0, 1] the modality's reliability for *this*
clip, measured by the pipeline (face coverage and detection confidence, speech duration and VAD
confidence, ASR confidence and transcript length). A missing modality has r_m = 0 and drops out
exactly. Heads trained on one acted corpus are over-confident elsewhere, so their probabilities are
first mixed with uniform by :data:`DOMAIN_SMOOTHING`. The learned alternative to this rule is
:mod:`emollama.recognize.conv_attention` (the default since issue 20).

Calibration (issue 3): the face, voice and text heads each divide their logits by a temperature
fitted on their own dev data (``emollama.heads.calibration``; ECE before/after in each
``emollama/assets/heads/*/MODEL_CARD.md``), so p_m are calibrated probabilities and the pooled
sum adds comparable log-probabilities. Reliability signals per modality, unchanged:
face = sqrt(coverage) x mean detection confidence (at least 0.3 for a face the mesh tracks but the
detector does not confirm, e.g. a tight crop); voice = min(1, speech s / 2) x VAD confidence;
words = min(1, characters / 12), times the ASR confidence for ASR text (0.5 when unknown), times
the text's emotional content (:func:`emotional_content`).

Absence of evidence (issue 20): lexically neutral words ("Kids are talking by the door", said
angrily) are not evidence of a neutral feeling, only the absence of evidence from the words. With
the words weighted by their emotional content, 1 - p_words(neutral), such a transcript drops out of
the pooling instead of outvoting the face and the voice; words that carry emotion keep their
weight. On the RAVDESS dev takes this alone took the hand-set fusion from 0.346 to 0.538 (dev).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from emollama.labels import LabelSet, get_label_set, project_scores, reachable_labels
from emollama.schema import FaceClues, ModalityScores

#: Prior trust per modality, reflecting how informative each cue was on the example clips and
#: in the literature (face > words > AU rules > prosody-only arousal).
BASE_WEIGHTS: dict[str, float] = {"face": 1.0, "words": 0.8, "action_units": 0.6, "voice": 0.4}
EPSILON = 0.05
#: Share of uniform mixed into a modality's probabilities before pooling. The voice head is trained
#: on 2-second acted German (EmoDB) and gives 0.999 on Mandarin TV clips; halving its certainty
#: keeps it from vetoing labels on its own.
DOMAIN_SMOOTHING: dict[str, float] = {"voice": 0.5}
#: Least reliability of a face the detector confirmed only hesitantly (e.g. a tight crop).
MESH_ONLY_CONFIDENCE = 0.3
#: Below this mean detection confidence the detector never confirmed the face at all: the mesh fitted
#: a face-like region (an upside-down photo gave 0.00), and the face is not used.
UNCONFIRMED_FACE = 0.01
#: Least weight factor of words the text head reads as neutral (see :func:`emotional_content`).
MIN_EMOTIONAL_CONTENT = 0.05


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
    weighted_log = np.zeros(k)  # Σ v_m log p̃_m(y) over modalities that can express y
    judged_by = np.zeros(k)  # Σ v_m over the same modalities
    per_modality = []
    for ev in evidence:
        weight = BASE_WEIGHTS.get(ev.modality, 0.5) * float(np.clip(ev.reliability, 0.0, 1.0))
        projected = project_scores(ev.probs, labels)
        can = np.array([y in reachable_labels(ev.probs, labels) for y in labels.labels])
        p = np.array([projected[y] for y in labels.labels]) * can
        if p.sum() > 0:
            p = p / p.sum()
            mix = DOMAIN_SMOOTHING.get(ev.modality, 0.0)
            p = np.where(can, (1 - mix) * p + mix / can.sum(), 0.0)
            smoothed = (1 - EPSILON) * p + EPSILON / can.sum()
            weighted_log += np.where(can, weight * np.log(np.where(can, smoothed, 1.0)), 0.0)
            judged_by += np.where(can, weight, 0.0)
        per_modality.append(ModalityScores(
            modality=ev.modality, scores={y: round(float(v), 4) for y, v in zip(labels.labels, p, strict=True)},
            weight=round(weight, 3), source=ev.source))
    total = float(sum(m.weight for m in per_modality))
    if total <= 0 or not np.any(judged_by > 0):
        return {y: round(1.0 / k, 4) for y in labels.labels}, per_modality
    log_s = np.full(k, -np.inf)
    ok = judged_by > 0
    log_s[ok] = total * weighted_log[ok] / judged_by[ok]
    fused = np.exp(log_s - log_s[ok].max())
    fused /= fused.sum()
    return {y: round(float(v), 4) for y, v in zip(labels.labels, fused, strict=True)}, per_modality


def face_confirmed(face: FaceClues) -> bool:
    """Whether the face detector confirmed the tracked face (else the mesh fitted a face-like region).

    The one rule for every consumer: the hand-set evidence, the learned head's inputs and the MERR
    filter's face-model reading all leave an unconfirmed face out.
    """
    return face.status == "ok" and face.mean_detection_confidence >= UNCONFIRMED_FACE


def face_reliability(coverage: float, mean_confidence: float) -> float:
    """A face seen in few frames, or detected hesitantly, counts less; one the detector never confirmed, not at all."""
    if mean_confidence < UNCONFIRMED_FACE:
        return 0.0
    confidence = max(float(np.clip(mean_confidence, 0, 1)), MESH_ONLY_CONFIDENCE)
    return float(np.sqrt(np.clip(coverage, 0, 1)) * confidence)


def voice_reliability(speech_s: float, vad_confidence: float) -> float:
    """Prosody from under two seconds of speech is thin evidence."""
    return float(min(1.0, speech_s / 2.0) * np.clip(vad_confidence, 0, 1))


def emotional_content(text_probs: Mapping[str, float]) -> float:
    """How much emotion the words carry: 1 - the text head's neutral probability, at least
    :data:`MIN_EMOTIONAL_CONTENT` (words alone still give a label, with little confidence)."""
    return float(np.clip(1.0 - float(text_probs.get("neutral", 0.0)), MIN_EMOTIONAL_CONTENT, 1.0))


def words_reliability(source: str, text: str, asr_confidence: float | None) -> float:
    """A given subtitle is trusted; ASR text by its own confidence; very short text counts less."""
    length = min(1.0, len(text.strip()) / 12.0)
    if source == "subtitle":
        return length
    return length * float(np.clip(asr_confidence if asr_confidence is not None else 0.5, 0, 1))
