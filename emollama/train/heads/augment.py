"""Face augmentation for both face recipes: random mirror/rotation/shift/zoom, contrast, brightness, erasing."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def random_flip_affine(batch: torch.Tensor, rng: np.random.Generator, degrees: float, shift_px: float,
                       scale: float) -> torch.Tensor:
    """Random mirror, then rotation (± ``degrees``), shift (± ``shift_px``) and zoom (1 ± ``scale``) per image.

    The random draws come in a fixed order (flip, angle, shift, zoom), so a seed gives the same
    batches as in every earlier version of the recipes.
    """
    n, size = batch.shape[0], batch.shape[-1]
    flip = torch.from_numpy(rng.random(n) < 0.5)
    batch = torch.where(flip[:, None, None, None], batch.flip(-1), batch)
    angle = torch.from_numpy(rng.uniform(-degrees, degrees, n).astype(np.float32)) * np.pi / 180
    shift = torch.from_numpy(rng.uniform(-shift_px, shift_px, (n, 2)).astype(np.float32)) * 2 / size
    zoom = torch.from_numpy(rng.uniform(1 - scale, 1 + scale, n).astype(np.float32))
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    return F.grid_sample(batch, grid, padding_mode="border", align_corners=False)


def augment(batch: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Flip, ±15° rotation, ±5 px shift (a random crop), ±12 % scale, ±25 % contrast/±0.2 brightness,
    and one random 12-20 px erased square in a quarter of the images."""
    n, size = batch.shape[0], batch.shape[-1]
    batch = random_flip_affine(batch, rng, degrees=15, shift_px=5, scale=0.12)
    contrast = torch.from_numpy(rng.uniform(0.75, 1.25, (n, 1, 1, 1)).astype(np.float32))
    bright = torch.from_numpy(rng.uniform(-0.2, 0.2, (n, 1, 1, 1)).astype(np.float32))
    batch = (batch * contrast + bright).clamp(-1, 1)
    for i in np.flatnonzero(rng.random(n) < 0.25):
        s = int(rng.integers(12, 21))
        r, c = rng.integers(0, size - s, 2)
        batch[i, :, r:r + s, c:c + s] = 0.0
    return batch
