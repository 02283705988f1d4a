"""The shipped voice head: loads, gives a distribution with bored, maps onto label sets, orders arousal."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from emollama.heads.voice import CIRCUMPLEX, VoiceEmotionHead, arousal_valence
from emollama.labels import project_scores


@pytest.fixture(scope="module")
def head() -> VoiceEmotionHead:
    return VoiceEmotionHead()


def test_distribution_on_a_generated_tone(head: VoiceEmotionHead):
    t = np.arange(16000 * 2) / 16000
    audio = (0.2 * np.sin(2 * np.pi * (150 + 30 * np.sin(2 * np.pi * 3 * t)) * t)).astype(np.float32)
    probs, arousal, valence = head.analyze(audio)
    assert set(probs) == {"angry", "bored", "disgust", "fear", "happy", "neutral", "sad"}
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-3)
    assert -1 <= arousal <= 1 and -1 <= valence <= 1
    # bored has no MERR class: its mass reaches merr9 through the documented cross-set map.
    merr = project_scores({"bored": 1.0}, "merr9")
    assert merr["neutral"] == pytest.approx(0.7) and merr["sad"] == pytest.approx(0.3)


def test_uninformed_valence_constant_matches_the_shipped_head():
    from emollama.describe import VOICE_HEAD_UNINFORMED_VALENCE, voice_valence_sign
    from emollama.heads.linear import LinearHead
    from emollama.heads.voice import VOICE_DIR

    labels = LinearHead.load(VOICE_DIR / "voice_linear").labels
    _, v = arousal_valence(dict.fromkeys(labels, 1 / len(labels)))
    assert v == pytest.approx(VOICE_HEAD_UNINFORMED_VALENCE, abs=0.002)
    assert voice_valence_sign(v) == 0  # an unsure head gives no sign
    assert voice_valence_sign(arousal_valence({"angry": 1.0})[1]) == -1
    assert voice_valence_sign(arousal_valence({"happy": 1.0})[1]) == 1


def test_arousal_valence_expectation():
    assert arousal_valence({"angry": 1.0}) == CIRCUMPLEX["angry"]
    a, v = arousal_valence({"happy": 0.5, "sad": 0.5})
    assert a == pytest.approx(0.05) and v == pytest.approx(0.05)


def test_emodb_clips_angry_louder_than_bored(head: VoiceEmotionHead, shared_data: Path):
    """The head was fitted on these speakers, so this checks wiring (16 kHz path, label order), not accuracy."""
    from emollama.media.decode import MediaReader

    root = shared_data / "emodb"
    with open(root / "labels.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["label"] in ("angry", "bored", "sad")]
    rows = rows[::6][:12]
    arousal = {"angry": [], "low": []}
    correct = 0
    for r in rows:
        probs, a, _ = head.analyze(MediaReader(root / r["path"]).audio())
        correct += max(probs, key=probs.get) == r["label"]
        arousal["angry" if r["label"] == "angry" else "low"].append(a)
    assert correct >= len(rows) // 2
    assert np.mean(arousal["angry"]) > np.mean(arousal["low"])


def test_the_head_hears_only_the_speech_segments():
    from emollama.perception.voice_emotion import speech_only
    from emollama.schema import SpeechSegment, VoiceClues

    audio = np.zeros(16000 * 3, np.float32)
    audio[16000:24000] = 1.0
    clues = VoiceClues(status="ok", speech_segments=[SpeechSegment(start_s=1.0, end_s=1.5)])
    speech = speech_only(audio, clues)
    assert speech is not None and speech.size == 8000 and np.all(speech == 1.0)
    short = VoiceClues(status="ok", speech_segments=[SpeechSegment(start_s=1.0, end_s=1.1)])
    assert speech_only(audio, short) is None  # under 0.25 s: the head is not asked
