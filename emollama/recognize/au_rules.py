"""Which Action Units signal which emotion: the rule table behind the ``action_units`` modality.

Prototypes follow the EMFACS tradition (happiness = AU6+AU12, sadness = AU1+AU4+AU15, ...),
extended to the MERR categories the basic-emotion models cannot express: *worried* (oblique
brows, AU1+AU4, with a stretched or pressed mouth), *doubt* (lowered brows with pressed, pushed-up
lips, AU4+AU14+AU17+AU23) and *contempt* (a one-sided lip-corner raise). The same table is meant
for MERR's AU/label consistency filter.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from emollama.heads.calibration import softmax

#: emotion → (required AUs, supporting AUs). Required AUs carry twice the weight.
EMOTION_AU_RULES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "happy": (("AU06", "AU12"), ("AU25",)),
    "sad": (("AU01", "AU15"), ("AU04", "AU17")),
    "surprise": (("AU01", "AU02", "AU26"), ("AU05", "AU25")),
    "fear": (("AU01", "AU04", "AU05", "AU20"), ("AU02", "AU07", "AU25", "AU26")),
    "angry": (("AU04", "AU07", "AU23"), ("AU05", "AU17", "AU10")),
    "disgust": (("AU09", "AU10"), ("AU15", "AU17")),
    "worried": (("AU01", "AU04"), ("AU20", "AU23", "AU15")),
    "doubt": (("AU04", "AU14"), ("AU17", "AU23")),
    "contempt": (("AU14",), ()),  # plus the one-sided corner raise, see au_emotion_scores
}

#: Summed intensity (0-5 scale, blinks excluded) below which a face reads as neutral.
NEUTRAL_TOTAL = 3.0
_SHARPNESS = 2.0


def rule_strength(au: Mapping[str, float], emotion: str) -> float:
    """How fully a frame's AUs display ``emotion``'s prototype, on the 0-5 intensity scale."""
    required, supporting = EMOTION_AU_RULES[emotion]
    weights = [2.0] * len(required) + [1.0] * len(supporting)
    values = [au.get(name, 0.0) for name in (*required, *supporting)]
    return float(np.average(values, weights=weights)) if values else 0.0


def au_emotion_scores(au: Mapping[str, float], corner_asymmetry: float = 0.0) -> dict[str, float]:
    """Canonical-label probabilities from the AUs at the peak frame.

    ``corner_asymmetry`` is the one-sided corner raise in inter-ocular units (see
    :func:`emollama.perception.action_units.au_asymmetry`); 0.03 IOD counts as one intensity point.
    """
    strengths = {emotion: rule_strength(au, emotion) for emotion in EMOTION_AU_RULES}
    # One-sided raise only reads as contempt when there is no broad smile: smiles are often uneven.
    smile_gate = max(0.0, 1.0 - au.get("AU12", 0.0) / 3.0)
    strengths["contempt"] += min(5.0, abs(corner_asymmetry) / 0.03) * smile_gate
    total = sum(v for k, v in au.items() if k != "AU45")
    strengths["neutral"] = max(0.0, NEUTRAL_TOTAL - total) / NEUTRAL_TOTAL * 2.0
    logits = np.array(list(strengths.values())) * _SHARPNESS
    return dict(zip(strengths, softmax(logits).tolist(), strict=True))


def supporting_aus(au: Mapping[str, float], emotion: str, threshold: float = 0.5) -> list[str]:
    """The prototype AUs of ``emotion`` actually present (≥ threshold), strongest first."""
    if emotion not in EMOTION_AU_RULES:
        return []
    required, supporting = EMOTION_AU_RULES[emotion]
    present = [a for a in (*required, *supporting) if au.get(a, 0.0) >= threshold]
    return sorted(present, key=lambda a: -au.get(a, 0.0))
