"""Fixtures for the feature tests: short real-media clips and a saved tiny model folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from emollama.model.emotion_llama import EmotionLlama
from emollama.model.encoders import MediaEncoders
from emollama.model.processor import EmotionLlamaProcessor
from tests.clips import example_audio, example_frames, write_video
from tests.model.conftest import TINY_YAML, tiny_config

__all__ = ["TINY_YAML", "tiny_config"]


@pytest.fixture(scope="session")
def feature_clips(tmp_path_factory) -> dict[str, Path]:
    """A 1.2 s clip of the example's face and speech, and a faceless clip with a tone (fast to perceive)."""
    d = tmp_path_factory.mktemp("feature_clips")
    t = np.arange(16000) / 16000
    tone = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return {"face": write_video(d / "face.mp4", example_frames(limit=70)[40:70], fps=25,
                                audio=example_audio()[16000:35200]),
            "tone": write_video(d / "tone.mp4", seconds=1.0, audio=tone)}


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """The tiny random model saved with its backbones, as `analyze --tier emotion-llama --model` loads it."""
    cfg = tiny_config()
    torch.manual_seed(0)
    model = EmotionLlama.from_config(cfg)
    return model.save_pretrained(tmp_path_factory.mktemp("tiny_model") / "tiny", save_backbones=True,
                                 processor=EmotionLlamaProcessor.from_config(cfg),
                                 encoders=MediaEncoders.from_config(cfg))


@pytest.fixture()
def quiet_perceiver(perceiver, monkeypatch):  # noqa: ANN001, ANN201
    """The shared perception models with speech recognition off, as `emollama features` runs them (words never
    enter the features; Whisper would only cost seconds)."""
    monkeypatch.setattr(perceiver, "asr", None)
    return perceiver
