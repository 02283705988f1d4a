"""The clue-grounded explanation of the ``clues`` tier.

Every sentence is built from a measurement in the :class:`~emollama.schema.Clues` (AU names and
intensities at the peak frame with its time stamp, prosody relative to the speaker's baseline,
the transcript and its emotion words) and the fused scores, so the paragraph changes whenever the
evidence does; a modality that is missing says so instead of being papered over.
"""

from __future__ import annotations

from emollama.describe import arousal_word, describe_aus, describe_voice, voice_valence_sign
from emollama.recognize.au_rules import supporting_aus
from emollama.schema import Clues, ModalityScores


def _top(scores: dict[str, float]) -> tuple[str, float]:
    label = max(scores, key=scores.__getitem__)
    return label, scores[label]


def write_reasoning(clues: Clues, scores: dict[str, float], label: str | None,
                    modality_scores: list[ModalityScores]) -> str:
    parts: list[str] = []
    face, voice, words = clues.face, clues.voice, clues.words

    if face.status == "ok" and face.peak is not None:
        phrases = describe_aus(face.peak.au)
        when = f"At {face.peak.time_s:.1f} s, the most expressive moment of the face,"
        if phrases:
            parts.append(f"{when} {'; '.join(phrases)}.")
        else:
            parts.append(f"{when} the face stays close to its resting state (no action unit above 1).")
        read = face.expression_clip or face.expression_mean  # what fusion used (results before 1.2: the mean)
        if read:
            exp_label, exp_p = _top(read)
            parts.append(f"The facial-expression model reads the face as {exp_label} ({exp_p:.2f}).")
        if label is not None:
            backing = supporting_aus(face.peak.au, label, threshold=1.0)
            if backing:
                parts.append(f"{', '.join(backing)} {'is' if len(backing) == 1 else 'are'} typical of {label}.")
        if face.coverage < 0.5:
            parts.append(f"The face is visible in only {face.coverage:.0%} of the sampled frames.")
    elif face.status == "no_face":
        parts.append("No face could be found in the video, so the visual channel is not used.")
    elif face.status == "absent":
        parts.append("There is no picture, only sound.")

    if voice.status == "ok":
        desc = describe_voice(voice)
        if voice_sign := voice_valence_sign(voice.head_valence):
            feel = "pleasant" if voice_sign > 0 else "unpleasant"
            desc.append(f"the voice model hears it as {feel} (valence {voice.head_valence:+.2f})")
        arousal = arousal_word(voice.arousal)
        lead = f"The voice ({voice.speech_duration_s:.1f} s of speech) sounds {arousal}" if arousal else \
            f"The voice ({voice.speech_duration_s:.1f} s of speech) was measured"
        parts.append(f"{lead}: {'; '.join(desc)}." if desc else f"{lead}.")
    elif voice.status in ("silent", "no_speech"):
        parts.append("The audio carries no speech, so tone of voice is not used.")
    elif voice.status == "absent":
        parts.append("The clip has no audio track.")

    if words.status == "ok" and words.text:
        quote = words.text if len(words.text) <= 160 else words.text[:157] + "..."
        origin = "the subtitle" if words.source == "subtitle" else \
            f"the speech recognised ({words.language or 'unknown language'})"
        sentence = f"In {origin}, the person says \u201c{quote}\u201d"
        word_scores = next((m.scores for m in modality_scores if m.modality == "words"), None)
        if words.cues:
            found = ", ".join(sorted({f"'{c.word}' ({c.emotion})" for c in words.cues}))
            sentence += f", with the emotion words {found}"
        if word_scores:
            w_label, w_p = _top(word_scores)
            sentence += f"; the wording suggests {w_label} ({w_p:.2f})"
        parts.append(sentence + ".")
    elif words.status == "no_text":
        parts.append("No words were available (no subtitle, and no speech to transcribe).")

    if label is None:
        parts.append("No modality gave usable evidence, so no emotion is concluded.")
    else:
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])
        used = [m for m in modality_scores if m.weight > 0]
        leaning = [m.modality.replace("_", " ") for m in used if _top(m.scores)[0] == label]
        conclusion = f"Overall the person most likely feels {label} ({ranked[0][1]:.2f})"
        if leaning:
            conclusion += f", supported by the {', '.join(leaning)}"
        if len(ranked) > 1 and ranked[1][1] >= 0.5 * ranked[0][1]:
            conclusion += f"; {ranked[1][0]} ({ranked[1][1]:.2f}) cannot be ruled out"
        parts.append(conclusion + ".")
    return " ".join(parts)
