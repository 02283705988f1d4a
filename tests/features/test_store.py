"""A feature store belongs to one encoder set: another one is refused, at training time and when writing."""

from __future__ import annotations

import pytest

from emollama.features.store import FeatureStore, FeatureStoreError
from emollama.model.config import EmotionLlamaConfig
from tests.features.conftest import TINY_YAML, tiny_config

SETTINGS = {"patch_dtype": "float16", "fps": 10.0, "encoder_frames": 16}


def _changed(**sections: dict) -> EmotionLlamaConfig:
    data = tiny_config().to_dict()
    for section, values in sections.items():
        data[section].update(values)
    return EmotionLlamaConfig.from_dict(data, base_dir=TINY_YAML.parent)


def test_the_same_config_is_compatible(tmp_path):
    store = FeatureStore.create(tmp_path / "f", tiny_config(), settings=SETTINGS)
    store.check_compatible(tiny_config())
    assert FeatureStore.create(tmp_path / "f", tiny_config(), settings=SETTINGS).manifest == store.manifest


@pytest.mark.parametrize(("change", "fragment"), [
    ({"local_encoder": {"pool": "cls"}}, "local_encoder (settings"),
    ({"local_encoder": {"image_size": 48}}, "local_encoder (settings"),
    ({"global_encoder": {"frame": "peak"}}, "global_encoder (settings"),
])
def test_another_encoder_set_is_refused_at_training_time(tmp_path, change, fragment):
    store = FeatureStore.create(tmp_path / "f", tiny_config(), settings=SETTINGS)
    with pytest.raises(FeatureStoreError, match="never mixed") as err:
        FeatureStore.open(tmp_path / "f").check_compatible(_changed(**change))
    assert fragment in str(err.value) and str(store.root) in str(err.value)


def test_features_that_do_not_fit_the_projector_name_both_shapes(tmp_path):
    FeatureStore.create(tmp_path / "f", tiny_config(), settings=SETTINGS)
    with pytest.raises(FeatureStoreError, match=r"local: features \[32\] vs projector \[48\]"):
        FeatureStore.open(tmp_path / "f").check_compatible(_changed(projector={"local_dim": 48}))


def test_writing_into_a_store_of_another_encoder_set_is_refused(tmp_path):
    FeatureStore.create(tmp_path / "f", tiny_config(), settings=SETTINGS)
    with pytest.raises(FeatureStoreError, match=r"identity\.local_encoder\.settings\.pool: stored mean, now cls"):
        FeatureStore.create(tmp_path / "f", _changed(local_encoder={"pool": "cls"}), settings=SETTINGS)
    with pytest.raises(FeatureStoreError, match=r"settings\.patch_dtype: stored float16, now float32"):
        FeatureStore.create(tmp_path / "f", tiny_config(), settings={**SETTINGS, "patch_dtype": "float32"})
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "a.mp4").write_bytes(b"x")
    with pytest.raises(FeatureStoreError, match="not a feature folder"):
        FeatureStore.create(tmp_path / "clips", tiny_config(), settings=SETTINGS)


def test_two_checkpoints_of_one_architecture_are_different_encoder_sets(tmp_path):
    """Same config.json, other weights (another fine-tune): the identity differs, so training refuses."""
    from emollama.features.store import encoder_identity

    for name, fill in (("a", 0.0), ("b", 1.0)):
        folder = tmp_path / name / "mae"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text('{"model_type": "vit_mae", "hidden_size": 32}', encoding="utf-8")
        (folder / "model.safetensors").write_bytes(bytes([int(fill)]) * 200_000)
    cfg_a, cfg_b = tiny_config(), tiny_config()
    cfg_a.local_encoder.path, cfg_b.local_encoder.path = str(tmp_path / "a" / "mae"), str(tmp_path / "b" / "mae")
    ida, idb = encoder_identity(cfg_a)["local_encoder"], encoder_identity(cfg_b)["local_encoder"]
    assert ida["weights"] != idb["weights"]
    assert ida["settings"] == idb["settings"]
