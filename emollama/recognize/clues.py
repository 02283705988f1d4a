"""The ``clues`` tier: per-modality evidence from a :class:`Perception`, late fusion, reasoning.

Evidence per modality (each with the reliability measured on this clip, see
:mod:`emollama.recognize.fusion`): the face head's expression probabilities, the AU-prototype
rules at the peak frame (half weight on a population baseline), the voice head (or, without it,
arousal from prosody), and the text head with emotion-word cues. Fusion gives the scores; the
reasoning paragraph is written from the measured clues only.
"""

from __future__ import annotations

import time

from emollama.labels import LabelSet, get_label_set
from emollama.perception.pipeline import Perception
from emollama.recognize.au_rules import au_emotion_scores
from emollama.recognize.fusion import (
    BASE_WEIGHTS,
    ModalityEvidence,
    emotional_content,
    face_confirmed,
    face_reliability,
    fuse,
    voice_reliability,
    words_reliability,
)
from emollama.recognize.reasoning import write_reasoning
from emollama.recognize.result import build_result, uniform_scores
from emollama.schema import AnalysisResult, ModalityScores


def clues_evidence(p: Perception) -> list[ModalityEvidence]:
    """The evidence each present modality contributes to fusion."""
    from emollama.perception.voice import voice_label_scores

    out: list[ModalityEvidence] = []
    face, fc = p.face, p.face.clues
    if face_confirmed(fc) and face.expression_probs:  # an unconfirmed face-like region: see face_warnings
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
                                    words_reliability(words.source, words.text, words.asr_confidence)
                                    * emotional_content(p.text_probs),
                                    "text head (GoEmotions+MELD) + emotion words"))
    return out


def face_warnings(p: Perception) -> list[str]:
    """Why the face was left out although the mesh found one."""
    fc = p.face.clues
    if fc.status == "ok" and not face_confirmed(fc):
        return ["the face mesh fitted a face-like region that the face detector never confirmed (upside down, "
                "a drawing, or not a face?); the face is not used"]
    return []


#: How the modalities are combined: the learned Conv-Attention head (default: it wins on the dev
#: clips, see docs/heads.md) or the hand-set log-linear pooling of :mod:`emollama.recognize.fusion`.
FUSION_METHODS = ("learned", "handset")
DEFAULT_FUSION = "learned"
HANDSET_NAME = "hand-set log-linear pooling (emollama)"


def check_fusion(name: str, option: str = "fusion") -> str:
    """``name`` if it is a fusion method, else one :class:`~emollama.errors.InputError` line."""
    if name not in FUSION_METHODS:
        from emollama.errors import InputError

        raise InputError(f"unknown {option} {name!r}; choose one of: {', '.join(FUSION_METHODS)}")
    return name


class CluesRecognizer:
    """Perception → fused label, scores and reasoning.

    ``fusion="learned"`` runs the shipped Conv-Attention head (:mod:`emollama.recognize.conv_attention`)
    on the clip's per-modality features; the hand-set pooling still runs, for the per-modality
    scores in the result and for the labels the head has no class for (see
    :func:`~emollama.recognize.conv_attention.onto_label_set`). ``fusion="handset"`` is the
    arithmetic pooling alone, as before the head existed.
    """

    tier = "clues"
    stage = "fusion"

    def __init__(self, fusion: str = DEFAULT_FUSION) -> None:
        self.fusion = check_fusion(fusion)
        self.learned = None
        if fusion == "learned":
            from emollama.recognize.conv_attention import LearnedFusion

            self.learned = LearnedFusion.shipped()

    def recognize(self, p: Perception, label_set: str) -> AnalysisResult:
        labels = get_label_set(label_set)
        t = time.perf_counter()
        evidence = clues_evidence(p)
        warnings = list(p.warnings) + face_warnings(p)
        models = dict(p.models)
        label: str | None = None
        if evidence:
            scores, per_modality = fuse(evidence, labels)
            if sum(m.weight for m in per_modality) > 0:
                if self.learned is not None:
                    scores, per_modality, models["fusion"] = self._learned(p, evidence, scores, per_modality,
                                                                           labels)
                label = max(scores, key=scores.__getitem__)
            else:
                warnings.append("every modality had zero reliability (e.g. a face the detector could not "
                                "confirm): no emotion could be recognised")
        else:
            scores, per_modality = uniform_scores(labels), []
            warnings.append("no usable face, voice or words: no emotion could be recognised")
        models.setdefault("fusion", HANDSET_NAME)
        reasoning = write_reasoning(p.clues, scores, label, per_modality)
        p.timings["fusion_and_reasoning_s"] = time.perf_counter() - t
        return build_result(p, tier=self.tier, labels=labels, label=label, scores=scores, reasoning=reasoning,
                            models=models, warnings=warnings, modality_scores=per_modality)

    def _learned(self, p: Perception, evidence: list[ModalityEvidence], handset: dict[str, float],
                 per_modality: list[ModalityScores], labels: LabelSet
                 ) -> tuple[dict[str, float], list[ModalityScores], str]:
        """The head's scores on ``labels``, each modality's weight, and the fusion's name.

        The weights are the head's attention, except for the words: they enter through the words
        term after the head (:func:`~emollama.recognize.conv_attention.with_words`), so their
        weight is that term's (prior × reliability). When the head has nothing to read (only the
        prosody-arousal fallback of the voice), the hand-set result stands and is named as such.
        """
        from emollama.recognize.conv_attention import onto_label_set, with_words
        from emollama.recognize.fusion_inputs import from_perception

        x = from_perception(p)
        if not any(x.present.values()):
            return handset, per_modality, HANDSET_NAME
        probs, attention = self.learned.predict(x)  # type: ignore[union-attr]
        words = next((e for e in evidence if e.modality == "words"), None)
        if words is not None:
            probs = with_words(probs, words.probs, words.reliability)
            attention["words"] = BASE_WEIGHTS["words"] * words.reliability
        scores = onto_label_set(probs, handset, labels)
        weighted = [m.model_copy(update={"weight": round(attention.get(m.modality, 0.0), 3)}) for m in per_modality]
        return {y: round(v, 4) for y, v in scores.items()}, weighted, self.learned.name  # type: ignore[union-attr]
