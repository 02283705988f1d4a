"""Voice arousal from prosody, calibrated on labelled speech (``assets/heads/voice/arousal.json``).

Why a fitted read-out: the first arousal rule summed pitch level, pitch range, loudness swing and
speech rate around conventional zero points for relaxed conversation. Acted and broadcast speech
sits well above those points, so nearly every clip came out "highly aroused, agitated", calm
takes included (RAVDESS dev: neutral takes +0.40..+0.82). Here a logistic regression on the same
kind of gain-independent measures separates aroused speech (angry, happy, fearful) from calm
speech (neutral, bored, sad) in EmoDB, selected leave-one-speaker-out, and arousal is
2·P(aroused) − 1 in [−1, 1]: "highly aroused" (≥ 0.5) now means the model is at least 75 % sure
the speech is of the aroused kind. Rebuild: ``python -m emollama.train.heads.arousal`` (the
numbers are in the JSON's ``meta`` and in ``assets/heads/voice/MODEL_CARD.md``).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from emollama.errors import ModelUnavailableError
from emollama.heads import HEADS_DIR

AROUSAL_FILE = HEADS_DIR / "voice" / "arousal.json"
#: The measures read, as (section of :class:`~emollama.schema.VoiceClues`, key). Absolute
#: loudness is left out: it measures the microphone and the gain, not the voice.
FEATURES: tuple[tuple[str, str], ...] = (
    ("relative", "pitch_level_vs_norm_st"), ("relative", "pitch_range_st"),
    ("relative", "pitch_peak_vs_baseline_st"), ("relative", "loudness_peak_vs_baseline_db"),
    ("relative", "rate_vs_typical"), ("prosody", "f0_sd_st"), ("prosody", "voiced_fraction"),
    ("prosody", "jitter_local"), ("prosody", "shimmer_local"), ("prosody", "hnr_db"),
)
#: At least this many of :data:`FEATURES` must be measured for an arousal value (else None).
MIN_FEATURES = 4


@dataclass
class ArousalModel:
    """Standardise, weight, sum, squash: P(aroused) = sigmoid(w · (x − mean) / std + b)."""

    mean: list[float]
    std: list[float]
    coef: list[float]
    intercept: float
    features: list[str] = field(default_factory=lambda: [f"{s}.{k}" for s, k in FEATURES])
    meta: dict = field(default_factory=dict)

    def arousal(self, sections: Mapping[str, Mapping[str, float | None]]) -> float | None:
        """Arousal in [−1, 1] from the ``prosody`` and ``relative`` measures; None when too few exist.

        A measure Praat could not take (unvoiced speech has no pitch) counts as the training mean.
        """
        z, seen = 0.0, 0
        for name, mean, std, w in zip(self.features, self.mean, self.std, self.coef, strict=True):
            section, key = name.split(".", 1)
            value = sections.get(section, {}).get(key)
            if value is None or not math.isfinite(value):
                continue
            z += w * (float(value) - mean) / std
            seen += 1
        if seen < MIN_FEATURES:
            return None
        p = 1.0 / (1.0 + math.exp(-(z + self.intercept)))
        return round(2.0 * p - 1.0, 3)

    def save(self, path: Path = AROUSAL_FILE) -> None:
        from emollama.files import atomic_write_text

        atomic_write_text(path, json.dumps(self.__dict__, indent=1) + "\n")

    @classmethod
    def load(cls, path: Path = AROUSAL_FILE) -> ArousalModel:
        try:
            raw = json.loads(Path(path).read_text())
            model = cls(**raw)
        except (OSError, ValueError, TypeError) as exc:
            raise ModelUnavailableError(f"voice arousal calibration unreadable at {path} ({exc}); rebuild it with "
                                        "python -m emollama.train.heads.arousal") from None
        if model.features != [f"{s}.{k}" for s, k in FEATURES] or not (
                len(model.mean) == len(model.std) == len(model.coef) == len(FEATURES)):
            raise ModelUnavailableError(f"{path}: arousal calibration for other measures ({model.features}); "
                                        "rebuild it with python -m emollama.train.heads.arousal")
        return model


@functools.cache
def shipped_arousal_model() -> ArousalModel:
    """The packaged calibration, read once per process."""
    return ArousalModel.load()
