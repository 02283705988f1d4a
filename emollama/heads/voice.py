"""Trained voice-emotion head: a linear read-out of Whisper-base's middle encoder layers.

Why Whisper layers: the multilingual Whisper-base encoder (already installed for ASR) was trained
on 680k hours of varied speech, so its middle layers encode voice quality and prosody in a way
that generalises across speakers far better than hand-made acoustic functionals. On the EmoDB dev
speakers (leave-one-speaker-out) the mean of encoder layers 2-5 with a logistic regression reaches
UAR 0.89, where opensmile ComParE/eGeMAPS functionals with the clip-relative prosody reached 0.72
(the previous version of this head). Mean pooling over the clip's own frames needs no speaker
history, so it works on a single clip at inference. The standardisation is folded into the linear
weights (:class:`~emollama.heads.linear.LinearHead`), selected by the voice recipe in ``emollama.train.heads``.

Classes are EmoDB's: angry, bored, disgust, fear, happy, neutral, sad (canonical words). ``bored``
reaches label sets that lack it through :data:`emollama.labels.CROSS_SET_MAP` (0.7 neutral,
0.3 sad). Arousal and valence are the expectation of per-class circumplex coordinates
(:data:`CIRCUMPLEX`) under the predicted probabilities.
"""

from __future__ import annotations

import numpy as np

from emollama.heads import HEADS_DIR
from emollama.heads.linear import LinearHead
from emollama.heads.whisper_encoder import SAMPLE_RATE, WhisperEncoder, WhisperLayerEmbedder

VOICE_DIR = HEADS_DIR / "voice"
__all__ = ["CIRCUMPLEX", "SAMPLE_RATE", "VOICE_DIR", "VoiceEmotionHead", "arousal_valence"]
#: (arousal, valence) in [-1, 1] per class, after Russell's circumplex placements of these words.
CIRCUMPLEX: dict[str, tuple[float, float]] = {
    "angry": (0.8, -0.6), "fear": (0.7, -0.7), "happy": (0.6, 0.8), "surprise": (0.7, 0.3),
    "disgust": (0.3, -0.7), "neutral": (0.0, 0.0), "calm": (-0.5, 0.3), "sad": (-0.5, -0.7),
    "bored": (-0.7, -0.3),
}


class VoiceEmotionHead:
    """Create once; :meth:`analyze` gives calibrated class probabilities, arousal and valence for one clip."""

    name = "voice head: Whisper-base middle encoder layers, linear (EmoDB), temperature-scaled"

    def __init__(self, encoder: WhisperEncoder | None = None) -> None:
        self.head = LinearHead.load(VOICE_DIR / "voice_linear")
        self.features = WhisperLayerEmbedder(tuple(self.head.meta["whisper_layers"]), encoder)

    def predict(self, audio: np.ndarray) -> np.ndarray:
        return self.head.predict_proba(self.features(audio))[0]

    def analyze(self, audio: np.ndarray) -> tuple[dict[str, float], float, float]:
        p = self.predict(audio)
        probs = {y: round(float(v), 4) for y, v in zip(self.head.labels, p, strict=True)}
        arousal, valence = arousal_valence(probs)
        return probs, arousal, valence


def arousal_valence(probs: dict[str, float]) -> tuple[float, float]:
    """Expected (arousal, valence) under the class probabilities, each in [-1, 1]."""
    a = sum(p * CIRCUMPLEX.get(y, (0.0, 0.0))[0] for y, p in probs.items())
    v = sum(p * CIRCUMPLEX.get(y, (0.0, 0.0))[1] for y, p in probs.items())
    return round(float(a), 3), round(float(v), 3)
