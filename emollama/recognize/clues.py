"""The ``clues`` tier: per-modality evidence from a :class:`Perception`, late fusion, reasoning.

Evidence per modality (each with the reliability measured on this clip, see
:mod:`emollama.recognize.fusion`): the face head's expression probabilities, the AU-prototype
rules at the peak frame (half weight on a population baseline), the voice head (or, without it,
arousal from prosody), and the text head with emotion-word cues. Fusion gives the scores; the
reasoning paragraph is written from the measured clues only.
"""

from __future__ import annotations

import time

from emollama.labels import get_label_set
from emollama.perception.pipeline import Perception
from emollama.recognize.au_rules import au_emotion_scores
from emollama.recognize.fusion import (
    UNCONFIRMED_FACE,
    ModalityEvidence,
    face_reliability,
    fuse,
    voice_reliability,
    words_reliability,
)
from emollama.recognize.reasoning import write_reasoning
from emollama.recognize.result import build_result, uniform_scores
from emollama.schema import AnalysisResult


def clues_evidence(p: Perception) -> list[ModalityEvidence]:
    """The evidence each present modality contributes to fusion."""
    from emollama.perception.voice import voice_label_scores

    out: list[ModalityEvidence] = []
    face, fc = p.face, p.face.clues
    if fc.status == "ok" and fc.mean_detection_confidence < UNCONFIRMED_FACE:
        pass  # a face-like region the detector never confirmed: see face_warnings
    elif fc.status == "ok" and face.expression_probs:
        rel = face_reliability(fc.coverage, fc.mean_detection_confidence)
        out.append(ModalityEvidence("face", face.expression_probs, rel, p.models.get("expression", "face head")))
        if fc.peak is not None:
            au_rel = rel * (1.0 if fc.baseline == "own_least_expressive" else 0.5)
            out.append(ModalityEvidence("action_units", au_emotion_scores(fc.peak.au, face.corner_asymmetry),
                                        au_rel, "AU prototype rules at the peak frame"))
    voice = p.clues.voice
    if voice.status == "ok" and p.voice_probs is not None:
        out.append(ModalityEvidence("voice", p.voice_probs,
                                    voice_reliability(voice.speech_duration_s, voice.vad_confidence),
                                    f"voice head (EmoDB); arousal {voice.head_arousal:+.2f}, "
                                    f"valence {voice.head_valence:+.2f}"))
    elif voice.status == "ok" and voice.arousal is not None:
        out.append(ModalityEvidence("voice", voice_label_scores(voice.arousal),
                                    voice_reliability(voice.speech_duration_s, voice.vad_confidence),
                                    "arousal from prosody"))
    words = p.clues.words
    if words.status == "ok" and p.text_probs:
        out.append(ModalityEvidence("words", p.text_probs,
                                    words_reliability(words.source, words.text, words.asr_confidence),
                                    "text head (GoEmotions+MELD) + emotion words"))
    return out


def face_warnings(p: Perception) -> list[str]:
    """Why the face was left out although the mesh found one."""
    fc = p.face.clues
    if fc.status == "ok" and fc.mean_detection_confidence < UNCONFIRMED_FACE:
        return ["the face mesh fitted a face-like region that the face detector never confirmed (upside down, "
                "a drawing, or not a face?); the face is not used"]
    return []


class CluesRecognizer:
    """Perception → fused label, scores and reasoning. Holds no models: fusion is arithmetic."""

    tier = "clues"
    stage = "fusion"

    def recognize(self, p: Perception, label_set: str) -> AnalysisResult:
        labels = get_label_set(label_set)
        t = time.perf_counter()
        evidence = clues_evidence(p)
        warnings = list(p.warnings) + face_warnings(p)
        label: str | None = None
        if evidence:
            scores, per_modality = fuse(evidence, labels)
            if sum(m.weight for m in per_modality) > 0:
                label = max(scores, key=scores.__getitem__)
            else:
                warnings.append("every modality had zero reliability (e.g. a face the detector could not "
                                "confirm): no emotion could be recognised")
        else:
            scores, per_modality = uniform_scores(labels), []
            warnings.append("no usable face, voice or words: no emotion could be recognised")
        reasoning = write_reasoning(p.clues, scores, label, per_modality)
        p.timings["fusion_and_reasoning_s"] = time.perf_counter() - t
        return build_result(p, tier=self.tier, labels=labels, label=label, scores=scores, reasoning=reasoning,
                            models=dict(p.models), warnings=warnings, modality_scores=per_modality)
