"""Per-modality feature vectors for the learned fusion head, from a :class:`Perception` or from parts.

Why the heads' calibrated log-probabilities and a few prosody measures, not the raw encoder
features (Whisper layers: 2,048 numbers, e5: 384): the fusion is trained on 60 takes of one
actor plus cross-corpus pairs, and the heads' outputs are the summaries that already transfer
across corpora (each head was selected speaker/subject-independently); a read-out over thousands
of raw dimensions would fit the one actor. The layout of every vector is fixed here, once, and
both training (:mod:`emollama.train.fusion`) and inference build it with these functions.

Modalities (a missing one is a zero vector with its mask off):

* ``face``: up to :data:`FACE_FRAMES` frames (evenly resampled when a clip has more), each the
  face head's log-probabilities over its eight classes; frames the detector did not confirm are
  left out. The time axis is kept: the head pools it itself.
* ``action_units``: mean, 90th percentile and standard deviation of each AU over the confident
  frames (landmark AUs need a tracked face of a real clip; face crops from image corpora have none).
* ``voice``: the voice head's log-probabilities (EmoDB classes) plus gain-independent prosody
  (:data:`PROSODY_KEYS`, absolute loudness left out: it measures the microphone, not the voice).
* ``words``: the text head's log-probabilities over its seven classes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from emollama.perception.action_units import AU_NAMES
from emollama.schema import VoiceClues

MODALITIES = ("face", "action_units", "voice", "words")
FACE_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt")
VOICE_LABELS = ("angry", "bored", "disgust", "fear", "happy", "neutral", "sad")
TEXT_LABELS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
#: Prosody entries of :class:`~emollama.schema.VoiceClues` read by the head: (section, key, scale).
#: Dividing by the scale brings each to roughly unit size before the learned standardisation.
PROSODY_KEYS: tuple[tuple[str, str, float], ...] = (
    ("relative", "pitch_level_vs_norm_st", 4.0), ("relative", "pitch_range_st", 4.0),
    ("relative", "pitch_peak_vs_baseline_st", 4.0), ("relative", "final_pitch_change_st", 4.0),
    ("relative", "loudness_peak_vs_baseline_db", 6.0), ("relative", "rate_vs_typical", 0.5),
    ("prosody", "f0_sd_st", 2.0), ("prosody", "voiced_fraction", 0.3), ("prosody", "jitter_local", 0.05),
    ("prosody", "shimmer_local", 0.1), ("prosody", "hnr_db", 5.0),
)
FACE_FRAMES = 32
DIMS: dict[str, int] = {"face": len(FACE_LABELS), "action_units": 3 * len(AU_NAMES),
                        "voice": len(VOICE_LABELS) + len(PROSODY_KEYS), "words": len(TEXT_LABELS)}
_FLOOR = 1e-4


@dataclass
class FusionInputs:
    """One clip's feature vectors: ``face`` is (FACE_FRAMES, 8) with ``face_frames`` valid rows."""

    face: np.ndarray
    face_frames: int
    action_units: np.ndarray
    voice: np.ndarray
    words: np.ndarray
    present: dict[str, bool]

    @classmethod
    def empty(cls) -> FusionInputs:
        return cls(np.zeros((FACE_FRAMES, DIMS["face"]), np.float32), 0, np.zeros(DIMS["action_units"], np.float32),
                   np.zeros(DIMS["voice"], np.float32), np.zeros(DIMS["words"], np.float32),
                   dict.fromkeys(MODALITIES, False))


def log_probs(probs: Mapping[str, float], order: Sequence[str]) -> np.ndarray:
    """Log-probabilities in ``order`` (renormalised over those classes, floored so a zero stays finite)."""
    p = np.array([max(float(probs.get(k, 0.0)), 0.0) for k in order], dtype=np.float64)
    p = p / p.sum() if p.sum() > 0 else np.full(len(order), 1.0 / len(order))
    return np.log(np.maximum(p, _FLOOR)).astype(np.float32)


def face_sequence(frame_probs: np.ndarray) -> tuple[np.ndarray, int]:
    """(T, 8) per-frame probabilities → padded (FACE_FRAMES, 8) log-probabilities and the valid count."""
    out = np.zeros((FACE_FRAMES, DIMS["face"]), np.float32)
    t = len(frame_probs)
    if t == 0:
        return out, 0
    rows = np.linspace(0, t - 1, min(t, FACE_FRAMES)).round().astype(int)
    chosen = np.asarray(frame_probs, dtype=np.float64)[rows]
    chosen = chosen / chosen.sum(axis=1, keepdims=True)
    out[:len(rows)] = np.log(np.maximum(chosen, _FLOOR))
    return out, len(rows)


def au_statistics(au: np.ndarray) -> np.ndarray:
    """(T, n_AU) intensities of the confident frames → mean, 90th percentile, standard deviation."""
    au = np.asarray(au, dtype=np.float64)
    return np.concatenate([au.mean(0), np.percentile(au, 90, axis=0), au.std(0)]).astype(np.float32)


def voice_vector(probs: Mapping[str, float], clues: VoiceClues) -> np.ndarray:
    prosody = []
    for section, key, scale in PROSODY_KEYS:
        value = getattr(clues, section).get(key)
        prosody.append(0.0 if value is None or not np.isfinite(value) else float(value) / scale)
    return np.concatenate([log_probs(probs, VOICE_LABELS), np.array(prosody, np.float32)])


def from_perception(p: object) -> FusionInputs:
    """The fusion inputs of one analysed clip (``p`` is a :class:`~emollama.perception.pipeline.Perception`).

    The face counts only when the detector confirmed it (the same rule as the hand-set fusion).
    """
    from emollama.recognize.fusion import face_confirmed

    x = FusionInputs.empty()
    face = p.face  # type: ignore[attr-defined]
    fc = face.clues
    main = p.scan.main  # type: ignore[attr-defined]
    if face_confirmed(fc) and main is not None:
        from emollama.perception.face import MIN_CONFIDENCE

        obs = main.observations
        keep = [o for o in obs if o.confidence >= MIN_CONFIDENCE] or list(obs)
        order = [list(p.scan.expression_labels).index(k) for k in FACE_LABELS]  # type: ignore[attr-defined]
        x.face, x.face_frames = face_sequence(np.stack([o.expression for o in keep])[:, order])
        x.present["face"] = x.face_frames > 0
        rows = [r for r, ok in zip(fc.au_intensity, fc.confident, strict=True) if ok and None not in r]
        if rows:
            x.action_units = au_statistics(np.array(rows, dtype=np.float64))
            x.present["action_units"] = True
    voice = p.clues.voice  # type: ignore[attr-defined]
    if voice.status == "ok" and p.voice_probs is not None:  # type: ignore[attr-defined]
        x.voice = voice_vector(p.voice_probs, voice)  # type: ignore[attr-defined]
        x.present["voice"] = True
    if p.clues.words.status == "ok" and p.text_probs:  # type: ignore[attr-defined]
        x.words = log_probs(p.text_probs, TEXT_LABELS)  # type: ignore[attr-defined]
        x.present["words"] = True
    return x
