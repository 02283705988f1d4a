"""Audio tone word: one word from MERR's fixed tone set, chosen from prosody and the transcript.

MERR asked Qwen-Audio to pick the speaker's tone from a fixed list; we make the same choice
offline from measurements, and always keep the evidence next to the word so a reader can check it.
Prosody measures *arousal* well but says little about *valence*; the sign (pleasant/unpleasant)
is borrowed from the transcript's polarity when one exists (VADER, English only), else from the
trained voice head's valence when it is clear (:func:`emollama.describe.voice_valence_sign`: beyond
±0.4 and away from the value an unsure head gives; the head is the only valence source for
Mandarin speech). The rules, first match wins:

1. no speech → no tone word;
2. the pitch rises ≥ 3 semitones at the end (a question contour) → ``doubtful``;
3. arousal ≥ 0.5 (highly aroused): positive words → ``joyful``; negative words → ``angry`` when the
   loudness bursts ≥ 14 dB above the calm parts, else ``fearful``; no sign → ``shocked``;
4. 0.15 ≤ arousal < 0.5 (energetic): positive words → ``joyful``; negative → ``negative``; no sign →
   ``negative`` when the loudness bursts (emphatic, pressing), else ``positive`` (lively);
5. -0.15 < arousal < 0.15 (even): positive → ``positive``; negative → ``negative``; no sign → ``calm``;
6. arousal ≤ -0.15 (subdued): negative words → ``sad``; a narrow pitch range (≤ 3 semitones) with a
   falling end (≤ -4 semitones) → ``dismissive``; otherwise ``calm``.

The audio tone is chosen without the label on purpose (as MER-Factory does for its per-modality
descriptions): the label must not leak into the evidence that is later checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass

from emollama.describe import arousal_word, voice_valence_sign
from emollama.schema import VoiceClues, WordsClues

#: The fixed tone vocabulary (MERR's final Qwen-Audio prompt used the same ten words).
TONE_WORDS: tuple[str, ...] = ("joyful", "sad", "shocked", "fearful", "angry", "positive", "negative", "calm",
                               "doubtful", "dismissive")

#: Transcript polarity beyond which the words give the tone a sign.
POLARITY_SIGN = 0.3


@dataclass(frozen=True)
class Tone:
    word: str | None
    evidence: str


def _fmt(value: float | None, unit: str, signed: bool = False) -> str | None:
    if value is None:
        return None
    return f"{value:+.0f} {unit}" if signed else f"{value:.0f} {unit}"


def choose_tone(voice: VoiceClues, words: WordsClues | None = None) -> Tone:
    """Pick the tone word (or ``None`` without speech) and say which measurements chose it."""
    if voice.status != "ok" or voice.arousal is None:
        return Tone(None, voice.note or f"no speech to judge ({voice.status})")
    rel = voice.relative
    arousal = voice.arousal
    final = rel.get("final_pitch_change_st")
    rng = rel.get("pitch_range_st")
    burst = rel.get("loudness_peak_vs_baseline_db")
    polarity = words.polarity if words is not None and words.status == "ok" else None
    sign = 0 if polarity is None or abs(polarity) < POLARITY_SIGN else (1 if polarity > 0 else -1)
    valence = voice.head_valence
    voice_sign = voice_valence_sign(valence)
    sign_from_voice = sign == 0 and voice_sign != 0
    if sign_from_voice:
        sign = voice_sign
    loud = burst is not None and burst >= 14

    if final is not None and final >= 3:
        word = "doubtful"
    elif arousal >= 0.5:
        word = "joyful" if sign > 0 else ("angry" if loud else "fearful") if sign < 0 else "shocked"
    elif arousal >= 0.15:
        word = "joyful" if sign > 0 else "negative" if sign < 0 else ("negative" if loud else "positive")
    elif arousal > -0.15:
        word = "positive" if sign > 0 else "negative" if sign < 0 else "calm"
    elif sign < 0:
        word = "sad"
    elif rng is not None and rng <= 3 and final is not None and final <= -4:
        word = "dismissive"
    else:
        word = "calm"

    parts = [f"arousal {arousal:+.2f} ({arousal_word(arousal)})"]
    for label, text in (("pitch range", _fmt(rng, "st")), ("end-of-utterance pitch change", _fmt(final, "st", True)),
                        ("loudness burst", _fmt(burst, "dB"))):
        if text is not None:
            parts.append(f"{label} {text}")
    if polarity is not None:
        parts.append(f"words polarity {polarity:+.2f}")
    if sign_from_voice:
        parts.append(f"voice-model valence {valence:+.2f}")
    return Tone(word, "; ".join(parts))
