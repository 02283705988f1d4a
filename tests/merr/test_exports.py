"""Every exporter round-trips: export -> load -> identical records, ground truth preserved."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from emollama.merr.exports import LOADERS, export, select
from emollama.merr.record import read_records


@pytest.fixture
def records(annotated: Path):
    recs = read_records(annotated)
    # A ground-truth label outside Emotion-LLaMA's nine classes, kept by hand to test its handling.
    extra = recs[0].model_copy(update={"name": "disgusted_one", "label": recs[0].label.model_copy(
        update={"value": "disgust", "given_as": "disgusted"})})
    return [*recs, extra]


@pytest.mark.parametrize("fmt", ["emotion-llama", "sharegpt", "hf"])
def test_round_trip(records, tmp_path, fmt: str) -> None:
    export(records, fmt, tmp_path / fmt, include_dropped=True)
    loaded = sorted(LOADERS[fmt](tmp_path / fmt), key=lambda r: r.name)
    expected = sorted(select(records, include_dropped=True), key=lambda r: r.name)
    if fmt == "emotion-llama":
        expected = [r for r in expected if r.label != "disgust"]
    assert loaded == expected
    gt = next(r for r in loaded if r.name == "astronaut_happy")
    assert gt.label == "happy" and gt.label_source == "ground_truth" and gt.fine and gt.peak_index is not None


def test_emotion_llama_layout(records, tmp_path) -> None:
    info = export(records, "emotion-llama", tmp_path)
    assert info["skipped_label_not_in_emotion_llama"] == ["disgusted_one"]
    lines = (tmp_path / "MERR_coarse_grained.txt").read_text().splitlines()
    name, count, label, valence = lines[0].split(" ")
    assert (name, label, valence) == ("astronaut_happy", "happy", "-10") and int(count) > 100
    coarse = json.loads((tmp_path / "MERR_coarse_grained.json").read_text())
    assert set(coarse) == {"astronaut_happy"}  # only kept clips by default
    assert coarse[name]["caption"] and isinstance(coarse[name]["peak_index"], int) and coarse[name]["AU_list"]
    fine = json.loads((tmp_path / "MERR_fine_grained.json").read_text())
    assert fine[name]["smp_reason_caption"].endswith("happy.")
    with open(tmp_path / "transcription_en_all.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["name"] == name and "happy" in rows[0]["sentence"]


def test_keep_dropped_exports_say_why_each_clip_was_dropped(records, tmp_path) -> None:
    export(records, "emotion-llama", tmp_path, include_dropped=True)
    coarse = json.loads((tmp_path / "MERR_coarse_grained.json").read_text())
    dropped = {k: v["filter"] for k, v in coarse.items() if not v["filter"]["kept"]}
    assert dropped, "the fixture has clips the filter drops"
    assert all(f["code"] and f["reason"] for f in dropped.values())
    assert coarse["astronaut_happy"]["filter"]["kept"] is True


def test_sharegpt_media_tags_match(records, tmp_path) -> None:
    export(records, "sharegpt", tmp_path, include_dropped=True)
    lines = [json.loads(x) for x in (tmp_path / "merr_sharegpt.jsonl").read_text().splitlines()]
    assert {x["task"] for x in lines} == {"emotion", "caption", "reason"}
    for x in lines:
        assert x["messages"][0]["content"].count("<video>") == len(x["videos"]) == 1
        assert "\\n" not in x["messages"][1]["content"]
    again = tmp_path / "again"
    export(records, "sharegpt", again, include_dropped=True)
    assert (again / "merr_sharegpt.jsonl").read_text() == (tmp_path / "merr_sharegpt.jsonl").read_text()
    emotion = [x for x in lines if x["task"] == "emotion"]
    assert {x["messages"][1]["content"] for x in emotion} >= {"happy", "disgust"}


def test_sharegpt_puts_still_images_under_images(records, tmp_path) -> None:
    photo = records[0].model_copy(update={"name": "photo_one", "path": "clips/photo_one.png"})
    export([photo], "sharegpt", tmp_path, include_dropped=True)
    row = json.loads((tmp_path / "merr_sharegpt.jsonl").read_text().splitlines()[0])
    assert row["images"] == ["clips/photo_one.png"] and "videos" not in row
    assert row["messages"][0]["content"].startswith("<image>")
    assert [r.name for r in LOADERS["sharegpt"](tmp_path)] == ["photo_one"]
