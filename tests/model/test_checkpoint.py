"""save_pretrained → from_pretrained round trip and strict loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from emollama.model.checkpoint import CheckpointMismatchError, load_pretrained, load_trainable
from emollama.model.emotion_llama import EmotionLlama
from emollama.model.processor import EmotionLlamaProcessor

from .conftest import random_features


def _logits(model: EmotionLlama, proc: EmotionLlamaProcessor) -> torch.Tensor:
    batch = proc.collate([proc.encode(proc.user_prompt("reason", "hello there"), "they sound glad")])
    with torch.no_grad():
        logits, _ = model(batch["input_ids"], batch["attention_mask"], random_features(model.cfg, 1, seed=4))
    return logits


def test_save_load_gives_identical_logits(
    tmp_path: Path, tiny_model: EmotionLlama, tiny_processor: EmotionLlamaProcessor
) -> None:
    with torch.no_grad():
        for p in tiny_model.projector.parameters():
            p.add_(0.01)
    tiny_model.save_pretrained(tmp_path / "m", save_backbones=True, processor=tiny_processor)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "llm", "model.safetensors"]
    keys = load_file(str(tmp_path / "m" / "model.safetensors")).keys()
    assert all(".default." not in k for k in keys)
    assert {k for k in keys if k.startswith("projector.")} == {
        f"projector.{m}.{w}"
        for m in ("global_patches", "global_cls", "local", "temporal", "audio")
        for w in ("weight", "bias")
    }
    assert sum("lora_" in k for k in keys) == 2 * 2 * 2  # layers × (q, v) × (A, B)
    loaded = load_pretrained(tmp_path / "m")
    proc = EmotionLlamaProcessor.from_config(loaded.cfg)
    assert proc.tokenizer.get_vocab() == tiny_processor.tokenizer.get_vocab()
    torch.testing.assert_close(_logits(loaded, proc), _logits(tiny_model, tiny_processor), rtol=0, atol=0)


def test_strict_loading_names_the_missing_key(
    tmp_path: Path, tiny_model: EmotionLlama, tiny_processor: EmotionLlamaProcessor
) -> None:
    folder = tiny_model.save_pretrained(tmp_path / "m", save_backbones=True, processor=tiny_processor)
    state = load_file(str(folder / "model.safetensors"))
    victim = "llm.model.layers.1.self_attn.v_proj.lora_B.weight"
    assert victim in state
    del state[victim]
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(
        CheckpointMismatchError, match=r"1 missing \(llm\.model\.layers\.1\.self_attn\.v_proj\.lora_B"
    ):
        load_pretrained(folder)


def test_strict_loading_rejects_unexpected_and_misshapen(tiny_model: EmotionLlama) -> None:
    state = {k: v.clone() for k, v in tiny_model.trainable_state_dict().items()}
    state["attention.fc.weight"] = torch.zeros(2, 2)
    with pytest.raises(CheckpointMismatchError, match="1 unexpected"):
        load_trainable(tiny_model, state)
    del state["attention.fc.weight"]
    state["projector.audio.weight"] = torch.zeros(3, 3)
    with pytest.raises(CheckpointMismatchError, match="wrong shape"):
        load_trainable(tiny_model, state)


def test_missing_folder_is_one_clear_error(tmp_path: Path) -> None:
    from emollama.errors import ModelUnavailableError

    with pytest.raises(ModelUnavailableError, match="config.json"):
        load_pretrained(tmp_path / "nowhere")
