"""Voice evidence: the prosody clues plus the trained voice head, heard on the speech only.

:class:`VoiceEmotion` runs the prosody analyser (:mod:`emollama.perception.voice`: VAD segments,
pitch, loudness, rate, arousal) and then the voice head (:mod:`emollama.heads.voice`) on the VAD
speech segments of the same 16 kHz audio. The head's arousal/valence go into the clues
(``head_arousal``/``head_valence``: the tone description uses the valence when the words give no
sign) and its probabilities are returned beside the clues, so the recogniser reads both from one
:class:`~emollama.perception.pipeline.Perception`.
"""

from __future__ import annotations

import numpy as np

from emollama.heads.voice import SAMPLE_RATE, VoiceEmotionHead
from emollama.perception.voice import VoiceAnalyzer
from emollama.schema import VoiceClues

#: Less speech than this (in seconds) is not given to the voice head.
MIN_HEAD_SPEECH_S = 0.25


class VoiceEmotion:
    """Prosody analyser + voice head. Create once; :meth:`analyze` per clip."""

    def __init__(self, prosody: VoiceAnalyzer | None = None, head: VoiceEmotionHead | None = None) -> None:
        self.prosody = prosody if prosody is not None else VoiceAnalyzer()
        self.head = head if head is not None else VoiceEmotionHead()
        self.name = f"{self.prosody.name}; {self.head.name}"

    def analyze(self, audio: np.ndarray | None) -> tuple[VoiceClues, dict[str, float] | None]:
        """The voice clues and the head's class probabilities (None when there is too little speech)."""
        clues, _track = self.prosody.analyze(audio)
        speech = speech_only(audio, clues) if clues.status == "ok" and audio is not None else None
        if speech is None:
            return clues, None
        probs, arousal, valence = self.head.analyze(speech)
        clues.head_arousal, clues.head_valence = arousal, valence
        return clues, probs


def speech_only(audio: np.ndarray, clues: VoiceClues) -> np.ndarray | None:
    """The VAD speech segments of ``audio`` (16 kHz), joined; None when there is too little speech.

    The head was trained on EmoDB utterances that are nearly all speech, so it is given speech
    only: silence, music and padding would otherwise be averaged into its clip mean.
    """
    parts = [audio[max(0, int(s.start_s * SAMPLE_RATE)):int(s.end_s * SAMPLE_RATE)] for s in clues.speech_segments]
    speech = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    return speech if speech.size >= MIN_HEAD_SPEECH_S * SAMPLE_RATE else None
