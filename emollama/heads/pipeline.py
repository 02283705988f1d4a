"""How the trained heads enter the ``analyze`` pipeline without changing its stages.

``Analyzer`` keeps calling ``self.voice.analyze(audio)`` and ``self.text.analyze(text, lang)``;
these wrappers return what the old components returned (so clues, cues, polarity and the
reasoning stay the same) and additionally run the trained head:

* :class:`HeadedVoice` runs the voice head on the speech segments of the same 16 kHz audio, writes
  its arousal/valence into the clues (``head_arousal``/``head_valence``: the tone description uses
  the valence when the words give no sign) and keeps the probabilities next to the
  :class:`~emollama.schema.VoiceClues` object they belong to, so ``Analyzer._evidence`` can check
  identity instead of trusting call order.
* :class:`HeadedText` returns the text head's calibrated probabilities over the seven Ekman
  classes. Rule for the labels the head cannot output (worried, doubt, contempt): an explicit,
  non-negated emotion word in the transcript for one of them (the synonym table's cue finder)
  gives it the probability mass :data:`CUE_MASS`, the head's probabilities are scaled by the rest.
  The face's AU rules keep deciding these labels on the face side (``action_units`` evidence).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emollama.heads.text import TextEmotionHead
from emollama.heads.voice import SAMPLE_RATE, VoiceEmotionHead
from emollama.schema import TextCue, VoiceClues

#: Probability given to a label outside the text head's classes when the text names it outright.
CUE_MASS = 0.3


class HeadedVoice:
    """The prosody analyser plus the trained voice head (probabilities, arousal, valence)."""

    def __init__(self, base: Any, head: VoiceEmotionHead | None = None) -> None:
        self.base = base
        self.head = head if head is not None else VoiceEmotionHead()
        self.name = f"{base.name}; {self.head.name}"
        self.last: tuple[VoiceClues, dict[str, float], float, float] | None = None

    def analyze(self, audio: np.ndarray | None) -> tuple[VoiceClues, Any]:
        clues, track = self.base.analyze(audio)
        self.last = None
        speech = speech_only(audio, clues) if clues.status == "ok" and audio is not None else None
        if speech is not None:
            probs, arousal, valence = self.head.analyze(speech)
            clues.head_arousal, clues.head_valence = arousal, valence
            self.last = (clues, probs, arousal, valence)
        return clues, track

    def result_for(self, clues: VoiceClues) -> tuple[dict[str, float], float, float] | None:
        """The head's output for exactly this clues object (None if it came from another call)."""
        if self.last is not None and self.last[0] is clues:
            return self.last[1], self.last[2], self.last[3]
        return None

    def __getattr__(self, name: str) -> Any:  # speech(), etc. stay available
        return getattr(self.base, name)


#: Less speech than this (in seconds) is not given to the voice head.
MIN_HEAD_SPEECH_S = 0.25


def speech_only(audio: np.ndarray, clues: VoiceClues) -> np.ndarray | None:
    """The VAD speech segments of ``audio`` (16 kHz), joined; None when there is too little speech.

    The head was trained on EmoDB utterances that are nearly all speech, so it is given speech
    only: silence, music and padding would otherwise be averaged into its clip mean.
    """
    parts = [audio[max(0, int(s.start_s * SAMPLE_RATE)):int(s.end_s * SAMPLE_RATE)] for s in clues.speech_segments]
    speech = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    return speech if speech.size >= MIN_HEAD_SPEECH_S * SAMPLE_RATE else None


class HeadedText:
    """Prototype component for cues and polarity, trained head for the probabilities."""

    def __init__(self, base: Any, head: TextEmotionHead | None = None) -> None:
        self.base = base
        self.head = head if head is not None else TextEmotionHead(e5=getattr(base, "_e5", None))
        self.name = f"{self.head.name}; emotion words + VADER"

    def analyze(self, text: str, language: str | None = None
                ) -> tuple[dict[str, float], list[TextCue], float | None]:
        _, cues, polarity = self.base.analyze(text, language)
        return merge_cues(self.head.analyze(text, language), cues), cues, polarity


def merge_cues(probs: dict[str, float], cues: list[TextCue]) -> dict[str, float]:
    """Add :data:`CUE_MASS` per named emotion the head cannot output, scaling the head's mass down."""
    extra = sorted({c.emotion for c in cues if c.emotion not in probs})
    if not extra:
        return probs
    each = CUE_MASS / len(extra)
    out = {k: v * (1.0 - CUE_MASS) for k, v in probs.items()}
    out.update(dict.fromkeys(extra, each))
    return {k: round(v, 4) for k, v in out.items()}
