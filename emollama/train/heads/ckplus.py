"""CK+ (``ckplus48``) as arrays for the second face stage (:mod:`.face_ckplus`)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from emollama.heads.face import CNN_INPUT_SIZE
from emollama.labels import normalize_label
from emollama.train.heads.fer2013 import read_grey

#: The class CK+ has and FER2013 lacks.
CONTEMPT = "contempt"


def load_ckplus(root: Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    """CK+ frames (N, 48, 48) uint8, canonical label words, subject ids."""
    xs, ys, subj = [], [], []
    with open(root / "labels.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            xs.append(read_grey(root / row["path"], CNN_INPUT_SIZE))
            ys.append(normalize_label(row["label"]))
            subj.append(row["speaker_id"])
    return np.stack(xs), ys, np.asarray(subj)
