"""Voice: speech segments (Silero VAD) and prosody (Praat via parselmouth), absolute and relative.

Why relative measures: a deep voice is not a sad voice. Every prosodic measure is reported both
as measured and relative to a reference - the clip's own calm baseline (its quieter, lower
stretches) for excursions, and a sex-typical norm (chosen from the speaker's own median F0) for
level - so the clues say "pitch peaks 6 semitones above this speaker's baseline", not "pitch is
220 Hz". Arousal is read from those measures by a logistic model calibrated on labelled speech
(:mod:`emollama.heads.arousal`); it is the only emotion signal read from prosody here (valence is
not reliably audible in prosody alone).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emollama.errors import ModelUnavailableError
from emollama.heads.arousal import shipped_arousal_model
from emollama.heads.calibration import softmax
from emollama.schema import SpeechSegment, VoiceClues

SAMPLE_RATE = 16_000
#: The track counts as silence when its loud part (:data:`LOUD_PERCENTILE` of the 20 ms frames'
#: RMS) stays below this level (dBFS). The loud part, not the whole-track RMS: softly spoken acted
#: takes (RAVDESS "sad, normal") have a whole-track RMS near -57 dBFS because most of the track is
#: pause, yet their speech frames reach -45 dBFS and the VAD finds every word.
SILENCE_DBFS = -60.0
LOUD_PERCENTILE = 95.0
#: Typical speaking F0 (Hz) by voice type; the nearer one is the speaker's norm.
_F0_NORMS = (120.0, 210.0)
#: Typical syllable rate of conversational speech (syllable nuclei per second of speech).
_TYPICAL_RATE = 4.0

#: How arousal (-1..1) shifts each canonical label's log-score in the voice modality.
AROUSAL_SLOPES: dict[str, float] = {
    "angry": 1.0, "surprise": 0.8, "fear": 0.6, "happy": 0.6, "worried": 0.2, "doubt": 0.0,
    "disgust": 0.0, "contempt": -0.2, "neutral": -0.4, "sad": -1.0,
}
_AROUSAL_SHARPNESS = 1.5


def semitones(f: np.ndarray | float, ref: float) -> np.ndarray | float:
    return 12.0 * np.log2(np.asarray(f) / ref)


@dataclass
class ProsodyTrack:
    """Frame-level contours inside speech (10 ms hop), for plots and relative measures."""

    f0_hz: np.ndarray
    intensity_db: np.ndarray


class VoiceAnalyzer:
    """Create once (loads the VAD and the arousal calibration); call :meth:`analyze` per clip.

    ``calibrated_arousal=False`` leaves ``arousal`` empty: the calibration's own recipe measures
    prosody with it, so it can rebuild a missing or outdated calibration file.
    """

    name = "silero-vad 6 (onnx) + praat-parselmouth prosody"

    def __init__(self, calibrated_arousal: bool = True) -> None:
        self.arousal_model = shipped_arousal_model() if calibrated_arousal else None
        try:
            from silero_vad import get_speech_timestamps_from_probs, load_silero_vad
        except ImportError as exc:  # pragma: no cover - install problem
            raise ModelUnavailableError(f"silero-vad is not installed ({exc}); pip install silero-vad") from None
        self._vad = load_silero_vad(onnx=True)
        self._timestamps = get_speech_timestamps_from_probs
        # Warm the ONNX session and Praat once here, so per-clip timings measure only the clip.
        warm = (0.1 * np.sin(np.arange(SAMPLE_RATE // 2) * 0.1)).astype(np.float32)
        self.speech(warm)
        prosody_measures(warm, [SpeechSegment(start_s=0.0, end_s=0.5)])

    def speech(self, audio: np.ndarray) -> tuple[list[SpeechSegment], float]:
        """Speech segments and the mean speech probability inside them (the VAD's confidence)."""
        import torch

        probs = self._vad.audio_forward(torch.from_numpy(audio).float(), SAMPLE_RATE)[0].numpy()
        stamps = self._timestamps(probs.tolist(), sampling_rate=SAMPLE_RATE, return_seconds=False,
                                  audio_length_samples=len(audio))
        segments = [SpeechSegment(start_s=round(s["start"] / SAMPLE_RATE, 3),
                                  end_s=round(s["end"] / SAMPLE_RATE, 3)) for s in stamps]
        inside = [probs[int(s["start"] // 512): int(np.ceil(s["end"] / 512))] for s in stamps]
        conf = float(np.mean(np.concatenate(inside))) if inside else 0.0
        return segments, conf

    def analyze(self, audio: np.ndarray | None) -> tuple[VoiceClues, ProsodyTrack | None]:
        if audio is None:
            return VoiceClues(status="absent", note="the input has no audio track"), None
        if audio.size < SAMPLE_RATE // 4:
            return VoiceClues(status="silent", note="the audio is shorter than 0.25 s"), None
        loud_db = loud_level_dbfs(audio)
        if loud_db < SILENCE_DBFS:
            return VoiceClues(status="silent", note=f"the audio is silent (its loudest frames reach "
                                                    f"{loud_db:.0f} dBFS)"), None
        segments, vad_conf = self.speech(audio)
        speech_s = sum(s.end_s - s.start_s for s in segments)
        if not segments:
            return VoiceClues(status="no_speech", vad_confidence=vad_conf,
                              note="sound is present but no speech was detected"), None
        prosody, relative, track = prosody_measures(audio, segments)
        arousal = (self.arousal_model.arousal({"prosody": prosody, "relative": relative})
                   if self.arousal_model is not None else None)
        return VoiceClues(status="ok", speech_segments=segments, speech_duration_s=round(speech_s, 3),
                          vad_confidence=round(vad_conf, 3), prosody=prosody, relative=relative,
                          arousal=arousal), track


def loud_level_dbfs(audio: np.ndarray, frame_s: float = 0.02) -> float:
    """RMS level (dBFS) of the loud part of ``audio``: the :data:`LOUD_PERCENTILE` of its 20 ms frames."""
    n = max(1, int(frame_s * SAMPLE_RATE))
    usable = audio[:len(audio) // n * n].astype(np.float64)
    if usable.size == 0:
        usable = audio.astype(np.float64)
        n = max(1, usable.size)
    frames = usable.reshape(-1, n)
    rms = np.sqrt(np.mean(frames ** 2, axis=1))
    return float(20 * np.log10(np.percentile(rms, LOUD_PERCENTILE) + 1e-12))


def prosody_measures(audio: np.ndarray, segments: list[SpeechSegment]
                     ) -> tuple[dict[str, float | None], dict[str, float | None], ProsodyTrack]:
    """Praat measures over the speech segments, plus their relative versions."""
    import parselmouth
    from parselmouth.praat import call

    snd = parselmouth.Sound(audio.astype(np.float64), sampling_frequency=SAMPLE_RATE)
    pitch = snd.to_pitch(time_step=0.01, pitch_floor=75.0, pitch_ceiling=500.0)
    f0 = pitch.selected_array["frequency"]
    f0_t = pitch.xs()
    inten = snd.to_intensity(minimum_pitch=75.0, time_step=0.01)
    db = inten.values[0]
    db_t = inten.xs()
    in_speech_f0 = _mask(f0_t, segments)
    in_speech_db = _mask(db_t, segments)
    voiced = f0[(f0 > 0) & in_speech_f0]
    loud = db[in_speech_db & np.isfinite(db)]
    speech_s = sum(s.end_s - s.start_s for s in segments)

    pp = call(snd, "To PointProcess (periodic, cc)", 75.0, 500.0)
    jitter = _safe(lambda: call(pp, "Get jitter (local)", 0, 0, 0.0001, 0.02, 1.3))
    shimmer = _safe(lambda: call([snd, pp], "Get shimmer (local)", 0, 0, 0.0001, 0.02, 1.3, 1.6))
    hnr = _safe(lambda: call(snd.to_harmonicity_cc(time_step=0.01, minimum_pitch=75.0), "Get mean", 0, 0))
    rate = _syllable_rate(db[in_speech_db], speech_s)

    prosody: dict[str, float | None] = {
        "f0_median_hz": _r(np.median(voiced)) if voiced.size else None,
        "f0_p10_hz": _r(np.percentile(voiced, 10)) if voiced.size else None,
        "f0_p90_hz": _r(np.percentile(voiced, 90)) if voiced.size else None,
        "f0_sd_st": _r(np.std(semitones(voiced, np.median(voiced)))) if voiced.size > 2 else None,
        "intensity_mean_db": _r(np.mean(loud)) if loud.size else None,
        "intensity_p90_db": _r(np.percentile(loud, 90)) if loud.size else None,
        "voiced_fraction": _r(voiced.size / max(1, int(in_speech_f0.sum()))),
        "syllable_rate_per_s": _r(rate),
        "jitter_local": _r(jitter, 4),
        "shimmer_local": _r(shimmer, 4),
        "hnr_db": _r(hnr),
        "speech_fraction": _r(speech_s / (len(audio) / SAMPLE_RATE)),
    }
    relative: dict[str, float | None] = {}
    if voiced.size > 2:
        med = float(np.median(voiced))
        norm = min(_F0_NORMS, key=lambda n: abs(np.log(med / n)))
        baseline = float(np.percentile(voiced, 20))
        relative["pitch_level_vs_norm_st"] = _r(semitones(med, norm))
        relative["pitch_range_st"] = _r(semitones(np.percentile(voiced, 90), np.percentile(voiced, 10)))
        relative["pitch_peak_vs_baseline_st"] = _r(semitones(np.percentile(voiced, 95), baseline))
        last = segments[-1]
        tail = f0[(f0 > 0) & (f0_t >= last.start_s + 0.5 * (last.end_s - last.start_s)) & (f0_t <= last.end_s)]
        relative["final_pitch_change_st"] = _r(semitones(np.median(tail), med)) if tail.size > 2 else None
    if loud.size > 2:
        relative["loudness_peak_vs_baseline_db"] = _r(np.percentile(loud, 95) - np.percentile(loud, 20))
    relative["rate_vs_typical"] = _r(rate / _TYPICAL_RATE) if rate is not None else None
    track = ProsodyTrack(f0_hz=np.where(in_speech_f0, f0, 0.0), intensity_db=np.where(in_speech_db, db, np.nan))
    return prosody, relative, track


def voice_label_scores(arousal: float) -> dict[str, float]:
    """Canonical-label probabilities implied by arousal alone (see :data:`AROUSAL_SLOPES`)."""
    logits = np.array([_AROUSAL_SHARPNESS * slope * arousal for slope in AROUSAL_SLOPES.values()])
    return dict(zip(AROUSAL_SLOPES, softmax(logits).tolist(), strict=True))


def _mask(times: np.ndarray, segments: list[SpeechSegment]) -> np.ndarray:
    mask = np.zeros(times.shape, dtype=bool)
    for s in segments:
        mask |= (times >= s.start_s) & (times <= s.end_s)
    return mask


def _syllable_rate(db: np.ndarray, speech_s: float) -> float | None:
    """Syllable nuclei per second: intensity peaks at least 2 dB above their surroundings."""
    from scipy.signal import find_peaks

    d = db[np.isfinite(db)]
    if speech_s < 0.3 or d.size < 5:
        return None
    peaks, _ = find_peaks(d, prominence=2.0, distance=10, height=np.percentile(d, 30))
    return len(peaks) / speech_s


def _safe(fn) -> float | None:  # noqa: ANN001
    try:
        value = float(fn())
    except Exception:  # Praat raises generic errors on unvoiced input
        return None
    return value if np.isfinite(value) else None


def _r(value: float | None, digits: int = 3) -> float | None:
    if value is None:
        return None
    value = float(value)
    return round(value, digits) if np.isfinite(value) else None
