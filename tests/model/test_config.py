from __future__ import annotations

from pathlib import Path

import pytest

from emollama.model.config import ConfigError, EmotionLlamaConfig, official_config

from .conftest import TINY_YAML, tiny_config


def test_yaml_round_trip(tmp_path: Path) -> None:
    cfg = tiny_config()
    cfg.to_yaml(tmp_path / "c.yaml")
    again = EmotionLlamaConfig.from_file(tmp_path / "c.yaml")
    assert again == cfg
    assert again.to_dict() == cfg.to_dict()
    assert again.projector.num_video_tokens == 4


def test_every_shipped_config_loads() -> None:
    for path in sorted(TINY_YAML.parent.glob("*.yaml")):
        cfg = EmotionLlamaConfig.from_file(path)
        assert cfg.name


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    text = TINY_YAML.read_text().replace("lora:\n  r: 8", "lora:\n  rank: 8")
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ConfigError, match="rank"):
        EmotionLlamaConfig.from_file(tmp_path / "bad.yaml")


def test_bad_literal_and_inconsistent_shapes(tmp_path: Path) -> None:
    data = tiny_config().to_dict()
    data["global_encoder"]["frame"] = "last"
    with pytest.raises(ConfigError, match="frame"):
        EmotionLlamaConfig.from_dict(data)
    data = tiny_config().to_dict()
    data["projector"]["global_patches"] = 64
    with pytest.raises(ConfigError, match="patches"):
        EmotionLlamaConfig.from_dict(data)


def test_official_config_has_released_shapes(tmp_path: Path) -> None:
    cfg = official_config(tmp_path)
    assert cfg.projector.num_video_tokens == 256
    assert cfg.projector.global_dim * cfg.projector.merge == 5632
    assert (cfg.lora.r, cfg.lora.alpha, cfg.lora.target_modules) == (64, 16, ["q_proj", "v_proj"])
    assert cfg.resolve(cfg.llm.path) == tmp_path.resolve() / "checkpoints" / "Llama-2-7b-chat-hf"
