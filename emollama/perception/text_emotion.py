"""Emotion evidence from the transcript: the text head's probabilities, emotion words, polarity.

* The trained text head (:class:`~emollama.heads.text.TextEmotionHead`) gives calibrated
  probabilities over the seven Ekman classes.
* Emotion words found in the text (English and Chinese, via the synonym table; negated ones
  skipped) are reported as cues. For a label the head cannot output (worried, doubt, contempt) an
  explicit word gives it the probability mass :data:`CUE_MASS` and the head's probabilities are
  scaled by the rest; the face's AU rules keep deciding these labels on the face side.
* VADER gives English polarity (the tone description's pleasant/unpleasant sign).
"""

from __future__ import annotations

from emollama.heads.text import TextEmotionHead
from emollama.label_parsing import find_mentions
from emollama.labels import SYNONYMS
from emollama.schema import TextCue

#: Probability given to a label outside the text head's classes when the text names it outright.
CUE_MASS = 0.3
#: The words stage reads at most this many characters (about five minutes of speech): the cue
#: finder, VADER and the multilingual encoder all cost more than linearly in the text length, and
#: a 40,000-character subtitle used to take 25 s. Longer transcripts are cut at a word boundary
#: and the result says so (:func:`limit_transcript`).
MAX_TRANSCRIPT_CHARS = 5_000


class TextEmotion:
    """Create once (loads the text head and VADER); call :meth:`analyze` per transcript."""

    def __init__(self, head: TextEmotionHead | None = None) -> None:
        self.head = head if head is not None else TextEmotionHead()
        self.name = f"{self.head.name}; emotion words + VADER"
        try:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

            self._vader = SentimentIntensityAnalyzer()
        except ImportError:  # pragma: no cover - optional
            self._vader = None

    def analyze(self, text: str, language: str | None = None
                ) -> tuple[dict[str, float], list[TextCue], float | None]:
        """Label probabilities (canonical labels), the emotion words found, English polarity."""
        cues = emotion_cues(text)
        polarity = None
        if self._vader is not None and (language in (None, "en")) and text.isascii():
            polarity = round(float(self._vader.polarity_scores(text)["compound"]), 3)
        return merge_cues(self.head.analyze(text, language), cues), cues, polarity


def limit_transcript(text: str, limit: int = MAX_TRANSCRIPT_CHARS) -> tuple[str, str | None]:
    """``text`` cut to at most ``limit`` characters at a word boundary, and the warning that says so."""
    if len(text) <= limit:
        return text, None
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut, (f"the transcript has {len(text):,} characters; only the first {len(cut):,} were analysed "
                 f"(the words stage reads at most {limit:,})")


def emotion_cues(text: str) -> list[TextCue]:
    """The non-negated emotion words of ``text``, in order."""
    lowered = text.lower()
    return [TextCue(word=_word_at(lowered, pos), emotion=label)
            for pos, label, negated in find_mentions(text) if not negated]


def merge_cues(probs: dict[str, float], cues: list[TextCue]) -> dict[str, float]:
    """Add :data:`CUE_MASS` per named emotion the head cannot output, scaling the head's mass down."""
    extra = sorted({c.emotion for c in cues if c.emotion not in probs})
    if not extra:
        return probs
    each = CUE_MASS / len(extra)
    out = {k: v * (1.0 - CUE_MASS) for k, v in probs.items()}
    out.update(dict.fromkeys(extra, each))
    return {k: round(v, 4) for k, v in out.items()}


def _word_at(lowered: str, pos: int) -> str:
    """The synonym-table spelling that matched at ``pos`` (longest first)."""
    return max((k for k in SYNONYMS if lowered.startswith(k, pos)), key=len, default=lowered[pos:pos + 1])
