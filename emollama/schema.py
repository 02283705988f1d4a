"""Typed boundaries between pipeline stages, and the versioned result every tier returns.

Pydantic models rather than bare dataclasses because the result is written to and read back
from JSON (``--json``, batch JSONL, REST) and the schema must be checkable. Bump
:data:`SCHEMA_VERSION` on any change that renames or retypes a field; adding an optional field
is a minor bump.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.2"  # 1.1: VoiceClues.head_arousal / head_valence; 1.2: FaceClues.expression_clip / _pooling

ModalityStatus = Literal["ok", "absent", "no_face", "silent", "no_speech", "no_text", "failed"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class MediaInfo(_Model):
    """What the input file is, as decoded."""

    path: str
    kind: Literal["video", "audio", "image"]
    duration_s: float
    has_video: bool
    has_audio: bool
    width: int | None = None
    height: int | None = None
    native_fps: float | None = None
    sampled_fps: float | None = None
    n_sampled_frames: int = 0
    audio_sample_rate: int | None = None


class PeakFrame(_Model):
    """The MERR peak frame: largest (smoothed) total AU intensity among confident face frames."""

    index: int = Field(description="index into FaceClues.times")
    time_s: float
    total_intensity: float
    au: dict[str, float] = Field(description="AU intensities (0-5) at the peak frame")


class FaceClues(_Model):
    status: ModalityStatus
    n_frames: int = 0
    n_frames_with_face: int = 0
    coverage: float = 0.0
    mean_detection_confidence: float = 0.0
    max_faces_in_frame: int = 0
    baseline: Literal["own_least_expressive", "population_prior", "none"] = "none"
    times: list[float] = Field(default_factory=list)
    confident: list[bool] = Field(default_factory=list)
    au_names: list[str] = Field(default_factory=list)
    au_intensity: list[list[float | None]] = Field(
        default_factory=list, description="frames x AUs; null where no confident face"
    )
    peak: PeakFrame | None = None
    head_pose_deg: dict[str, float] = Field(
        default_factory=dict, description="yaw/pitch/roll at the peak frame, degrees"
    )
    expression_labels: list[str] = Field(default_factory=list)
    expression_mean: dict[str, float] = Field(default_factory=dict)
    expression_at_peak: dict[str, float] = Field(default_factory=dict)
    expression_clip: dict[str, float] = Field(
        default_factory=dict, description="the clip's expression scores as fusion and the MERR filter read them"
    )
    expression_pooling: str | None = Field(None, description="how expression_clip pools the frames")
    note: str | None = None


class SpeechSegment(_Model):
    start_s: float
    end_s: float


class VoiceClues(_Model):
    status: ModalityStatus
    speech_segments: list[SpeechSegment] = Field(default_factory=list)
    speech_duration_s: float = 0.0
    vad_confidence: float = 0.0
    prosody: dict[str, float | None] = Field(
        default_factory=dict, description="absolute measures (Hz, dB, %, per second)"
    )
    relative: dict[str, float | None] = Field(
        default_factory=dict,
        description="measures relative to the clip's own baseline / population norms (z-like units)",
    )
    arousal: float | None = Field(None, description="-1 (calm) .. +1 (aroused), from prosody")
    head_arousal: float | None = Field(
        None, description="-1 .. +1, from the trained voice head: circumplex expectation of its class probabilities"
    )
    head_valence: float | None = Field(
        None, description="-1 (unpleasant) .. +1 (pleasant), from the trained voice head, same way"
    )
    note: str | None = None


class TextCue(_Model):
    word: str
    emotion: str


class WordsClues(_Model):
    status: ModalityStatus
    source: Literal["subtitle", "asr", "none"] = "none"
    text: str = ""
    language: str | None = None
    language_probability: float | None = None
    asr_confidence: float | None = None
    cues: list[TextCue] = Field(default_factory=list)
    polarity: float | None = Field(None, description="-1 .. +1 sentiment, English only (VADER)")
    note: str | None = None


class Clues(_Model):
    face: FaceClues
    voice: VoiceClues
    words: WordsClues


class ModalityScores(_Model):
    """One modality's label scores, already projected onto the result's label set."""

    modality: Literal["face", "voice", "words", "action_units"]
    scores: dict[str, float]
    weight: float
    source: str = Field(description="which model or rule produced these scores")


class AnalysisResult(_Model):
    schema_version: str = SCHEMA_VERSION
    emollama_version: str
    tier: Literal["clues", "llm", "emotion-llama"]
    media: MediaInfo
    label_set: str
    label: str | None
    scores: dict[str, float]
    reasoning: str
    clues: Clues
    modality_scores: list[ModalityScores] = Field(default_factory=list)
    models: dict[str, str] = Field(default_factory=dict)
    timings_s: dict[str, float] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` best labels with their scores, best first."""
        return sorted(self.scores.items(), key=lambda kv: kv[1], reverse=True)[:k]
