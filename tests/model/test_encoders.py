"""Encoder wrappers, EVA strict loading, media preprocessing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from emollama.errors import ModelUnavailableError
from emollama.model.config import EvaVitConfig
from emollama.model.encoders import MediaEncoders
from emollama.model.eva_vit import EvaViT, load_eva_state_dict, load_eva_vit, resize_pos_embed
from emollama.model.processor import EmotionLlamaProcessor, choose_global_frame, image_tensor, uniform_indices

from .conftest import random_clip, tiny_config

SMALL = EvaVitConfig(image_size=56, patch_size=14, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0)


def test_eva_key_names_are_the_lavis_ones() -> None:
    keys = set(EvaViT(SMALL).state_dict())
    assert {
        "cls_token",
        "pos_embed",
        "patch_embed.proj.weight",
        "patch_embed.proj.bias",
        "blocks.0.attn.qkv.weight",
        "blocks.0.attn.q_bias",
        "blocks.0.attn.v_bias",
        "blocks.0.attn.proj.weight",
        "blocks.1.mlp.fc1.weight",
        "blocks.1.mlp.fc2.bias",
        "blocks.1.norm1.weight",
        "blocks.1.norm2.bias",
    } <= keys
    assert not any("k_bias" in k or k.startswith("norm.") for k in keys)


def test_eva_loads_a_224_checkpoint_at_higher_resolution_strictly(tmp_path: Path) -> None:
    torch.manual_seed(0)
    src = EvaViT(EvaVitConfig(**{**SMALL.__dict__, "image_size": 28}))  # a 2×2 grid, like 224 vs 448
    state = src.state_dict()
    state["head.weight"] = torch.zeros(3, 32)  # head layers some files carry: ignored
    torch.save(state, tmp_path / "eva.pth")
    model = load_eva_vit(tmp_path / "eva.pth", SMALL)
    assert model.pos_embed.shape == (1, 17, 32)
    torch.testing.assert_close(model.pos_embed[:, :1], src.pos_embed[:, :1])
    torch.testing.assert_close(model.blocks[1].attn.v_bias, src.blocks[1].attn.v_bias)
    out = model(torch.randn(2, 3, 56, 56))
    assert out.shape == (2, 17, 32)
    del state["blocks.1.attn.q_bias"]
    with pytest.raises(ModelUnavailableError, match=r"missing blocks\.1\.attn\.q_bias"):
        load_eva_state_dict(EvaViT(SMALL), state)
    with pytest.raises(ModelUnavailableError, match="eva_vit_g.pth"):
        load_eva_vit(tmp_path / "absent.pth", SMALL)


def test_resize_pos_embed_keeps_a_constant_table_constant() -> None:
    table = torch.ones(1, 1 + 4, 8)
    out = resize_pos_embed(table, 4)
    assert out.shape == (1, 17, 8)
    torch.testing.assert_close(out, torch.ones_like(out))


def test_eva_attention_matches_explicit_softmax() -> None:
    torch.manual_seed(0)
    model = EvaViT(SMALL)
    attn = model.blocks[0].attn
    with torch.no_grad():
        attn.q_bias.normal_()
        attn.v_bias.normal_()
    x = torch.randn(1, 5, 32)
    w = attn.qkv.weight
    q = x @ w[:32].T + attn.q_bias
    k = x @ w[32:64].T
    v = x @ w[64:].T + attn.v_bias
    heads = [slice(0, 16), slice(16, 32)]
    outs = [torch.softmax(q[..., h] @ k[..., h].transpose(1, 2) / 4.0, -1) @ v[..., h] for h in heads]
    torch.testing.assert_close(attn(x), attn.proj(torch.cat(outs, -1)), rtol=1e-5, atol=1e-5)


def test_encoders_give_the_projector_shapes(
    tiny_encoders: MediaEncoders, tiny_processor: EmotionLlamaProcessor
) -> None:
    frames, crops, audio = random_clip(0)
    full = tiny_processor.preprocess_media(frames, crops, 1, audio)
    none = tiny_processor.preprocess_media([], [], None, None)
    assert full.global_pixels is not None and full.global_pixels.shape == (3, 56, 56)
    assert full.local_pixels is not None and full.local_pixels.shape == (4, 3, 32, 32)
    assert full.temporal_pixels is not None and full.temporal_pixels.shape == (4, 3, 32, 32)
    feats = tiny_encoders.encode(tiny_processor.collate_media([full, none]))
    assert feats.global_patches.shape == (2, 16, 32) and feats.global_cls.shape == (2, 32)
    for name in ("local", "temporal", "audio"):
        vec = getattr(feats, name)
        assert vec.shape == (2, 32) and vec[0].abs().sum() > 0 and vec[1].abs().sum() == 0
    # Local pooling is a mean over crops: the same crop repeated gives the single-crop vector.
    one = tiny_processor.preprocess_media([], crops[:1], None, None)
    rep = tiny_processor.preprocess_media([], crops[:1] * 3, None, None)
    f1 = tiny_encoders.encode(tiny_processor.collate_media([one])).local
    f3 = tiny_encoders.encode(tiny_processor.collate_media([rep])).local
    torch.testing.assert_close(f1, f3, rtol=1e-5, atol=1e-5)


def test_missing_encoder_folder_names_the_path(tmp_path: Path) -> None:
    cfg = tiny_config()
    assert cfg.audio_encoder is not None
    cfg.audio_encoder.random_init = None
    cfg.audio_encoder.path = str(tmp_path / "chinese-hubert-large")
    with pytest.raises(ModelUnavailableError, match="chinese-hubert-large"):
        MediaEncoders.from_config(cfg)


def test_frame_choice_and_sampling_rules() -> None:
    assert choose_global_frame(10, "first", 7) == 0
    assert choose_global_frame(10, "peak", 7) == 7
    assert choose_global_frame(10, "peak", None) == 5
    assert choose_global_frame(10, "middle", 7) == 5
    assert uniform_indices(16, 4) == [2, 6, 10, 14]
    assert uniform_indices(2, 4) == [0, 0, 1, 1]


def test_image_tensor_normalises_with_the_given_stats() -> None:
    img = np.full((10, 20, 3), 255, dtype=np.uint8)
    x = image_tensor(img, 8, (0.5, 0.5, 0.5), (0.25, 0.5, 1.0))
    assert x.shape == (3, 8, 8)
    torch.testing.assert_close(x[:, 0, 0], torch.tensor([2.0, 1.0, 0.5]))
    with pytest.raises(ValueError):
        image_tensor(np.zeros((4, 4), dtype=np.uint8), 8, (0, 0, 0), (1, 1, 1))


def test_hf_vision_tower_as_global_encoder() -> None:
    cfg = tiny_config()
    assert cfg.global_encoder is not None
    cfg.global_encoder.kind = "hf"
    cfg.global_encoder.random_init = {
        "model_type": "clip_vision_model",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": 56,
        "patch_size": 14,
    }
    cfg.local_encoder = cfg.temporal_encoder = cfg.audio_encoder = None
    enc = MediaEncoders.from_config(cfg)
    patches, cls = enc.global_encoder(torch.randn(2, 3, 56, 56))  # type: ignore[misc]
    assert patches.shape == (2, 16, 32) and cls.shape == (2, 32)
    # ln_vision output: every token normalised.
    torch.testing.assert_close(patches.mean(-1), torch.zeros(2, 16), atol=1e-5, rtol=0)
