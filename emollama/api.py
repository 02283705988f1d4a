"""Public Python API: ``analyze(path)`` and the reusable :class:`Analyzer`.

``Analyzer`` loads every perception model once (face mesh, expression network, VAD, Whisper,
e5) and then analyses any number of clips; ``analyze()`` keeps one default analyzer per process
so repeated calls do not reload models.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emollama.labels import DEFAULT_LABEL_SET, get_label_set
from emollama.media.decode import DEFAULT_FPS, DEFAULT_MAX_DURATION_S, MediaReader, check_fps, check_max_duration
from emollama.media.subtitles import resolve_subtitle
from emollama.perception.face import FaceScan
from emollama.perception.face_clues import FaceSummary, summarize_faces
from emollama.recognize.au_rules import au_emotion_scores
from emollama.recognize.fusion import (
    ModalityEvidence,
    face_reliability,
    fuse,
    voice_reliability,
    words_reliability,
)
from emollama.recognize.reasoning import write_reasoning
from emollama.schema import AnalysisResult, Clues, FaceClues, MediaInfo, VoiceClues, WordsClues

__all__ = ["Analyzer", "EmotionLlamaAnalyzer", "Perception", "analyze"]

#: Below this much speech, ASR is not attempted (Whisper invents text on near-silence).
MIN_SPEECH_FOR_ASR_S = 0.3


def _quiet_native_logs() -> None:
    """MediaPipe/TFLite log to stderr through glog; keep the CLI output readable."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", message=r".*SymbolDatabase\.GetPrototype.*")


def _version() -> str:
    from emollama import __version__

    return __version__


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
    text_probs: dict[str, float]
    timings: dict[str, float]
    warnings: list[str]
    started: float


class Analyzer:
    """Loads the perception models once; :meth:`analyze` runs the ``clues`` tier on one file."""

    def __init__(self, *, fps: float = DEFAULT_FPS, max_duration_s: float = DEFAULT_MAX_DURATION_S,
                 label_set: str = DEFAULT_LABEL_SET, asr: bool = True) -> None:
        get_label_set(label_set)  # fail fast on a bad name
        _quiet_native_logs()
        self.fps = check_fps(fps)
        self.max_duration_s = check_max_duration(max_duration_s)
        self.label_set = label_set
        t0 = time.perf_counter()
        from emollama.heads.face import load_expression_model
        from emollama.heads.pipeline import HeadedText, HeadedVoice
        from emollama.perception.face import FaceAnalyzer
        from emollama.perception.text_emotion import TextEmotion
        from emollama.perception.voice import VoiceAnalyzer

        # The trained heads (emollama/heads, docs/heads.md) are the default; the wrappers keep the
        # clue-producing components and add the heads' calibrated probabilities.
        self.face = FaceAnalyzer(expression=load_expression_model())
        self.voice = HeadedVoice(VoiceAnalyzer())
        self.text = HeadedText(TextEmotion())
        self.asr = None
        if asr:
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

    def analyze(self, path: str | Path, *, subtitle: str | None = None, label_set: str | None = None,
                fps: float | None = None, progress: Callable[[str], None] | None = None) -> AnalysisResult:
        """Analyse one image, audio or video file. Raises :class:`~emollama.errors.EmollamaError` on bad input."""
        p = self.perceive(path, subtitle=subtitle, fps=fps, progress=progress)
        (progress or (lambda _stage: None))("fusion")
        return self.recognize(p, label_set)

    def recognize(self, p: Perception, label_set: str | None = None) -> AnalysisResult:
        """The clues-tier decision (fusion + reasoning) on an existing :class:`Perception`.

        Separate from :meth:`perceive` so other pipelines (MERR annotation) can reuse one
        perception pass for both the prediction and their own descriptions.
        """
        labels = get_label_set(label_set or self.label_set)
        t = time.perf_counter()
        evidence = self._evidence(p.face, p.clues.voice, p.clues.words, p.text_probs)
        warnings_out = list(p.warnings)
        label: str | None = None
        if evidence:
            scores, per_modality = fuse(evidence, labels)
            if sum(m.weight for m in per_modality) > 0:
                label = max(scores, key=scores.__getitem__)
            else:
                warnings_out.append("every modality had zero reliability (e.g. a face the detector could not "
                                    "confirm): no emotion could be recognised")
        else:
            scores = {y: round(1.0 / len(labels), 4) for y in labels.labels}
            per_modality, label = [], None
            warnings_out.append("no usable face, voice or words: no emotion could be recognised")
        reasoning = write_reasoning(p.clues, scores, label, per_modality)
        p.timings["fusion_and_reasoning_s"] = time.perf_counter() - t
        p.timings["total_s"] = time.perf_counter() - p.started
        return AnalysisResult(
            emollama_version=_version(), tier="clues", media=p.media, label_set=labels.name, label=label,
            scores=scores, reasoning=reasoning, clues=p.clues, modality_scores=per_modality,
            models=self.model_names(), timings_s={k: round(v, 3) for k, v in p.timings.items()},
            warnings=warnings_out,
        )

    def perceive(self, path: str | Path, *, subtitle: str | None = None, fps: float | None = None,
                 progress: Callable[[str], None] | None = None, keep_crops: int = 0) -> Perception:
        """Every perception stage on one file: the clues, before any recogniser decides."""
        fps = check_fps(self.fps if fps is None else fps)
        step = progress or (lambda _stage: None)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        transcript_given = resolve_subtitle(subtitle)

        reader = MediaReader(Path(path), max_duration_s=self.max_duration_s)
        info = reader.info
        step("face")
        t = time.perf_counter()
        expected = int(info.duration_s * fps) + 1 if info.kind == "video" else 1
        if info.has_video:
            scan = self.face.scan(reader.frames(fps), static=info.kind == "image", expected_frames=expected,
                                  keep_crops=keep_crops)
        else:
            scan = FaceScan(times=[], main=None, max_faces=0)
        face = summarize_faces(scan, info.has_video)
        timings["decode_and_face_s"] = time.perf_counter() - t
        used_fps = min(fps, info.native_fps) if info.native_fps else fps
        info = info.model_copy(update={"n_sampled_frames": len(scan.times),
                                       "sampled_fps": round(used_fps, 3) if info.kind == "video" else None})

        step("voice")
        t = time.perf_counter()
        audio = reader.audio()
        timings["audio_decode_s"] = time.perf_counter() - t
        if audio is not None:
            info = info.model_copy(update={"audio_sample_rate": 16_000})
        t = time.perf_counter()
        voice, _track = self.voice.analyze(audio)
        timings["voice_s"] = time.perf_counter() - t

        step("words")
        words, text_probs = self._words(transcript_given, audio, voice.speech_duration_s, timings)
        clues = Clues(face=face.clues, voice=voice, words=words)
        return Perception(reader=reader, media=info, fps=fps, scan=scan, face=face, audio=audio, clues=clues,
                          text_probs=text_probs, timings=timings, warnings=reader.warnings, started=started)

    def _words(self, given: str | None, audio: np.ndarray | None, speech_s: float,
               timings: dict[str, float]) -> tuple[WordsClues, dict[str, float]]:
        """The transcript (given subtitle, else ASR) and the text-emotion probabilities."""
        if given:
            source, text, lang, lang_p, conf = "subtitle", given, None, None, None
        elif self.asr is not None and audio is not None and speech_s >= MIN_SPEECH_FOR_ASR_S:
            t = time.perf_counter()
            tr = self.asr.transcribe(audio)
            timings["asr_s"] = time.perf_counter() - t
            source, text, lang, lang_p, conf = "asr", tr.text, tr.language, tr.language_probability, tr.confidence
            if not text:
                return WordsClues(status="no_text", source="asr", language=lang,
                                  note="speech recognition returned no words"), {}
        else:
            note = "no subtitle given and no speech to transcribe" if self.asr is not None else \
                "no subtitle given and speech recognition is off"
            return WordsClues(status="no_text", note=note), {}
        t = time.perf_counter()
        probs, cues, polarity = self.text.analyze(text, lang)
        timings["text_s"] = time.perf_counter() - t
        clue = WordsClues(status="ok", source=source, text=text, language=lang, language_probability=lang_p,
                          asr_confidence=conf, cues=cues, polarity=polarity)
        return clue, probs

    def _evidence(self, face: FaceSummary, voice: VoiceClues, words: WordsClues,
                  text_probs: dict[str, float]) -> list[ModalityEvidence]:
        from emollama.perception.voice import voice_label_scores

        out: list[ModalityEvidence] = []
        fc: FaceClues = face.clues
        if fc.status == "ok" and face.expression_probs:
            rel = face_reliability(fc.coverage, fc.mean_detection_confidence)
            out.append(ModalityEvidence("face", face.expression_probs, rel, self.face.expression.name))
            if fc.peak is not None:
                au_rel = rel * (1.0 if fc.baseline == "own_least_expressive" else 0.5)
                out.append(ModalityEvidence("action_units", au_emotion_scores(fc.peak.au, face.corner_asymmetry),
                                            au_rel, "AU prototype rules at the peak frame"))
        head_out = self.voice.result_for(voice) if hasattr(self.voice, "result_for") else None
        if voice.status == "ok" and head_out is not None:
            probs, arousal, valence = head_out
            out.append(ModalityEvidence("voice", probs,
                                        voice_reliability(voice.speech_duration_s, voice.vad_confidence),
                                        f"voice head (EmoDB); arousal {arousal:+.2f}, valence {valence:+.2f}"))
        elif voice.status == "ok" and voice.arousal is not None:
            out.append(ModalityEvidence("voice", voice_label_scores(voice.arousal),
                                        voice_reliability(voice.speech_duration_s, voice.vad_confidence),
                                        "arousal from prosody"))
        if words.status == "ok" and text_probs:
            out.append(ModalityEvidence("words", text_probs,
                                        words_reliability(words.source, words.text, words.asr_confidence),
                                        "text head (GoEmotions+MELD) + emotion words"))
        return out


class EmotionLlamaAnalyzer:
    """The ``emotion-llama`` tier: the same perception stages, then the multimodal LLM decides.

    Perception supplies what the encoders need (sampled frames, the peak frame, aligned face crops,
    16 kHz audio, the subtitle or ASR transcript); the LLM's generated text becomes the reasoning
    and its label is parsed with :func:`emollama.label_parsing.parse_label`. Scores are one-hot on
    the parsed label (the LLM gives no calibrated distribution); an unparseable answer gives
    ``label=None``, uniform scores and a warning - never a silent "neutral".
    """

    #: Frames handed to the global encoder pool (evenly spread) and face crops for MAE/VideoMAE.
    n_frames = 16

    def __init__(self, model_dir: str | Path, *, fps: float = DEFAULT_FPS,
                 max_duration_s: float = DEFAULT_MAX_DURATION_S, label_set: str = DEFAULT_LABEL_SET,
                 device: str = "cpu", dtype: str | None = None, task: str = "reason",
                 max_new_tokens: int = 256) -> None:
        from emollama.model.tier import EmotionLlamaRecognizer

        self.recognizer = EmotionLlamaRecognizer.from_pretrained(model_dir, device=device, dtype=dtype)
        self.perception = Analyzer(fps=fps, max_duration_s=max_duration_s, label_set=label_set)
        self.label_set = label_set
        self.task = task
        self.max_new_tokens = max_new_tokens

    def analyze(self, path: str | Path, *, subtitle: str | None = None, label_set: str | None = None,
                fps: float | None = None, progress: Callable[[str], None] | None = None) -> AnalysisResult:
        from emollama.model.tier import EmotionLlamaInputs

        labels = get_label_set(label_set or self.label_set)
        p = self.perception.perceive(path, subtitle=subtitle, fps=fps, progress=progress, keep_crops=self.n_frames)
        (progress or (lambda _stage: None))("emotion-llama")
        t = time.perf_counter()
        frames, times, peak_pos = self._frames(p)
        inputs = EmotionLlamaInputs(frames=frames, frame_times=times, face_crops=p.scan.crops,
                                    peak_frame_index=peak_pos, audio_16k=p.audio,
                                    subtitle=p.clues.words.text or None)
        out = self.recognizer.recognize(inputs, labels.name, self.task, max_new_tokens=self.max_new_tokens)
        p.timings["emotion_llama_s"] = time.perf_counter() - t
        p.timings["total_s"] = time.perf_counter() - p.started
        warnings_out = list(p.warnings)
        if out.label is None:
            scores = {y: round(1.0 / len(labels), 4) for y in labels.labels}
            warnings_out.append(f"the model's answer names no label of {labels.name} ({out.parse_status})")
        else:
            scores = {y: float(y == out.label) for y in labels.labels}
        models = {**self.perception.model_names(), "emotion_llama": out.model_name}
        return AnalysisResult(
            emollama_version=_version(), tier="emotion-llama", media=p.media, label_set=labels.name,
            label=out.label, scores=scores, reasoning=out.text, clues=p.clues, models=models,
            timings_s={k: round(v, 3) for k, v in p.timings.items()}, warnings=warnings_out,
        )

    def _frames(self, p: Perception) -> tuple[list[np.ndarray], list[float], int | None]:
        """Re-decode only the frames the encoders need: evenly spread ones plus the peak frame."""
        n = len(p.scan.times)
        if n == 0:
            return [], [], None
        wanted = set(np.linspace(0, n - 1, min(self.n_frames, n)).round().astype(int).tolist())
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
        return frames, times, peak_pos


_default: list[Analyzer] = []


def analyze(path: str | Path, *, subtitle: str | None = None, labels: str = DEFAULT_LABEL_SET,
            fps: float = DEFAULT_FPS, max_duration_s: float = DEFAULT_MAX_DURATION_S) -> AnalysisResult:
    """Analyse one file with a process-wide :class:`Analyzer` (models load on the first call)."""
    check_max_duration(max_duration_s)
    if not _default:
        _default.append(Analyzer(max_duration_s=max_duration_s))
    analyzer = _default[0]
    analyzer.max_duration_s = max_duration_s  # only the media reader uses it: no reload needed
    return analyzer.analyze(path, subtitle=subtitle, label_set=labels, fps=fps)
