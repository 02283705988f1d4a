"""The face training step (float32 and bfloat16, with and without a teacher) and stage 2's batch-norm re-estimate."""

from __future__ import annotations

import copy

import numpy as np
import torch

from emollama.heads.face import FaceCNN, to_network_input
from emollama.train.heads.face_ckplus import recalibrate_batch_norm
from emollama.train.heads.face_step import train_step


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


def test_teacher_term_is_added_only_for_the_marked_faces_and_only_over_the_teacher_classes():
    faces = np.random.default_rng(1).integers(0, 256, (8, 48, 48), dtype=np.uint8)
    labels = np.arange(8) % 8  # eight outputs, the last (contempt) unknown to the teacher
    torch.manual_seed(0)
    student = FaceCNN((4, 8, 8, 16), dropout=0.0, n_classes=8)
    teacher = FaceCNN((4, 8, 8, 16), dropout=0.0, n_classes=7).eval()
    losses = {}
    for name, mask, weight in (("plain", None, 0.0), ("none marked", np.zeros(8, bool), 5.0),
                               ("all marked", np.ones(8, bool), 5.0)):
        net, opt, sched = _setup(copy.deepcopy(student))
        losses[name] = train_step(net, opt, sched, faces, labels, np.random.default_rng(2), teacher=teacher,
                                  distill=mask, distill_weight=weight)
    assert losses["none marked"] == losses["plain"]
    assert losses["all marked"] > losses["plain"] + 1e-4  # a different random network disagrees: KL > 0


def test_recalibrated_statistics_are_those_of_the_plain_faces():
    faces = np.random.default_rng(3).integers(0, 256, (130, 48, 48), dtype=np.uint8)
    torch.manual_seed(0)
    net = FaceCNN((4, 8, 8, 16))
    bn = net.features[0][1]
    bn.running_mean.fill_(5.0)  # stale statistics, as left by augmented training
    recalibrate_batch_norm(net, faces[:128])
    assert not net.training and bn.momentum == 0.1  # eval mode; the usual momentum is back
    with torch.no_grad():
        conv = net.features[0][0](to_network_input(faces[:128]).contiguous(memory_format=torch.channels_last))
    assert torch.allclose(bn.running_mean, conv.mean(dim=(0, 2, 3)), atol=1e-4)
