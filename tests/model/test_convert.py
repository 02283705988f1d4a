"""The official-checkpoint converter against a hand-wired computation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM
from typer.testing import CliRunner

from emollama.model.checkpoint import CheckpointMismatchError, convert_official, load_pretrained
from emollama.model.config import EmotionLlamaConfig
from emollama.model.emotion_llama import (
    FEATURE_TOKEN_ID,
    VIDEO_TOKEN_ID,
    EmotionLlama,
    position_ids_from_mask,
)
from emollama.model.processor import EmotionLlamaProcessor

from .conftest import random_features

R, ALPHA = 4, 16  # deliberately not the tiny config's r=8: the converter must take r from the file


def _official_state(
    cfg: EmotionLlamaConfig, hidden: int, layers: int, with_default: bool
) -> dict[str, torch.Tensor]:
    """A checkpoint as the original code writes it: MiniGPT-v2 names, peft-0.2 LoRA keys."""
    g = torch.Generator().manual_seed(7)
    pj = cfg.projector

    def rnd(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * 0.05

    state = {
        "llama_proj.weight": rnd(hidden, pj.global_dim * pj.merge),
        "llama_proj.bias": rnd(hidden),
        "cls_tk_llama_proj.weight": rnd(hidden, pj.global_dim),
        "cls_tk_llama_proj.bias": rnd(hidden),
        "feats_llama_proj1.weight": rnd(hidden, pj.local_dim),
        "feats_llama_proj1.bias": rnd(hidden),
        "feats_llama_proj2.weight": rnd(hidden, pj.temporal_dim),
        "feats_llama_proj2.bias": rnd(hidden),
        "feats_llama_proj3.weight": rnd(hidden, pj.audio_dim),
        "feats_llama_proj3.bias": rnd(hidden),
        "attention.fc1.weight": rnd(8, 8),
        "attention.fc1.bias": rnd(8),
    }
    tag = ".default" if with_default else ""
    for i in range(layers):
        for m in ("q_proj", "v_proj"):
            base = f"llama_model.base_model.model.model.layers.{i}.self_attn.{m}"
            state[f"{base}.lora_A{tag}.weight"] = rnd(R, hidden) * 10
            state[f"{base}.lora_B{tag}.weight"] = rnd(hidden, R) * 10
    return state


def _hand_wired_logits(
    llm_dir: Path, state: dict[str, torch.Tensor], ids: torch.Tensor, feats
) -> torch.Tensor:
    """LoRA merged into q/v by hand, projections as explicit matmuls, LM run on inputs_embeds."""
    llm = AutoModelForCausalLM.from_pretrained(str(llm_dir)).eval()
    with torch.no_grad():
        for i, layer in enumerate(llm.model.layers):
            for m in ("q_proj", "v_proj"):
                keys = [k for k in state if f"layers.{i}.self_attn.{m}.lora_" in k]
                a = state[next(k for k in keys if "lora_A" in k)]
                b = state[next(k for k in keys if "lora_B" in k)]
                getattr(layer.self_attn, m).weight += (ALPHA / R) * b @ a

        def lin(name: str, x: torch.Tensor) -> torch.Tensor:
            return x @ state[f"{name}.weight"].T + state[f"{name}.bias"]

        n, d = feats.global_patches.shape[1:]
        video = lin("llama_proj", feats.global_patches.reshape(1, n // 4, d * 4))[0]
        feature = torch.stack(
            [
                lin("feats_llama_proj1", feats.local[0]),
                lin("feats_llama_proj2", feats.temporal[0]),
                lin("feats_llama_proj3", feats.audio[0]),
                lin("cls_tk_llama_proj", feats.global_cls[0]),
            ]
        )
        rows = []
        vi = fi = 0
        for t in ids[0].tolist():
            if t == VIDEO_TOKEN_ID:
                rows.append(video[vi])
                vi += 1
            elif t == FEATURE_TOKEN_ID:
                rows.append(feature[fi])
                fi += 1
            else:
                rows.append(llm.model.embed_tokens.weight[t])
        embeds = torch.stack(rows)[None]
        mask = torch.ones_like(ids)
        return llm(
            inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids_from_mask(mask)
        ).logits


@pytest.mark.parametrize("with_default", [False, True])
def test_converted_official_checkpoint_matches_hand_wired_model(
    tmp_path: Path, tiny_model: EmotionLlama, tiny_processor: EmotionLlamaProcessor, with_default: bool
) -> None:
    # A base folder (tiny LLM + tokenizer) the converted config can point at.
    base = tiny_model.save_pretrained(tmp_path / "base", save_backbones=True, processor=tiny_processor)
    cfg = EmotionLlamaConfig.from_file(base / "config.json")
    cfg.lora.alpha = ALPHA
    hidden, layers = 64, 2
    state = _official_state(cfg, hidden, layers, with_default)
    torch.save({"model": state, "optimizer": {}, "epoch": 3}, tmp_path / "official.pth")

    report = convert_official(tmp_path / "official.pth", tmp_path / "out", cfg)
    assert report.lora_r == R and report.lora_layers == layers and report.lora_modules == ["q_proj", "v_proj"]
    assert sorted(report.ignored) == ["attention.fc1.bias", "attention.fc1.weight"]
    assert any("attention" in n for n in report.notes)
    assert json.loads((tmp_path / "out" / "conversion.json").read_text())["mapped"] == 10 + 4 * layers

    model = load_pretrained(tmp_path / "out").eval()
    proc = EmotionLlamaProcessor.from_config(model.cfg)
    batch = proc.collate([proc.encode(proc.user_prompt("emotion", "what a day"), "happy")])
    feats = random_features(model.cfg, 1, seed=11)
    with torch.no_grad():
        ours, _ = model(batch["input_ids"], batch["attention_mask"], feats)
    expected = _hand_wired_logits(base / "llm", state, batch["input_ids"], feats)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)
    # The LoRA delta is large enough that dropping it would be caught.
    plain = AutoModelForCausalLM.from_pretrained(str(base / "llm")).eval()
    with torch.no_grad():
        no_lora = plain(inputs_embeds=model.embed(batch["input_ids"], feats)).logits
    assert (no_lora - ours).abs().max() > 1e-2


def test_unknown_official_key_is_an_error(tmp_path: Path, tiny_model: EmotionLlama) -> None:
    state = _official_state(tiny_model.cfg, 64, 2, with_default=False)
    state["llama_model.base_model.model.lm_head.weight"] = torch.zeros(2, 2)
    torch.save({"model": state}, tmp_path / "o.pth")
    with pytest.raises(CheckpointMismatchError, match="lm_head"):
        convert_official(tmp_path / "o.pth", tmp_path / "out", tiny_model.cfg)


def test_convert_official_cli(tmp_path: Path, tiny_model: EmotionLlama) -> None:
    import typer

    from emollama.cli.model import register

    app = typer.Typer()
    register(app)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps Typer in multi-command mode
        pass

    torch.save({"model": _official_state(tiny_model.cfg, 64, 2, True)}, tmp_path / "o.pth")
    cfg_path = tmp_path / "tiny.yaml"
    tiny_model.cfg.to_yaml(cfg_path)
    result = CliRunner().invoke(
        app,
        [
            "convert-official",
            str(tmp_path / "o.pth"),
            "--out",
            str(tmp_path / "out"),
            "--config",
            str(cfg_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "LoRA r=4" in result.output and (tmp_path / "out" / "model.safetensors").is_file()
