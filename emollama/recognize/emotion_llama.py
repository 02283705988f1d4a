"""The ``emotion-llama`` tier: the multimodal LLM decides from the same perception pass.

Perception supplies what the encoders need (evenly spread frames with the peak frame, aligned
face crops, 16 kHz audio, the subtitle or ASR transcript); the LLM's generated text becomes the
reasoning and its label is parsed with :func:`emollama.label_parsing.parse_label`. Scores are
one-hot on the parsed label (the LLM gives no calibrated distribution); an unparseable answer
gives ``label=None``, uniform scores and a warning — never a silent "neutral".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from emollama.label_parsing import parse_label
from emollama.labels import get_label_set
from emollama.perception.pipeline import Perception, sample_frames
from emollama.recognize.result import build_result, uniform_scores
from emollama.schema import AnalysisResult
from emollama.settings import CROP_MAX_SIDE

if TYPE_CHECKING:
    from emollama.model.tier import EmotionLlamaInputs

#: Frames (evenly spread, plus the peak frame) and face crops the perception pass keeps for the encoders.
N_FRAMES = 16


def encoder_inputs(p: Perception, n_frames: int = N_FRAMES) -> tuple[EmotionLlamaInputs, list[str]]:
    """What the model's encoders see of one perceived clip, and the perception warnings to report.

    Why one function: ``analyze --tier emotion-llama`` and ``emollama features`` must hand the
    encoders the same frames, crops and audio, or cached training features would differ from what
    the model meets at inference.
    """
    from emollama.model.tier import EmotionLlamaInputs

    warnings = list(p.warnings)
    frames = p.encoder_frames
    if frames is None:  # perceived without keep-frames: decode them now rather than show the model none
        frames = sample_frames(p, n_frames)
    if p.face.clues.status == "ok" and not p.scan.crops:
        warnings.append("the perception pass kept no face crops (perceive(..., keep_crops=N)): the local and "
                        "temporal encoders saw no face")
    crops = p.scan.crops
    if not crops and p.media.kind == "image" and frames.frames and min(frames.frames[0].shape[:2]) <= CROP_MAX_SIDE:
        crops = [frames.frames[0]]  # a small image is an already-cropped face (FER2013, CK+), as in eval-model
    inputs = EmotionLlamaInputs(frames=frames.frames, frame_times=frames.times, face_crops=crops,
                                peak_frame_index=frames.peak_position, audio_16k=p.audio,
                                subtitle=p.clues.words.text or None, face_aus=_au_track(p))
    return inputs, warnings


def _au_track(p: Perception) -> np.ndarray | None:
    """The measured AU intensities as frames × AUs (NaN where no confident face), or ``None``."""
    rows = p.face.clues.au_intensity
    if not rows:
        return None
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float32)


class EmotionLlamaTier:
    """A loaded Emotion-LLaMA model folder as a recogniser.

    The tasks asked come from the model config (``prompt.label_task``, ``prompt.reason_task``) unless
    ``task`` overrides them: the released 7B answers ``[reason]`` with a paragraph naming the
    emotion; emotion-llama-mini answers ``[emotion]`` with the label and ``[reason_v2]`` with the
    reasoning, which is how it was trained. ``on_text`` receives the generated text piece by piece
    (the CLI streams it to the terminal).
    """

    tier = "emotion-llama"
    stage = "emotion-llama"
    #: Frames handed to the global encoder pool (evenly spread) and face crops for MAE/VideoMAE.
    n_frames = N_FRAMES

    def __init__(self, model_dir: str | Path, *, device: str = "cpu", dtype: str | None = None,
                 task: str | None = None, max_new_tokens: int = 256,
                 on_text: Callable[[str, str], None] | None = None) -> None:
        from emollama.model.tier import EmotionLlamaRecognizer

        self.model = EmotionLlamaRecognizer.from_pretrained(model_dir, device=device, dtype=dtype)
        prompt = self.model.processor.cfg.prompt
        self.task = task or prompt.label_task
        self.reason_task = None if task else prompt.reason_task
        self.max_new_tokens = max_new_tokens
        self.on_text = on_text

    def _generate(self, inputs: EmotionLlamaInputs, label_set: str, task: str) -> str:
        pieces = []
        for piece in self.model.stream(inputs, label_set, task, max_new_tokens=self.max_new_tokens):
            pieces.append(piece)
            if self.on_text is not None:
                self.on_text(task, piece)
        return "".join(pieces).strip()

    def recognize(self, p: Perception, label_set: str) -> AnalysisResult:
        labels = get_label_set(label_set)
        t = time.perf_counter()
        inputs, warnings = encoder_inputs(p, self.n_frames)
        answer = self._generate(inputs, labels.name, self.task)
        parsed = parse_label(answer, labels.name)
        reasoning = answer
        if self.reason_task is not None:
            reasoning = self._generate(inputs, labels.name, self.reason_task)
            said = parse_label(reasoning, labels.name).label
            if parsed.label is not None and said is not None and said != parsed.label:
                warnings.append(f"the reasoning names {said}, the model's label answer {parsed.label}; "
                                f"the label answer is kept")
        p.timings["emotion_llama_s"] = time.perf_counter() - t
        if parsed.label is None:
            scores = uniform_scores(labels)
            warnings.append(f"the model's answer names no label of {labels.name} ({parsed.status})")
        else:
            scores = {y: float(y == parsed.label) for y in labels.labels}
        return build_result(p, tier=self.tier, labels=labels, label=parsed.label, scores=scores,
                            reasoning=reasoning, models={**p.models, "emotion_llama": self.model.model_name},
                            warnings=warnings)
