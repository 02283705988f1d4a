"""Scale-out paths: worker processes and a local Ray started inside the test (both small)."""

from __future__ import annotations

from emollama.merr.inputs import ClipItem
from emollama.merr.record import read_record, read_records
from emollama.merr.runner import RunConfig, run_annotation


def _items(tiny_clips, tmp_path):
    return [ClipItem("grey", tiny_clips["grey"], None, "neutral", "neutral"),
            ClipItem("noface_tone", tiny_clips["noface_tone"]), ClipItem("gone", tmp_path / "gone.mp4")]


def test_worker_processes(tiny_clips, tmp_path, annotated) -> None:
    stats = run_annotation(_items(tiny_clips, tmp_path), tmp_path / "out", RunConfig(asr=False), workers=2)
    assert stats["annotated"] == 2 and stats["failed"] == 1
    assert [r.name for r in read_records(tmp_path / "out")] == ["grey", "noface_tone"]
    serial = read_record(annotated / "clips" / "noface_tone.json")
    assert read_record(tmp_path / "out" / "clips" / "noface_tone.json").filter == serial.filter


def test_local_ray(tiny_clips, tmp_path) -> None:
    import ray

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        stats = run_annotation(_items(tiny_clips, tmp_path), tmp_path / "out", RunConfig(asr=False),
                               ray_address="local")
    finally:
        ray.shutdown()
    assert stats["annotated"] == 2 and stats["failed"] == 1
    rec = read_record(tmp_path / "out" / "clips" / "grey.json")
    assert rec.label.source == "ground_truth" and rec.coarse.peak is None
