"""The ``emotion-llama`` analyze tier: decoded media → live encoders → projections → generation.

:mod:`emollama.recognize.emotion_llama` builds :class:`EmotionLlamaInputs` from a
:class:`~emollama.perception.pipeline.Perception` and calls :meth:`EmotionLlamaRecognizer.recognize`;
the label is read from the generated text with the project's one label parser (an unparseable
answer stays ``None``, never "neutral").
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emollama.errors import ModelUnavailableError
from emollama.label_parsing import parse_label
from emollama.model.checkpoint import CONFIG_NAME, WEIGHTS_NAME, load_pretrained
from emollama.model.config import EmotionLlamaConfig
from emollama.model.emotion_llama import EmotionLlama, MediaFeatures, torch_dtype
from emollama.model.encoders import MediaEncoders
from emollama.model.processor import EmotionLlamaProcessor, collate_media, preprocess_media


@dataclass
class EmotionLlamaInputs:
    """One clip as the perception stages leave it."""

    frames: list[np.ndarray]  # RGB uint8 H×W×3 frames sampled over the clip (may be empty: audio-only)
    frame_times: list[float]
    face_crops: list[np.ndarray]  # RGB uint8 aligned crops of the main face (may be empty: no face)
    peak_frame_index: int | None  # index into `frames` of the peak-expression frame
    audio_16k: np.ndarray | None  # float32 mono 16 kHz waveform
    subtitle: str | None
    face_aus: np.ndarray | None = None  # frames × AUs intensities over the face track (NaN: not measured)


def encode_media(
    cfg: EmotionLlamaConfig, encoders: MediaEncoders, clips: Sequence[EmotionLlamaInputs]
) -> MediaFeatures:
    """Clips → encoder features: the one media path of generation and of ``emollama features``.

    Why one function: features cached for training must be exactly what the model sees at
    inference, so the preprocessing (frame policy, crops, audio normalisation) and the encoders
    run here for both. Several clips are encoded as one :class:`~emollama.model.encoders.MediaBatch`.
    """
    samples = [
        preprocess_media(cfg, c.frames, c.face_crops, c.peak_frame_index, c.audio_16k, c.face_aus)
        for c in clips
    ]
    return encoders.encode(collate_media(samples))


@dataclass
class TierOutput:
    label: str | None  # parsed label in the requested label set, None if unparseable
    parse_status: str  # ParsedLabel.status
    text: str  # the generated text (reasoning)
    model_name: str


class EmotionLlamaRecognizer:
    """A loaded model folder: encoders + processor + :class:`EmotionLlama`, ready to run clips."""

    def __init__(
        self, model: EmotionLlama, encoders: MediaEncoders, processor: EmotionLlamaProcessor, model_name: str
    ) -> None:
        self.model = model.eval()
        self.encoders = encoders.eval()
        self.processor = processor
        self.model_name = model_name

    @classmethod
    def from_pretrained(
        cls, model_dir: str | Path, *, device: str = "cpu", dtype: str | None = None
    ) -> EmotionLlamaRecognizer:
        """Load ``model_dir`` (``config.json`` + ``model.safetensors``) and every backbone it names.

        ``dtype`` (``float32``/``bfloat16``/``float16``) overrides the LLM and encoder dtypes.
        """
        folder = Path(model_dir)
        if not folder.is_dir() or not (folder / CONFIG_NAME).is_file():
            raise ModelUnavailableError(
                f"No Emotion-LLaMA model at {folder}: expected {CONFIG_NAME} and {WEIGHTS_NAME} there "
                "(run `emollama convert-official CKPT.pth --out DIR` for the released weights)."
            )
        model = load_pretrained(folder, device=device, dtype=dtype)
        cfg = model.cfg
        if dtype is not None:
            torch_dtype(dtype)  # validate early
            for sub in (cfg.global_encoder, cfg.local_encoder, cfg.temporal_encoder, cfg.audio_encoder):
                if sub is not None:
                    sub.dtype = dtype  # type: ignore[assignment]
        encoders = MediaEncoders.from_config(cfg).to(device)
        processor = EmotionLlamaProcessor.from_config(cfg)
        return cls(model, encoders, processor, cfg.name)

    # ------------------------------------------------------------------------------ running
    def _prepare(
        self, inputs: EmotionLlamaInputs, task: str, label_set: str, instruction: str | None
    ) -> tuple[dict[str, torch.Tensor], MediaFeatures]:
        proc = self.processor
        feats = encode_media(proc.cfg, self.encoders, [inputs])
        user = proc.user_prompt(task, inputs.subtitle, instruction, label_set=label_set)
        batch = proc.collate([proc.encode(user)], padding_side="left")
        return batch, feats

    def stream(
        self,
        inputs: EmotionLlamaInputs,
        label_set: str = "merr9",
        task: str = "reason",
        *,
        instruction: str | None = None,
        seed: int | None = None,
        **gen: Any,
    ) -> Iterator[str]:
        """Yield the answer as text pieces while it is generated (for the demo)."""
        batch, feats = self._prepare(inputs, task, label_set, instruction)
        generator = None
        if gen.get("do_sample"):
            generator = torch.Generator(device=self.model.device).manual_seed(
                seed if seed is not None else random.randrange(2**31)
            )
        ids: list[int] = []
        shown = ""
        for token, done in self.model.iter_generate(
            batch["input_ids"],
            batch["attention_mask"],
            feats,
            stop_ids=self.processor.stop_ids,
            generator=generator,
            **gen,
        ):
            if bool(done[0]):
                break
            ids.append(int(token[0]))
            text = self.processor.decode(ids)
            if text.endswith("\ufffd"):  # an incomplete multi-byte character: wait for the rest
                continue
            if len(text) > len(shown) and text.startswith(shown):
                yield text[len(shown) :]
                shown = text
        final = self.processor.decode(ids)
        if final != shown and final.startswith(shown):
            yield final[len(shown) :]

    def recognize(
        self,
        inputs: EmotionLlamaInputs,
        label_set: str = "merr9",
        task: str = "reason",
        *,
        instruction: str | None = None,
        max_new_tokens: int = 256,
        **gen: Any,
    ) -> TierOutput:
        """Generate the answer for one clip and parse the label out of it."""
        text = "".join(
            self.stream(
                inputs, label_set, task, instruction=instruction, max_new_tokens=max_new_tokens, **gen
            )
        ).strip()
        parsed = parse_label(text, label_set)
        return TierOutput(
            label=parsed.label, parse_status=parsed.status, text=text, model_name=self.model_name
        )
