"""Fusion with the heads' calibrated outputs: a missing or unreliable modality loses weight."""

from __future__ import annotations

import pytest

from emollama.perception.text_emotion import merge_cues
from emollama.recognize.fusion import ModalityEvidence, fuse, voice_reliability, words_reliability
from emollama.schema import TextCue

VOICE_ANGRY = {"angry": 0.7, "bored": 0.02, "disgust": 0.05, "fear": 0.08, "happy": 0.1, "neutral": 0.03, "sad": 0.02}
WORDS_HAPPY = {"angry": 0.03, "disgust": 0.02, "fear": 0.02, "happy": 0.85, "neutral": 0.05, "sad": 0.02,
               "surprise": 0.01}


def _fused(voice_speech_s: float, asr_conf: float | None, with_words: bool = True) -> tuple[dict, list]:
    ev = [ModalityEvidence("voice", VOICE_ANGRY, voice_reliability(voice_speech_s, 0.9), "voice head")]
    if with_words:
        ev.append(ModalityEvidence("words", WORDS_HAPPY, words_reliability("asr", "this is a fine sentence",
                                                                           asr_conf), "text head"))
    return fuse(ev, "merr9")


def test_short_speech_makes_the_voice_count_less():
    long_speech, per_long = _fused(3.0, 0.9)
    short_speech, per_short = _fused(0.4, 0.9)
    assert per_short[0].weight < per_long[0].weight
    assert short_speech["angry"] < long_speech["angry"]
    assert max(short_speech, key=short_speech.get) == "happy"


def test_low_asr_confidence_makes_the_words_count_less():
    sure, _ = _fused(3.0, 0.95)
    unsure, per = _fused(3.0, 0.1)
    assert unsure["happy"] < sure["happy"] and per[1].weight < 0.2


def test_missing_words_leave_only_the_voice():
    alone, per = _fused(3.0, None, with_words=False)
    assert [m.modality for m in per] == ["voice"]
    assert max(alone, key=alone.get) == "angry"
    # bored (not in merr9) moved to neutral/sad by the documented map, not dropped
    assert sum(alone.values()) == pytest.approx(1.0, abs=1e-3)


def test_text_cue_for_a_label_the_head_lacks():
    cues = [TextCue(word="worried", emotion="worried"), TextCue(word="glad", emotion="happy")]
    merged = merge_cues(WORDS_HAPPY, cues)
    assert merged["worried"] == pytest.approx(0.3)
    assert sum(merged.values()) == pytest.approx(1.0, abs=1e-3)
    assert merge_cues(WORDS_HAPPY, []) == WORDS_HAPPY
