"""Shared tiny random-weight components (built from emollama/model/configs/tiny.yaml, nothing downloaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from emollama.model.config import EmotionLlamaConfig
from emollama.model.emotion_llama import EmotionLlama, MediaFeatures
from emollama.model.encoders import MediaEncoders
from emollama.model.processor import EmotionLlamaProcessor

TINY_YAML = Path(__file__).resolve().parents[2] / "emollama" / "model" / "configs" / "tiny.yaml"


def tiny_config() -> EmotionLlamaConfig:
    return EmotionLlamaConfig.from_file(TINY_YAML)


@pytest.fixture(scope="session")
def tiny_processor() -> EmotionLlamaProcessor:
    return EmotionLlamaProcessor.from_config(tiny_config())


@pytest.fixture()
def tiny_model() -> EmotionLlama:
    torch.manual_seed(0)
    model = EmotionLlama.from_config(tiny_config())
    # LoRA B starts at zero; make the adapters non-trivial so tests can see them.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    return model.eval()


@pytest.fixture(scope="session")
def tiny_encoders() -> MediaEncoders:
    torch.manual_seed(1)
    return MediaEncoders.from_config(tiny_config()).eval()


def random_features(cfg: EmotionLlamaConfig, batch: int, seed: int = 0) -> MediaFeatures:
    g = torch.Generator().manual_seed(seed)
    pj = cfg.projector
    return MediaFeatures(
        torch.randn(batch, pj.global_patches, pj.global_dim, generator=g),
        torch.randn(batch, pj.global_dim, generator=g),
        torch.randn(batch, pj.local_dim, generator=g),
        torch.randn(batch, pj.temporal_dim, generator=g),
        torch.randn(batch, pj.audio_dim, generator=g),
    )


def random_clip(seed: int = 0, frames: int = 3, crops: int = 5, seconds: float = 1.0):
    rng = np.random.default_rng(seed)
    return (
        [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(frames)],
        [rng.integers(0, 256, (40, 36, 3), dtype=np.uint8) for _ in range(crops)],
        rng.standard_normal(int(16000 * seconds)).astype(np.float32) * 0.1,
    )
