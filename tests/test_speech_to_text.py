"""Speech recognition: the one-pass path for clips under 30 s gives what faster-whisper's own path gives."""

from __future__ import annotations

import numpy as np
import pytest

from tests.clips import example_audio


@pytest.fixture(scope="module")
def asr(perceiver):
    if perceiver.asr is None:
        pytest.skip("speech recognition is off")
    return perceiver.asr


def test_one_encoder_pass_matches_faster_whisper(asr) -> None:
    audio = example_audio()
    ours = asr.transcribe(audio)
    segments, info = asr._model.transcribe(audio, beam_size=1, condition_on_previous_text=False, vad_filter=False,
                                           without_timestamps=True)
    theirs = asr._join(list(segments), info.language, info.language_probability)
    assert ours.text == theirs.text and "wonderful news" in ours.text
    assert ours.language == theirs.language == "en"
    assert ours.confidence == pytest.approx(theirs.confidence, abs=0.01)
    assert ours.language_probability == pytest.approx(theirs.language_probability, abs=0.05)


def test_a_given_language_is_used_as_given(asr) -> None:
    given = asr.transcribe(example_audio()[: 16000 * 3], language="de")
    assert given.language == "de" and given.language_probability == 1.0


def test_audio_over_one_window_takes_the_full_path(asr) -> None:
    audio = np.concatenate([example_audio(), np.zeros(16000 * 26, np.float32)])  # 31.8 s
    assert len(audio) > 30 * 16000
    assert "wonderful news" in asr.transcribe(audio).text
