"""Public Python API: ``analyze(path)``, the reusable :class:`Analyzer`, :func:`load_recognizer`.

This module only wires the stages for users: :class:`~emollama.perception.pipeline.Perceiver`
(file → Perception) and a recogniser from :mod:`emollama.recognize` (Perception → AnalysisResult).
It holds no pipeline logic of its own; MERR annotation and ``eval-model`` (and a server, when
there is one) import the stage they need directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from emollama.perception.pipeline import MediaProgress, Perceiver, Perception, Progress
from emollama.schema import AnalysisResult
from emollama.settings import AnalysisSettings

__all__ = ["AnalysisSettings", "Analyzer", "EmotionLlamaAnalyzer", "Perception", "Recognizer", "analyze",
           "load_recognizer"]


class Recognizer(Protocol):
    """Perception → AnalysisResult (one per tier)."""

    tier: str
    stage: str  # the progress stage name while it decides ("fusion", "emotion-llama")

    def recognize(self, p: Perception, label_set: str) -> AnalysisResult: ...


def load_recognizer(tier: str = "clues", model_dir: str | Path | None = None, **options: object) -> Recognizer:
    """The recogniser of ``tier``: ``clues`` (option ``fusion``: learned or handset), ``llm`` (options
    ``llm``: URL, ``.gguf`` or HF folder, default the packaged SmolLM2; ``llm_model``: the name an
    http server expects; ``api_key``), or ``emotion-llama`` from ``model_dir`` (default: the shipped
    emotion-llama-mini)."""
    from emollama.errors import InputError

    if tier == "clues":
        from emollama.recognize.clues import DEFAULT_FUSION, CluesRecognizer

        return CluesRecognizer(str(options.get("fusion") or DEFAULT_FUSION))
    if tier == "emotion-llama":
        if model_dir is None:  # the shipped laptop-sized model
            from emollama.packaged import mini_model_dir

            model_dir = mini_model_dir()
        from emollama.recognize.emotion_llama import EmotionLlamaTier

        return EmotionLlamaTier(model_dir, **options)  # type: ignore[arg-type]
    if tier == "llm":
        from emollama.recognize.llm_tier import load_llm_recognizer

        return load_llm_recognizer(options.get("llm"), model=options.get("llm_model"),  # type: ignore[arg-type]
                                   api_key=options.get("api_key"))  # type: ignore[arg-type]
    raise InputError(f"unknown tier {tier!r}; choose 'clues', 'llm' or 'emotion-llama'")


class Analyzer:
    """Loads the perception models once; :meth:`analyze` runs perception + one recogniser on a file.

    ``Analyzer()`` is the default ``clues`` tier; the keyword arguments override fields of
    ``settings`` (:class:`~emollama.settings.AnalysisSettings`).
    """

    def __init__(self, settings: AnalysisSettings | None = None, *, fps: float | None = None,
                 max_duration_s: float | None = None, label_set: str | None = None, asr: bool | None = None,
                 recognizer: Recognizer | None = None) -> None:
        chosen = (settings or AnalysisSettings()).replace(fps=fps, max_duration_s=max_duration_s,
                                                          label_set=label_set, asr=asr)
        self.recognizer = recognizer if recognizer is not None else load_recognizer("clues")
        self.perceiver = Perceiver(chosen)
        self.load_s = self.perceiver.load_s

    @property
    def settings(self) -> AnalysisSettings:
        """The settings in force (held by the perception stage, so the two can never disagree)."""
        return self.perceiver.settings

    @settings.setter
    def settings(self, value: AnalysisSettings) -> None:
        if value.asr != self.perceiver.settings.asr:
            from emollama.errors import InputError

            raise InputError("asr cannot change on a loaded Analyzer (the speech recogniser is loaded or not); "
                             "create a new one")
        self.perceiver.settings = value

    @property
    def label_set(self) -> str:
        return self.settings.label_set

    def model_names(self) -> dict[str, str]:
        return self.perceiver.model_names()

    def analyze(self, path: str | Path, *, subtitle: str | None = None, label_set: str | None = None,
                fps: float | None = None, progress: Progress | None = None,
                media_progress: MediaProgress | None = None) -> AnalysisResult:
        """Analyse one image, audio or video file. Raises :class:`~emollama.errors.EmollamaError` on bad input."""
        n = getattr(self.recognizer, "n_frames", 0)
        p = self.perceiver.perceive(path, subtitle=subtitle, fps=fps, progress=progress, keep_crops=n,
                                    encoder_frames=n, media_progress=media_progress)
        (progress or (lambda _stage: None))(self.recognizer.stage)
        return self.recognizer.recognize(p, label_set or self.settings.label_set)


class EmotionLlamaAnalyzer(Analyzer):
    """The ``emotion-llama`` tier: the same perception stages, then the multimodal LLM decides."""

    def __init__(self, model_dir: str | Path | None = None, settings: AnalysisSettings | None = None, *,
                 fps: float | None = None, max_duration_s: float | None = None, label_set: str | None = None,
                 device: str = "cpu", dtype: str | None = None, task: str | None = None,
                 max_new_tokens: int = 256) -> None:
        recognizer = load_recognizer("emotion-llama", model_dir, device=device, dtype=dtype, task=task,
                                     max_new_tokens=max_new_tokens)
        super().__init__(settings, fps=fps, max_duration_s=max_duration_s, label_set=label_set,
                         recognizer=recognizer)


_default: list[Analyzer] = []


def analyze(path: str | Path, *, subtitle: str | None = None, labels: str | None = None,
            fps: float | None = None, max_duration_s: float | None = None) -> AnalysisResult:
    """Analyse one file with a process-wide :class:`Analyzer` (models load on the first call)."""
    settings = AnalysisSettings().replace(fps=fps, max_duration_s=max_duration_s, label_set=labels)
    if not _default:
        _default.append(Analyzer(settings))
    analyzer = _default[0]
    # Only the media reader and the frame sampler read these: no model reload is needed.
    analyzer.settings = analyzer.settings.replace(fps=settings.fps, max_duration_s=settings.max_duration_s,
                                                  label_set=settings.label_set)
    return analyzer.analyze(path, subtitle=subtitle)
