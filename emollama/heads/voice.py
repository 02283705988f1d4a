"""Trained voice-emotion head: eGeMAPS/ComParE features, absolute and relative to the clip's own baseline.

Why two feature groups: a speaker's habitual pitch and loudness say little about emotion, but at
inference there is only one clip and no speaker history. So besides the 88 standard eGeMAPS
functionals (absolute, normalised with training-set statistics) every frame-level descriptor is
also measured *relative to the clip itself* - minus the clip's median for spectral/voice-quality
descriptors, and above the clip's quiet/low 10th percentile for loudness and pitch - which needs
nothing but the clip. ComParE-2016 functionals (6373) are offered to the selection too. The linear
classifier (logistic regression or linear SVM, whichever wins) has its standardisation folded into
its weights (:class:`~emollama.heads.text.LinearHead`), selected by leave-one-speaker-out on the
EmoDB dev speakers (``scripts/train_voice.py``).

Classes are EmoDB's: angry, bored, disgust, fear, happy, neutral, sad (canonical words). ``bored``
reaches label sets that lack it through :data:`emollama.labels.CROSS_SET_MAP` (0.7 neutral,
0.3 sad). Arousal and valence are the expectation of per-class circumplex coordinates
(:data:`CIRCUMPLEX`) under the predicted probabilities.
"""

from __future__ import annotations

import numpy as np

from emollama.heads.text import HEADS_DIR, LinearHead

VOICE_DIR = HEADS_DIR / "voice"
SAMPLE_RATE = 16_000
#: (arousal, valence) in [-1, 1] per class, after Russell's circumplex placements of these words.
CIRCUMPLEX: dict[str, tuple[float, float]] = {
    "angry": (0.8, -0.6), "fear": (0.7, -0.7), "happy": (0.6, 0.8), "surprise": (0.7, 0.3),
    "disgust": (0.3, -0.7), "neutral": (0.0, 0.0), "calm": (-0.5, 0.3), "sad": (-0.5, -0.7),
    "bored": (-0.7, -0.3),
}
_LEVEL_LLDS = ("Loudness_sma3", "F0semitoneFrom27.5Hz_sma3nz")


class VoiceFeatures:
    """16 kHz mono float audio → one vector: eGeMAPS (88), clip-relative descriptors (126), ComParE (6373)."""

    def __init__(self) -> None:
        import opensmile

        self._compare = opensmile.Smile(feature_set=opensmile.FeatureSet.ComParE_2016,
                                        feature_level=opensmile.FeatureLevel.Functionals)
        self._func = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                                     feature_level=opensmile.FeatureLevel.Functionals)
        self._lld = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                                    feature_level=opensmile.FeatureLevel.LowLevelDescriptors)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        absolute = self._func.process_signal(audio, SAMPLE_RATE).to_numpy(dtype=np.float64).reshape(-1)
        lld = self._lld.process_signal(audio, SAMPLE_RATE)
        compare = self._compare.process_signal(audio, SAMPLE_RATE).to_numpy(dtype=np.float64).reshape(-1)
        relative = relative_descriptors(lld.to_numpy(dtype=np.float64), list(lld.columns))
        return np.nan_to_num(np.concatenate([absolute, relative, compare]))


def relative_descriptors(lld: np.ndarray, columns: list[str]) -> np.ndarray:
    """Per descriptor: spread and excursions relative to the clip's own baseline (5 numbers each).

    Voiced-only descriptors (``_sma3nz``) use voiced frames only. For pitch and loudness the
    baseline is the clip's 10th percentile (its calm, low stretches); for the others the median.
    """
    out = []
    voiced = lld[:, columns.index("F0semitoneFrom27.5Hz_sma3nz")] > 0
    for j, name in enumerate(columns):
        v = lld[voiced, j] if name.endswith("nz") else lld[:, j]
        if v.size < 3:
            out += [0.0] * 5
            continue
        base = np.percentile(v, 10) if name in _LEVEL_LLDS else np.median(v)
        r = v - base
        out += [float(np.mean(r)), float(np.std(r)), float(np.percentile(r, 90)),
                float(np.percentile(r, 90) - np.percentile(r, 10)), float(np.mean(np.abs(np.diff(v))))]
    out.append(float(voiced.mean()))  # voiced fraction
    return np.asarray(out)


class VoiceEmotionHead:
    """Create once; :meth:`analyze` gives calibrated class probabilities, arousal and valence for one clip."""

    name = "voice head: opensmile eGeMAPS/ComParE + clip-relative prosody, linear (EmoDB), temperature-scaled"

    def __init__(self) -> None:
        self.head = LinearHead.load(VOICE_DIR / "voice_linear")
        self.features = VoiceFeatures()

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
