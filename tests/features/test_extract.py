"""`emollama features` on clips: the tier's own tensors, resume, failures, Ctrl-C."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from emollama.features.extract import (
    ExtractConfig,
    clip_items,
    extract_features,
    extraction_settings,
    load_model_config,
)
from emollama.features.store import TENSORS, FeatureStore
from emollama.merr.inputs import ClipItem
from tests.features.conftest import TINY_YAML


def _store(out: Path, run: ExtractConfig, patch_dtype: str = "float16") -> FeatureStore:
    cfg = load_model_config(run.model_config)
    return FeatureStore.create(out, cfg, source="extracted", settings=extraction_settings(run, patch_dtype))


def test_features_are_what_the_emotion_llama_tier_encodes(feature_clips, model_dir, quiet_perceiver, tmp_path,
                                                           monkeypatch):
    """Same clip, same model folder: the stored tensors equal the encoder outputs of `analyze --tier emotion-llama`."""
    from emollama.api import Analyzer
    from emollama.recognize.emotion_llama import EmotionLlamaTier

    tier = EmotionLlamaTier(model_dir, max_new_tokens=1)
    seen: list[Any] = []
    encoders = tier.model.encoders
    encode = encoders.encode

    def spy(batch):  # noqa: ANN001, ANN202
        seen.append(encode(batch))
        return seen[-1]

    encoders.encode = spy  # the tier's live encoder outputs for each clip
    monkeypatch.setattr("emollama.api.Perceiver", lambda settings: quiet_perceiver)  # the loaded perception models
    analyzer = Analyzer(recognizer=tier)
    expected = {}
    for name, path in feature_clips.items():
        analyzer.analyze(path)
        expected[name] = seen[-1]

    run = ExtractConfig(model_config=str(model_dir), batch_size=2)  # both clips in one encoder batch
    store = _store(tmp_path / "features", run, patch_dtype="float32")
    items = [ClipItem(n, p) for n, p in feature_clips.items()]
    stats = extract_features(items, store, run, perceiver=quiet_perceiver)
    assert stats["done"] == 2 and stats["failed"] == 0
    for name, feats in expected.items():
        got = store.read(name)
        for t in TENSORS:
            assert torch.equal(got[t], getattr(feats, t)[0]), (name, t)
    face = store.read("face")
    assert face["local"].abs().sum() > 0 and face["temporal"].abs().sum() > 0  # the face crops reached MAE/VideoMAE
    assert store.read("tone")["local"].abs().sum() == 0  # no face: zeros, as the tier gives


class CountingPerceiver:
    """The shared perception models, counting which clips are perceived."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seen: list[str] = []

    def perceive(self, path: Path, **kwargs: Any) -> Any:
        self.seen.append(Path(path).stem)
        return self.inner.perceive(path, **kwargs)


def test_rerun_skips_finished_clips_and_retries_failed_ones(feature_clips, quiet_perceiver, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(feature_clips["tone"], clips / "tone.mp4")
    late = clips / "late.mp4"
    items = [ClipItem("tone", clips / "tone.mp4"), ClipItem("late", late)]  # late.mp4 does not exist yet
    run = ExtractConfig(model_config=str(TINY_YAML), batch_size=2)
    store = _store(tmp_path / "features", run)
    counting = CountingPerceiver(quiet_perceiver)

    first = extract_features(items, store, run, perceiver=counting)
    assert (first["done"], first["failed"], first["skipped"]) == (1, 1, 0)
    assert set(first["failures"]) == {"late"} and "late.mp4" in first["failures"]["late"]
    assert set(store.failures()) == {"late"}  # recorded with its reason, in failed.jsonl
    assert store.names() == ["tone"]

    counting.seen.clear()
    second = extract_features(items, _store(tmp_path / "features", run), run, perceiver=counting)
    assert counting.seen == ["late"]  # the finished clip is not perceived again; the failed one is retried
    assert (second["done"], second["failed"], second["skipped"]) == (0, 1, 1)

    shutil.copy(feature_clips["tone"], late)
    third = extract_features(items, store, run, perceiver=counting)
    assert (third["done"], third["failed"], third["skipped"]) == (1, 0, 1)
    assert store.failures() == {} and store.names() == ["late", "tone"]
    raw = load_file(str(store.clip_file("late")))
    assert raw["global_patches"].dtype == torch.float16 and raw["audio"].dtype == torch.float32


def test_ctrl_c_keeps_the_finished_clips(feature_clips, quiet_perceiver, tmp_path):
    items = [ClipItem(n, p) for n, p in sorted(feature_clips.items())]
    run = ExtractConfig(model_config=str(TINY_YAML), batch_size=1)
    store = _store(tmp_path / "features", run)

    def stop(event: tuple) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_features(items, store, run, perceiver=quiet_perceiver, on_event=stop)
    assert store.names() == ["face"]  # written before anyone heard of it
    assert extract_features(items, store, run, perceiver=quiet_perceiver)["done"] == 1


def test_annotate_output_folder_is_a_source(feature_clips, tmp_path):
    """An `emollama annotate` folder names its clips in clips/*.json; a folder of media is discovered."""
    from emollama.merr.record import read_record

    annotated = tmp_path / "annotated"
    (annotated / "clips").mkdir(parents=True)
    template = {"format": "emollama.merr-clip/1", "emollama_version": "0", "name": "face",
                "path": str(feature_clips["face"]), "duration_s": 1.2, "native_fps": 25.0, "n_frames": 30,
                "has_audio": True, "label": {"value": "happy", "source": "ground_truth"}, "prediction": {},
                "predicted_label": None,
                "coarse": {"peak": None, "active_aus": [], "visual_expression": "", "audio_tone": {
                    "word": None, "evidence": ""}, "audio_description": "", "subtitle": {"text": "", "source": "none"},
                           "visual_objective": {}, "caption": ""},
                "filter": {"kept": True, "code": "ok", "reason": ""},
                "fine": {"status": "skipped", "source": "none"}, "clues_reasoning": ""}
    (annotated / "clips" / "face.json").write_text(json.dumps(template))
    read_record(annotated / "clips" / "face.json")  # the template is a valid record
    (annotated / "report.png").write_bytes(b"not a clip")  # an annotate folder's own files are not clips
    assert clip_items(annotated) == [ClipItem("face", feature_clips["face"])]
    assert [it.name for it in clip_items(feature_clips["face"].parent)] == ["face", "tone"]

