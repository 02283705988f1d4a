"""The original project's feature folders (.npy per modality + first_frames/) read into a store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from emollama.errors import InputError
from emollama.features.official import OfficialSource
from emollama.features.store import FeatureStore, FeatureStoreError
from emollama.model.encoders import GlobalEncoder
from emollama.model.processor import image_tensor
from tests.features.conftest import tiny_config

MERR = ("mae_340_UTT", "maeV_399_UTT", "HL-UTT")
MER2024 = ("mae_340_23_UTT", "maeVideo_399_23_UTT", "HL_23_UTT")


def fake_official(root: Path, names: list[str], folders: tuple[str, ...] = MERR, dim: int = 32,
                  skip: tuple[str, str] | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Random .npy features of the tiny projector's width (alternating [D] and [1, D]) and a JPEG per clip."""
    rng = np.random.default_rng(0)
    written: dict[str, dict[str, np.ndarray]] = {}
    (root / "first_frames").mkdir(parents=True)
    for folder in folders:
        (root / folder).mkdir()
    for i, name in enumerate(names):
        written[name] = {}
        for folder in folders:
            if skip == (folder, name):
                continue
            vec = rng.standard_normal(dim).astype(np.float32)
            np.save(root / folder / f"{name}.npy", vec if i % 2 else vec[None])
            written[name][folder] = vec
        Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(root / "first_frames" / f"{name}.jpg")
    return written


def test_official_folders_convert_and_read_back(tmp_path):
    cfg = tiny_config()
    written = fake_official(tmp_path / "official", ["a", "b", "c"], skip=("maeV_399_UTT", "c"))
    source = OfficialSource(tmp_path / "official", cfg)
    assert source.names == ["a", "b", "c"]  # the union of the .npy stems
    store = source.create_store(tmp_path / "features", "float32")
    stats = source.convert(store, batch_size=2)
    assert (stats["done"], stats["failed"]) == (2, 1)
    assert store.failures() == {"c": "missing maeV_399_UTT/c.npy"}

    glob = GlobalEncoder.from_config(cfg.global_encoder, cfg)
    ge = cfg.global_encoder
    for name in ("a", "b"):
        got = store.read(name)
        for folder, field in zip(MERR, ("local", "temporal", "audio"), strict=True):
            assert torch.equal(got[field], torch.from_numpy(written[name][folder])), (name, field)
        frame = np.array(Image.open(tmp_path / "official" / "first_frames" / f"{name}.jpg").convert("RGB"))
        patches, cls = glob(image_tensor(frame, ge.image_size, ge.mean, ge.std)[None])
        assert torch.allclose(got["global_cls"], cls[0], atol=1e-6)
        assert torch.allclose(got["global_patches"], patches[0], atol=1e-6)

    manifest = FeatureStore.open(tmp_path / "features").manifest
    assert manifest["source"] == "official"
    assert manifest["identity"]["audio_encoder"] == {"path": str(tmp_path / "official" / "HL-UTT"),
                                                     "weights": "official:HL-UTT", "settings": {}}
    store.check_compatible(cfg)  # the read modalities are checked on width only

    (tmp_path / "official" / "maeV_399_UTT" / "c.npy").write_bytes(b"")  # a rerun retries c: now unreadable
    again = source.convert(store)
    assert (again["done"], again["skipped"], again["failed"]) == (0, 2, 1)
    assert "not a readable .npy" in store.failures()["c"]


def test_mer2024_folder_names_and_a_missing_first_frame(tmp_path):
    fake_official(tmp_path / "official", ["x", "y"], folders=MER2024)
    (tmp_path / "official" / "first_frames" / "y.jpg").unlink()
    source = OfficialSource(tmp_path / "official", tiny_config())
    store = source.create_store(tmp_path / "features", "float16")
    stats = source.convert(store)
    assert stats["done"] == 1 and "first_frames/y.jpg" in stats["failures"]["y"]
    assert store.manifest["identity"]["local_encoder"]["weights"] == "official:mae_340_23_UTT"


def test_a_width_that_does_not_fit_the_projector_is_one_error(tmp_path):
    fake_official(tmp_path / "official", ["a"], dim=1024)
    wrong = r"a\.npy has shape \[1, 1024\], but the projector's local input is \[32\]"
    with pytest.raises(FeatureStoreError, match=wrong):
        OfficialSource(tmp_path / "official", tiny_config())


def test_a_missing_feature_folder_is_named(tmp_path):
    fake_official(tmp_path / "official", ["a"], folders=MERR[:2])
    with pytest.raises(InputError, match="HL-UTT/ or HL_23_UTT/"):
        OfficialSource(tmp_path / "official", tiny_config())
