"""FER2013 as arrays for the face recipes (:mod:`.face_cnn`, :mod:`.face_ckplus`).

One loader for both training stages, so the networks are trained on exactly the same pixels
(the selection, :mod:`.face_select`, reads the val and CK+ images unresized through
``load_rows`` instead, because it passes them to ``ExpressionModel.predict`` as ``analyze``
would). Arrays are cached as .npz in the recipe's work folder (outside the repository: the data
is research-licensed).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from emollama.heads.face import FER_LABELS


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
            xs.append(read_grey(root / row["path"], size))
            ys.append(FER_LABELS.index(row["label"]))
    x, y = np.stack(xs), np.asarray(ys, dtype=np.int64)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(cached, x=x, y=y)
    return x, y


def read_grey(path: Path, size: int) -> np.ndarray:
    """One image as (size, size) uint8 grey: bilinear resize only when it has another size."""
    im = Image.open(path).convert("L")
    if im.size != (size, size):
        im = im.resize((size, size), Image.BILINEAR)
    return np.asarray(im, dtype=np.uint8)
