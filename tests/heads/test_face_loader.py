"""The face head loader: the shipped weights, calibrated; a missing file is a clear error, never a fallback."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emollama.errors import ModelUnavailableError
from emollama.heads.face import FACE_CNN_WEIGHTS, ExpressionModel, load_expression_model
from emollama.labels import normalize_label


@pytest.fixture(scope="module")
def model():
    return load_expression_model()


def test_loader_loads_the_shipped_head(model):
    assert FACE_CNN_WEIGHTS.is_file()
    assert isinstance(model, ExpressionModel) and 0.2 < model.temperature < 5
    probs = model.predict([np.full((48, 48), 128, np.uint8), np.zeros((64, 64, 3), np.uint8)])
    k = len(model.labels)
    assert k >= 7 and probs.shape == (2, k) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert model.predict([]).shape == (0, k)


def test_fer2013_val_sample_above_chance(model, shared_data: Path):
    root = shared_data / "fer2013"
    with open(root / "labels.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"].strip() == "val"][::18]
    crops = [np.asarray(Image.open(root / r["path"]).convert("L")) for r in rows]
    pred = model.predict(crops).argmax(1)
    truth = [model.labels.index(r["label"]) if r["label"] in model.labels else -1 for r in rows]
    acc = float(np.mean(pred == np.array(truth)))
    assert acc > 0.45, acc
    assert all(normalize_label(y) for y in model.labels)


def test_ckplus_subjects_read_with_contempt(model, shared_data: Path):
    """The shipped head saw every CK+ dev subject (stage 2): this checks the wiring of the eighth
    class and the label mapping on real frames, not held-out accuracy (that is the card's K-fold number)."""
    if "contempt" not in model.labels:
        pytest.skip("the shipped face head has no contempt output")
    root = shared_data / "ckplus48"
    with open(root / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))[::5]
    crops = [np.asarray(Image.open(root / r["path"]).convert("L")) for r in rows]
    pred = [model.labels[i] for i in model.predict(crops).argmax(1)]
    truth = [normalize_label(r["label"]) for r in rows]
    assert np.mean([p == t for p, t in zip(pred, truth, strict=True)]) > 0.8


def test_missing_weights_are_a_clear_error(tmp_path: Path):
    with pytest.raises(ModelUnavailableError, match="face head weights missing.*MODEL_CARD"):
        load_expression_model(tmp_path / "face_cnn.pt")
