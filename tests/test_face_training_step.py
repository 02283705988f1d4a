"""The face training step in float32 and under bfloat16 autocast: same loss, float32 weights kept."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from train_face_cnn import train_step  # noqa: E402

from emollama.heads.face import FaceCNN  # noqa: E402


def _setup(net: FaceCNN) -> tuple[FaceCNN, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    return net, opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=20)


def test_bf16_step_matches_float32_and_keeps_float32_weights():
    faces = np.random.default_rng(1).integers(0, 256, (8, 48, 48), dtype=np.uint8)
    labels = np.arange(8) % 7
    torch.manual_seed(0)
    net = FaceCNN((4, 8, 8, 16), dropout=0.0)
    fp32, bf16 = _setup(net), _setup(copy.deepcopy(net))

    loss32 = train_step(*fp32, faces, labels, np.random.default_rng(2))
    loss16 = train_step(*bf16, faces, labels, np.random.default_rng(2), bf16=True)
    assert abs(loss32 - loss16) < 0.05 * loss32  # same augmented batch, bf16 rounding only
    assert all(p.dtype == torch.float32 for p in bf16[0].parameters())
    assert bf16[0].features[0][1].running_mean.dtype == torch.float32
    moved = [(a - b).abs().max().item() for a, b in zip(fp32[0].parameters(), bf16[0].parameters(), strict=True)]
    assert max(moved) < 0.02  # both took (nearly) the same step from the same weights
    # And repeated bf16 steps still learn the batch.
    first = loss16
    for _ in range(15):
        loss16 = train_step(*bf16, faces, labels, np.random.default_rng(2), bf16=True)
    assert loss16 < first
