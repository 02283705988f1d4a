"""File → :class:`Perception`: every perception stage on one clip, before any recogniser decides.

:class:`Perceiver` loads the perception models once (face mesh + face head, VAD + prosody + voice
head, text head, Whisper) and runs them in data-flow order: decode → voice → face track → AUs /
peak / expression → words (the given subtitle, else speech recognition, which runs alongside the
face stage). What it measured is
one :class:`Perception`; the recognisers in :mod:`emollama.recognize` turn that into an
:class:`~emollama.schema.AnalysisResult`, and MERR annotation and ``eval-model`` reuse the same
pass, so every consumer sees exactly what ``analyze`` sees.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from emollama.media.corrupt import ClipCorruption
from emollama.media.decode import Frame, MediaReader, check_fps
from emollama.media.subtitles import resolve_subtitle
from emollama.perception.face import FaceAnalyzer, FaceScan
from emollama.perception.face_clues import FaceSummary, summarize_faces
from emollama.schema import Clues, MediaInfo, WordsClues
from emollama.settings import AnalysisSettings

if TYPE_CHECKING:
    from emollama.perception.speech_to_text import Transcript

__all__ = ["EncoderFrames", "Perceiver", "Perception", "face_stage", "sample_frames"]

#: Called with the name of each stage as it starts ("face", "voice", "words").
Progress = Callable[[str], None]
#: Called with (media seconds done, media seconds in all) as the face stage moves through a video.
MediaProgress = Callable[[float, float], None]


@dataclass
class EncoderFrames:
    """Frames handed to a multimodal model: evenly spread over the clip, plus the peak frame."""

    frames: list[np.ndarray]  # RGB uint8 H×W×3
    times: list[float]
    peak_position: int | None  # index into ``frames`` of the peak-expression frame


@dataclass
class Perception:
    """What the perception stages measured on one file (shared by every recogniser tier)."""

    reader: MediaReader
    media: MediaInfo
    fps: float
    scan: FaceScan
    face: FaceSummary
    audio: np.ndarray | None
    clues: Clues
    voice_probs: dict[str, float] | None  # the voice head's classes; None without enough speech
    text_probs: dict[str, float]  # the text head's classes (+ cue mass); empty without words
    models: dict[str, str]  # what measured each modality
    timings: dict[str, float]
    warnings: list[str]
    started: float
    encoder_frames: EncoderFrames | None = field(default=None)


def quiet_native_logs() -> None:
    """MediaPipe/TFLite log to stderr through glog; keep the CLI output readable."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", message=r".*SymbolDatabase\.GetPrototype.*")


class Perceiver:
    """Loads the perception models once; :meth:`perceive` runs them on one file."""

    def __init__(self, settings: AnalysisSettings | None = None) -> None:
        self.settings = settings if settings is not None else AnalysisSettings()
        quiet_native_logs()
        t0 = time.perf_counter()
        from emollama.heads.face import load_expression_model
        from emollama.perception.text_emotion import TextEmotion
        from emollama.perception.voice_emotion import VoiceEmotion

        self.face = FaceAnalyzer(expression=load_expression_model(), max_faces=self.settings.max_faces)
        self.voice = VoiceEmotion()
        self.text = TextEmotion()
        self.asr = None
        self._asr_thread: ThreadPoolExecutor | None = None
        if self.settings.asr:
            from emollama.perception.speech_to_text import SpeechRecognizer

            self.asr = SpeechRecognizer()
        self.load_s = time.perf_counter() - t0

    def model_names(self) -> dict[str, str]:
        names = {"face": "mediapipe 0.10.14 face detection + face mesh (478 landmarks)",
                 "expression": self.face.expression.name, "action_units": "landmark geometry (emollama)",
                 "voice": self.voice.name, "text": self.text.name}
        if self.asr is not None:
            names["asr"] = self.asr.name
        return names

    def perceive(self, path: str | Path, *, subtitle: str | None = None, fps: float | None = None,
                 progress: Progress | None = None, keep_crops: int = 0, encoder_frames: int = 0,
                 media_progress: MediaProgress | None = None, corruption: ClipCorruption | None = None
                 ) -> Perception:
        """Every perception stage on one file.

        ``progress`` hears each stage's name; ``media_progress`` how far the face stage (the slow
        one on video) has got, in media seconds. ``corruption`` (robustness checks only) damages
        the decoded audio and frames before any model sees them.

        ``keep_crops``/``encoder_frames``: also keep that many evenly spread main-face crops /
        frames (plus the peak frame) for a multimodal model's encoders.
        """
        fps = check_fps(self.settings.fps if fps is None else fps)
        step = progress or (lambda _stage: None)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        transcript_given = resolve_subtitle(subtitle)

        reader = MediaReader(Path(path), max_duration_s=self.settings.max_duration_s)
        # Audio first: decoding it is cheap, and it stops at the duration limit, so a file whose
        # sound runs past the limit is refused before the face stage works through its video.
        t = time.perf_counter()
        audio = reader.audio()
        timings["audio_decode_s"] = time.perf_counter() - t
        if corruption is not None:
            t = time.perf_counter()
            audio = corruption.audio(audio)
            timings["corruption_s"] = time.perf_counter() - t
        # The voice first: its speech segments decide whether speech recognition runs, and then
        # Whisper transcribes on a second thread while the face stage walks the video (both are
        # native code that releases the GIL, so the two overlap on a multi-core CPU).
        step("voice")
        t = time.perf_counter()
        voice, voice_probs = self.voice.analyze(audio)
        timings["voice_s"] = time.perf_counter() - t
        asr = self._start_asr(transcript_given, audio, voice.speech_duration_s)

        step("face")
        t = time.perf_counter()
        try:
            scan, face, info = face_stage(self.face, reader, fps, keep_crops, media_progress,
                                          corruption.frames if corruption is not None else None)
        except Exception:
            if asr is not None and not asr.cancel():  # already running: let it end before the next clip starts
                with contextlib.suppress(Exception):
                    asr.result()
            raise
        timings["decode_and_face_s"] = time.perf_counter() - t
        if audio is not None:
            info = info.model_copy(update={"audio_sample_rate": 16_000})

        step("words")
        words, text_probs = self._words(transcript_given, asr, timings, reader.warnings)
        p = Perception(reader=reader, media=info, fps=fps, scan=scan, face=face, audio=audio,
                       clues=Clues(face=face.clues, voice=voice, words=words), voice_probs=voice_probs,
                       text_probs=text_probs, models=self.model_names(), timings=timings,
                       warnings=reader.warnings, started=started)
        if encoder_frames:
            t = time.perf_counter()
            p.encoder_frames = sample_frames(p, encoder_frames)
            timings["encoder_frames_s"] = time.perf_counter() - t
        return p

    def _start_asr(self, given: str | None, audio: np.ndarray | None, speech_s: float) -> Future | None:
        """Speech recognition started in the background when it will be needed (no subtitle, enough speech)."""
        if given or self.asr is None or audio is None or speech_s < self.settings.min_speech_for_asr_s:
            return None
        if self._asr_thread is None:
            self._asr_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emollama-asr")
        asr = self.asr

        def run() -> tuple[Transcript, float]:
            t = time.perf_counter()
            return asr.transcribe(audio), time.perf_counter() - t

        return self._asr_thread.submit(run)

    def _words(self, given: str | None, asr: Future | None, timings: dict[str, float],
               warnings: list[str]) -> tuple[WordsClues, dict[str, float]]:
        """The transcript (given subtitle, else ASR) and the text-emotion probabilities."""
        from emollama.perception.text_emotion import limit_transcript

        if given:
            source, text, lang, lang_p, conf = "subtitle", given, None, None, None
        elif asr is not None:
            t = time.perf_counter()
            tr, timings["asr_s"] = asr.result()
            timings["asr_wait_s"] = time.perf_counter() - t  # what the overlap with the face stage left
            source, text, lang, lang_p, conf = "asr", tr.text, tr.language, tr.language_probability, tr.confidence
            if not text:
                return WordsClues(status="no_text", source="asr", language=lang,
                                  note="speech recognition returned no words"), {}
        else:
            note = "no subtitle given and no speech to transcribe" if self.asr is not None else \
                "no subtitle given and speech recognition is off"
            return WordsClues(status="no_text", note=note), {}
        text, cut = limit_transcript(text)
        if cut:
            warnings.append(cut)
        t = time.perf_counter()
        probs, cues, polarity = self.text.analyze(text, lang)
        timings["text_s"] = time.perf_counter() - t
        clue = WordsClues(status="ok", source=source, text=text, language=lang, language_probability=lang_p,
                          asr_confidence=conf, cues=cues, polarity=polarity)
        return clue, probs


def face_stage(analyzer: FaceAnalyzer, reader: MediaReader, fps: float, keep_crops: int = 0,
               media_progress: MediaProgress | None = None,
               transform: Callable[[Iterator[Frame]], Iterator[Frame]] | None = None
               ) -> tuple[FaceScan, FaceSummary, MediaInfo]:
    """Decode the sampled frames once and track the face; the media info gains the sampling facts.

    Its own function so ``eval-model face`` runs exactly this on photos. ``transform`` changes the
    decoded frames first (the blur of a robustness check).
    """
    info = reader.info
    expected = int(info.duration_s * fps) + 1 if info.kind == "video" else 1
    if info.has_video:
        frames = reader.frames(fps)
        if transform is not None:
            frames = transform(frames)
        if media_progress is not None and info.kind == "video":
            frames = _reporting(frames, media_progress, info.duration_s)
        scan = analyzer.scan(frames, static=info.kind == "image", expected_frames=expected, keep_crops=keep_crops)
    else:
        scan = FaceScan(times=[], main=None, max_faces=0)
    face = summarize_faces(scan, info.has_video)
    used_fps = min(fps, info.native_fps) if info.native_fps else fps
    info = info.model_copy(update={"n_sampled_frames": len(scan.times),
                                   "sampled_fps": round(used_fps, 3) if info.kind == "video" else None})
    return scan, face, info


def _reporting(frames: Iterator[Frame], report: MediaProgress, total_s: float) -> Iterator[Frame]:
    for frame in frames:
        report(frame.time_s, total_s)
        yield frame


def sample_frames(p: Perception, n: int) -> EncoderFrames:
    """Re-decode only the frames a multimodal model needs: ``n`` evenly spread ones plus the peak frame."""
    count = len(p.scan.times)
    if count == 0:
        return EncoderFrames([], [], None)
    wanted = set(np.linspace(0, count - 1, min(n, count)).round().astype(int).tolist())
    peak = p.face.peak_frame_index
    if peak is not None:
        wanted.add(peak)
    frames, times, peak_pos = [], [], None
    for frame in p.reader.frames(p.fps):
        if frame.index in wanted:
            if frame.index == peak:
                peak_pos = len(frames)
            frames.append(frame.rgb)
            times.append(frame.time_s)
    return EncoderFrames(frames, times, peak_pos)
