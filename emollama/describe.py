"""Clues → plain-language phrases (MERR-style visual and audio descriptions).

Kept separate from the recognisers so the reasoning text, the MERR annotator and any LLM prompt
all use the same vocabulary for the same measurement.
"""

from __future__ import annotations

from collections.abc import Mapping

from emollama.schema import VoiceClues

#: What each AU looks like, in words a non-specialist understands (our own phrasing).
AU_PHRASES: dict[str, str] = {
    "AU01": "the inner ends of the eyebrows lift",
    "AU02": "the outer ends of the eyebrows lift",
    "AU04": "the eyebrows pull down and together",
    "AU05": "the upper eyelids open wide",
    "AU06": "the cheeks push up towards the eyes",
    "AU07": "the eyelids tighten",
    "AU09": "the nose wrinkles",
    "AU10": "the upper lip rises",
    "AU12": "the corners of the mouth pull up",
    "AU14": "the mouth corners tighten into dimples",
    "AU15": "the corners of the mouth turn down",
    "AU17": "the chin pushes the lower lip up",
    "AU20": "the lips stretch sideways",
    "AU23": "the lips tighten",
    "AU25": "the lips part",
    "AU26": "the jaw drops open",
    "AU45": "the eyes blink",
}


def intensity_word(value: float) -> str:
    """FACS-like intensity adverbs for the 0-5 scale."""
    if value >= 3.5:
        return "strongly"
    if value >= 2.5:
        return "clearly"
    if value >= 1.5:
        return "moderately"
    return "slightly"


def active_aus(au: Mapping[str, float], threshold: float = 1.0, top: int = 4,
               exclude: tuple[str, ...] = ("AU45",)) -> list[tuple[str, float]]:
    """The strongest AUs above ``threshold``, strongest first."""
    items = [(k, v) for k, v in au.items() if v >= threshold and k not in exclude]
    return sorted(items, key=lambda kv: -kv[1])[:top]


def describe_aus(au: Mapping[str, float], threshold: float = 1.0, top: int = 4) -> list[str]:
    """Phrases such as "the corners of the mouth pull up clearly (AU12 2.8)"."""
    return [f"{AU_PHRASES[name]} {intensity_word(v)} ({name} {v:.1f})"
            for name, v in active_aus(au, threshold, top) if name in AU_PHRASES]


def describe_voice(voice: VoiceClues) -> list[str]:
    """Prosody phrases relative to the speaker's own baseline and typical voices."""
    rel, pro = voice.relative, voice.prosody
    out: list[str] = []
    level = rel.get("pitch_level_vs_norm_st")
    if level is not None and abs(level) >= 2:
        out.append(f"the pitch sits {abs(level):.0f} semitones {'above' if level > 0 else 'below'} "
                   "a typical voice of this register")
    rng = rel.get("pitch_range_st")
    if rng is not None:
        kind = "wide, animated" if rng >= 8 else "narrow, flat" if rng <= 3 else "moderate"
        out.append(f"the pitch range is {kind} ({rng:.0f} semitones)")
    loud = rel.get("loudness_peak_vs_baseline_db")
    if loud is not None and loud >= 14:
        out.append(f"loudness bursts {loud:.0f} dB above the calm parts of the speech")
    elif loud is not None and loud <= 6:
        out.append("loudness stays even")
    rate = rel.get("rate_vs_typical")
    if rate is not None and (rate >= 1.25 or rate <= 0.75):
        out.append(f"the speech is {'fast' if rate > 1 else 'slow'} (about {pro.get('syllable_rate_per_s') or 0:.1f} "
                   "syllables per second)")
    final = rel.get("final_pitch_change_st")
    if final is not None and final >= 3:
        out.append(f"the pitch rises {final:.0f} semitones at the end, as in a question")
    elif final is not None and final <= -4:
        out.append(f"the pitch falls {abs(final):.0f} semitones at the end")
    hnr = pro.get("hnr_db")
    if hnr is not None and hnr < 5:
        out.append(f"the voice is breathy or rough (HNR {hnr:.0f} dB)")
    return out


#: Voice-head valence beyond which the voice itself counts as pleasant/unpleasant in descriptions
#: (the tone word's sign when the words give none; the reasoning's "the voice model hears ...").
HEAD_VALENCE_SIGN = 0.4
#: The voice head's valence when it knows nothing (uniform over its EmoDB classes): five of its
#: seven classes are unpleasant, so an unsure head already reads -0.31. A clear valence must also
#: be this far from that value, in its own direction (``tests/heads/test_voice_head.py`` keeps the
#: constant in step with the shipped head).
VOICE_HEAD_UNINFORMED_VALENCE = -0.314
HEAD_VALENCE_MARGIN = 0.25


def voice_valence_sign(valence: float | None) -> int:
    """+1 / -1 when the voice head's valence is clearly pleasant / unpleasant, else 0."""
    if valence is None or abs(valence) < HEAD_VALENCE_SIGN:
        return 0
    sign = 1 if valence > 0 else -1
    return sign if sign * (valence - VOICE_HEAD_UNINFORMED_VALENCE) >= HEAD_VALENCE_MARGIN else 0


def arousal_word(arousal: float | None) -> str | None:
    if arousal is None:
        return None
    if arousal >= 0.5:
        return "highly aroused, agitated"
    if arousal >= 0.15:
        return "energetic"
    if arousal <= -0.5:
        return "subdued, low-energy"
    if arousal <= -0.15:
        return "calm"
    return "even"
