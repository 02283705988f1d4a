"""Silence is judged by the loud part of a track, so softly spoken speech is heard, not dropped."""

from __future__ import annotations

import numpy as np

from emollama.perception.voice import SAMPLE_RATE, SILENCE_DBFS, loud_level_dbfs


def _soft_take(speech_peak: float = 0.0036, seconds: float = 3.3, speech_share: float = 0.3) -> np.ndarray:
    """Mostly pause, with a short voiced stretch whose level is near -52 dBFS (a soft RAVDESS take)."""
    rng = np.random.default_rng(0)
    audio = rng.normal(0, 1e-5, int(seconds * SAMPLE_RATE)).astype(np.float32)
    n = int(speech_share * len(audio))
    t = np.arange(n) / SAMPLE_RATE
    audio[len(audio) // 3: len(audio) // 3 + n] += (speech_peak * np.sin(2 * np.pi * 140 * t)).astype(np.float32)
    return audio


def test_soft_speech_with_long_pauses_is_not_silence():
    audio = _soft_take()
    whole_rms_db = 20 * np.log10(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
    assert whole_rms_db < -55  # the old rule (whole-track RMS under -55 dBFS) called this silence
    assert loud_level_dbfs(audio) > SILENCE_DBFS + 5


def test_digital_silence_and_a_faint_noise_floor_are_silence():
    assert loud_level_dbfs(np.zeros(SAMPLE_RATE, np.float32)) < SILENCE_DBFS
    floor = np.random.default_rng(1).normal(0, 10 ** (-75 / 20), SAMPLE_RATE).astype(np.float32)
    assert loud_level_dbfs(floor) < SILENCE_DBFS


def test_a_track_shorter_than_one_frame_has_a_level():
    assert np.isfinite(loud_level_dbfs(np.full(100, 0.1, np.float32)))
