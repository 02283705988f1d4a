"""EVA ViT-g/14 (the BLIP-2/LAVIS global visual encoder) in plain PyTorch.

Why not timm: timm imports torchvision, which has no CPU wheel on the machines this project
targets. The network is small enough to write out: a pre-norm ViT with absolute position
embeddings, a fused ``qkv`` projection whose bias is assembled from separate ``q_bias``/``v_bias``
(keys carry none), exact GELU MLPs, and no final norm. Parameter names equal the ones in LAVIS's
``eva_vit_g.pth``, so that file loads with a strict key check (:func:`load_eva_state_dict`).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from emollama.errors import ModelUnavailableError
from emollama.model.config import EvaVitConfig
from emollama.model.weights import preview

#: Keys of head layers that some EVA checkpoints carry but the LAVIS trunk never defines.
IGNORED_EVA_PREFIXES: tuple[str, ...] = ("head.", "fc_norm.", "norm.")


class EvaPatchEmbed(nn.Module):
    def __init__(self, cfg: EvaVitConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, cfg.embed_dim, kernel_size=cfg.patch_size, stride=cfg.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class EvaAttention(nn.Module):
    def __init__(self, cfg: EvaVitConfig) -> None:
        super().__init__()
        self.num_heads = cfg.num_heads
        dim = cfg.embed_dim
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        # The key projection has no bias in EVA; q and v biases are stored separately.
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        bias = torch.cat((self.q_bias, torch.zeros_like(self.q_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)  # scale = head_dim ** -0.5, as in EVA
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class EvaMlp(nn.Module):
    def __init__(self, cfg: EvaVitConfig) -> None:
        super().__init__()
        hidden = int(cfg.embed_dim * cfg.mlp_ratio)
        self.fc1 = nn.Linear(cfg.embed_dim, hidden)
        self.fc2 = nn.Linear(hidden, cfg.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class EvaBlock(nn.Module):
    def __init__(self, cfg: EvaVitConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
        self.attn = EvaAttention(cfg)
        self.norm2 = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
        self.mlp = EvaMlp(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class EvaViT(nn.Module):
    """Images ``[B, 3, S, S]`` → tokens ``[B, 1 + (S/14)², embed_dim]`` (CLS first, no final norm)."""

    def __init__(self, cfg: EvaVitConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.grid = cfg.image_size // cfg.patch_size
        self.patch_embed = EvaPatchEmbed(cfg)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid * self.grid + 1, cfg.embed_dim))
        self.blocks = nn.ModuleList(EvaBlock(cfg) for _ in range(cfg.depth))
        self._init_random()

    def _init_random(self) -> None:
        """Small random init so random-weight (test/benchmark) towers give well-scaled tokens."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(pixels)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return x


def resize_pos_embed(pos_embed: torch.Tensor, grid: int) -> torch.Tensor:
    """Bicubically resize a ``[1, 1 + g², D]`` table to ``grid``×``grid`` (the CLS row kept as is).

    ``eva_vit_g.pth`` is stored for 224² (16×16); Emotion-LLaMA runs at 448² (32×32).
    """
    old = int(round((pos_embed.shape[1] - 1) ** 0.5))
    if old == grid:
        return pos_embed
    cls, patches = pos_embed[:, :1], pos_embed[:, 1:].float()
    dim = patches.shape[-1]
    patches = patches.reshape(1, old, old, dim).permute(0, 3, 1, 2)
    patches = F.interpolate(patches, size=(grid, grid), mode="bicubic", align_corners=False)
    patches = patches.permute(0, 2, 3, 1).reshape(1, grid * grid, dim).to(pos_embed.dtype)
    return torch.cat((cls, patches), dim=1)


def load_eva_state_dict(model: EvaViT, state: dict[str, torch.Tensor]) -> list[str]:
    """Load ``state`` strictly (after resizing ``pos_embed``); returns the ignored head keys.

    Raises :class:`ModelUnavailableError` listing missing/unexpected keys or wrong shapes, so a
    truncated or wrong checkpoint can never leave part of the tower randomly initialised.
    """
    state = dict(state)
    if "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    ignored = sorted(k for k in state if k.startswith(IGNORED_EVA_PREFIXES))
    for key in ignored:
        state.pop(key)
    if "pos_embed" in state:
        state["pos_embed"] = resize_pos_embed(state["pos_embed"], model.grid)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    bad_shape = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or bad_shape:
        raise ModelUnavailableError(
            "EVA ViT checkpoint does not match the configured tower: "
            f"missing {preview(missing, 8)}; unexpected {preview(unexpected, 8)}; "
            f"wrong shape {preview(bad_shape, 8)}."
        )
    model.load_state_dict(state, strict=True)
    return ignored


def load_eva_vit(path: Path, cfg: EvaVitConfig) -> EvaViT:
    """Build the tower and load LAVIS ``eva_vit_g.pth`` (or any file with the same key names)."""
    if not path.is_file():
        raise ModelUnavailableError(
            f"EVA ViT-g weights not found at {path}: put LAVIS's eva_vit_g.pth there "
            "(or set global_encoder.path in the model config)."
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = EvaViT(cfg)
    load_eva_state_dict(model, state)
    return model
