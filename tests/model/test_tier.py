"""The emotion-llama tier end to end on a tiny random model folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from emollama.errors import ModelUnavailableError
from emollama.model.emotion_llama import EmotionLlama
from emollama.model.encoders import MediaEncoders
from emollama.model.processor import EmotionLlamaProcessor
from emollama.model.tier import EmotionLlamaInputs, EmotionLlamaRecognizer, TierOutput

from .conftest import random_clip


@pytest.fixture()
def model_dir(
    tmp_path: Path,
    tiny_model: EmotionLlama,
    tiny_encoders: MediaEncoders,
    tiny_processor: EmotionLlamaProcessor,
) -> Path:
    return tiny_model.save_pretrained(
        tmp_path / "tiny", save_backbones=True, processor=tiny_processor, encoders=tiny_encoders
    )


def _inputs(seed: int = 0, **over) -> EmotionLlamaInputs:
    frames, crops, audio = random_clip(seed)
    kw = dict(
        frames=frames,
        frame_times=[0.0, 0.5, 1.0],
        face_crops=crops,
        peak_frame_index=2,
        audio_16k=audio,
        subtitle="I told you it would work",
    )
    kw.update(over)
    return EmotionLlamaInputs(**kw)


def test_recognize_end_to_end(model_dir: Path, tiny_encoders: MediaEncoders) -> None:
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "audio_encoder",
        "config.json",
        "eva_vit_g.pth",
        "llm",
        "local_encoder",
        "model.safetensors",
        "temporal_encoder",
    ]
    rec = EmotionLlamaRecognizer.from_pretrained(model_dir)
    # The encoders reload to exactly the weights they were saved with.
    for (n, a), (_, b) in zip(
        rec.encoders.state_dict().items(), tiny_encoders.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(a, b, msg=n)
    out = rec.recognize(_inputs(), label_set="merr9", task="emotion", max_new_tokens=12)
    assert isinstance(out, TierOutput) and out.model_name == "tiny-random"
    assert out.parse_status in {"ok", "unparseable", "not_in_set"}
    assert (out.label is None) == (out.parse_status != "ok")
    streamed = "".join(rec.stream(_inputs(), task="emotion", max_new_tokens=12)).strip()
    assert streamed == out.text  # greedy: streaming and one-shot agree
    # Different media give different answers' logits: the encoders are really in the loop.
    b1, f1 = rec._prepare(_inputs(0), "emotion", "merr9", None)
    b2, f2 = rec._prepare(_inputs(1), "emotion", "merr9", None)
    assert torch.equal(b1["input_ids"], b2["input_ids"]) and not torch.allclose(f1.audio, f2.audio)


def test_audio_only_and_silent_clips_run(model_dir: Path) -> None:
    rec = EmotionLlamaRecognizer.from_pretrained(model_dir)
    audio_only = rec.recognize(
        _inputs(frames=[], frame_times=[], face_crops=[], peak_frame_index=None), max_new_tokens=4
    )
    silent = rec.recognize(_inputs(audio_16k=None, subtitle=None), max_new_tokens=4)
    assert isinstance(audio_only.text, str) and isinstance(silent.text, str)


def test_missing_model_folder_is_one_actionable_error(tmp_path: Path, model_dir: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="config.json"):
        EmotionLlamaRecognizer.from_pretrained(tmp_path / "absent")
    (model_dir / "eva_vit_g.pth").unlink()
    with pytest.raises(ModelUnavailableError, match="eva_vit_g.pth"):
        EmotionLlamaRecognizer.from_pretrained(model_dir)


def test_bfloat16_override_runs(model_dir: Path) -> None:
    rec = EmotionLlamaRecognizer.from_pretrained(model_dir, dtype="bfloat16")
    assert rec.model.llm.get_input_embeddings().weight.dtype == torch.bfloat16
    assert next(rec.encoders.audio.parameters()).dtype == torch.bfloat16  # type: ignore[union-attr]
    out = rec.recognize(_inputs(), task="emotion", max_new_tokens=4)
    assert isinstance(out.text, str)
