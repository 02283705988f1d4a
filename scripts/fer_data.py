"""FER2013 as arrays for the face training scripts (``train_face.py``, ``train_face_cnn.py``).

One loader for both so the two networks are trained and selected on exactly the same pixels,
only resized to each network's input size. Arrays are cached as .npz in the script's work folder
(outside the repository: the data is research-licensed).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from emollama.perception.expression import FER_LABELS


def load_split(root: Path, split: str, size: int, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """All images of one split as (N, size, size) uint8 grey plus label indices into FER_LABELS."""
    cached = cache / f"fer{size}_{split}.npz"
    if cached.is_file():
        z = np.load(cached)
        return z["x"], z["y"]
    xs, ys = [], []
    with open(root / "labels.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["split"] != split:
                continue
            im = Image.open(root / row["path"]).convert("L")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            xs.append(np.asarray(im, dtype=np.uint8))
            ys.append(FER_LABELS.index(row["label"]))
    x, y = np.stack(xs), np.asarray(ys, dtype=np.int64)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(cached, x=x, y=y)
    return x, y


def to_tensor(x: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) → (N, 1, H, W) in [-1, 1]: the scaling both face networks use at inference."""
    return torch.from_numpy((x.astype(np.float32)[:, None] / 255.0 - 0.5) * 2.0)


def random_flip_affine(batch: torch.Tensor, rng: np.random.Generator, degrees: float, shift_px: float,
                       scale: float) -> torch.Tensor:
    """Random mirror, then rotation (± ``degrees``), shift (± ``shift_px``) and zoom (1 ± ``scale``) per image.

    Shared by both face recipes; the random draws come in a fixed order (flip, angle, shift, zoom)
    so a seed gives the same batches as before this was factored out.
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
