"""The pipeline's settings: one typed object that the CLI and the Python API (and later a server) fill.

Why one object: the frame rate, the duration limit, speech recognition on/off, the label set and
the thresholds a user may change used to be constants spread over several modules; a setting
that lives here is validated once (a bad value is an :class:`~emollama.errors.InputError` before
any model loads) and reaches every stage the same way. Values that are properties of a trained
model (a head's temperature, the fusion priors) are not settings: they travel with the model.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from emollama.errors import InputError
from emollama.labels import DEFAULT_LABEL_SET, get_label_set
from emollama.media.decode import DEFAULT_FPS, DEFAULT_MAX_DURATION_S, check_fps, check_max_duration

__all__ = ["AnalysisSettings"]


#: Short side (px) up to which an image is taken as an already-cropped face (FER2013, CK+): the face
#: detector cannot confirm a face that fills a 48-px frame, so the whole image is the crop.
CROP_MAX_SIDE = 128

@dataclass(frozen=True)
class AnalysisSettings:
    """How one clip is analysed. Immutable; derive variants with :meth:`replace`."""

    fps: float = DEFAULT_FPS
    """Frames sampled per second of video (10: a 200 ms expression is seen twice)."""

    max_duration_s: float = DEFAULT_MAX_DURATION_S
    """Media longer than this is refused, from the container's metadata when it has a duration."""

    asr: bool = True
    """Transcribe speech with Whisper when no subtitle is given (False: words come from subtitles only)."""

    label_set: str = DEFAULT_LABEL_SET
    """The labels the result is given in: merr9, mer6, ekman7 or dfew7 (see :mod:`emollama.labels`)."""

    min_speech_for_asr_s: float = 0.3
    """Below this much detected speech ASR is not attempted (Whisper invents text on near-silence)."""

    max_faces: int = 3
    """Faces tracked per frame; the main face is chosen among them (large × persistent)."""

    def __post_init__(self) -> None:
        get_label_set(self.label_set)  # UnknownLabelSetError on a bad name
        object.__setattr__(self, "fps", check_fps(self.fps))
        object.__setattr__(self, "max_duration_s", check_max_duration(self.max_duration_s))
        if not isinstance(self.asr, bool):
            raise InputError(f"asr must be True or False, got {self.asr!r}")
        speech = self.min_speech_for_asr_s
        if not isinstance(speech, int | float) or not math.isfinite(speech) or speech < 0:
            raise InputError(f"min_speech_for_asr_s must be a number of seconds >= 0, got {speech}")
        if not isinstance(self.max_faces, int) or not 1 <= self.max_faces <= 20:
            raise InputError(f"max_faces must be an integer in 1..20, got {self.max_faces}")

    def replace(self, **changes: Any) -> AnalysisSettings:
        """A copy with some fields changed (``None`` values are ignored, so optional CLI options pass through)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
