"""The offline pipeline on real media: coarse fields, filter, template fine, resume, CLI, report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emollama.merr.inputs import ClipItem
from emollama.merr.record import read_errors, read_record, read_records
from emollama.merr.report import write_report
from emollama.merr.runner import RunConfig, run_annotation


def test_example_clip_coarse_and_fine(annotated: Path) -> None:
    r = read_record(annotated / "clips" / "astronaut_happy.json")
    assert r.label.value == "happy" and r.label.source == "ground_truth" and r.label.given_as == "Happy"
    peak = r.coarse.peak
    assert peak is not None and 0 <= peak.time_s <= r.duration_s
    assert peak.native_frame == round(peak.time_s * r.native_fps)
    assert {a.au for a in r.coarse.active_aus} >= {"AU12"}
    assert all(a.intensity >= 1.0 for a in r.coarse.active_aus)
    assert r.coarse.active_aus[0].phrase.split(" ")[:3] == ["the", "corners", "of"]
    assert r.coarse.subtitle.source == "asr" and r.coarse.subtitle.language == "en"
    assert "happy" in r.coarse.subtitle.text
    assert r.coarse.audio_tone.word == "joyful"
    assert r.coarse.visual_objective["faces"] == 1 and r.coarse.visual_objective["source"] == "measured"
    assert r.coarse.subtitle.text in r.coarse.caption and r.coarse.visual_expression in r.coarse.caption
    assert r.filter.kept and r.filter.code == "au_support"
    assert r.fine.status == "ok" and r.fine.source == "template" and "happy" in r.fine.text
    assert "AU12" in r.fine.text and r.clues_reasoning


def test_faceless_and_silent_clips(annotated: Path) -> None:
    noface = read_record(annotated / "clips" / "noface_tone.json")
    assert noface.coarse.peak is None and noface.coarse.active_aus == []
    assert noface.filter.kept is False and noface.filter.code == "no_face"
    assert noface.label.source == "pseudo" and noface.fine.status == "skipped"
    assert "No face is visible" in noface.coarse.visual_objective["text"]
    grey = read_record(annotated / "clips" / "grey.json")
    assert grey.coarse.audio_tone.word is None and grey.coarse.subtitle.text == ""
    assert "No words are spoken" in grey.coarse.caption
    assert grey.label.source == "ground_truth" and not grey.filter.kept


def test_resume_after_crash_mid_run(perceiver, tiny_clips, tmp_path, monkeypatch) -> None:
    import emollama.merr.runner as runner

    items = [ClipItem("a", tiny_clips["grey"]), ClipItem("b", tiny_clips["noface_tone"]),
             ClipItem("c", tmp_path / "missing.mp4")]
    real = runner.annotate_clip
    calls: list[str] = []

    def crash_on_b(an, item, options, writer, **kwargs):  # noqa: ANN001, ANN003, ANN202
        calls.append(item.name)
        if item.name == "b":
            raise KeyboardInterrupt  # the process dies mid-run
        return real(an, item, options, writer, **kwargs)

    monkeypatch.setattr(runner, "annotate_clip", crash_on_b)
    with pytest.raises(KeyboardInterrupt):
        run_annotation(items, tmp_path, RunConfig(), perceiver=perceiver)
    assert [r.name for r in read_records(tmp_path)] == ["a"]
    (tmp_path / "clips" / ".tmp-half.json").write_text("{", encoding="utf-8")  # a torn write
    monkeypatch.setattr(runner, "annotate_clip", real)
    before = (tmp_path / "clips" / "a.json").stat().st_mtime_ns
    stats = run_annotation(items, tmp_path, RunConfig(), perceiver=perceiver)
    assert stats["already_done"] == 1 and stats["annotated"] == 1 and stats["failed"] == 1
    assert (tmp_path / "clips" / "a.json").stat().st_mtime_ns == before  # not redone
    assert [r.name for r in read_records(tmp_path)] == ["a", "b"]
    errors = read_errors(tmp_path)
    assert errors[0]["name"] == "c" and "missing.mp4" in errors[0]["error"]
    # A failed clip is retried on the next run (and still fails: it does not exist).
    assert run_annotation(items, tmp_path, RunConfig(), perceiver=perceiver)["to_do"] == 1


def test_report_counts_and_png(annotated: Path, tmp_path) -> None:
    records = read_records(annotated)
    md, png = write_report(tmp_path, records, [{"name": "x", "path": "x.mp4", "error": "boom"}],
                           {"annotated": 3, "wall_s": 6.0, "workers": 1})
    text = md.read_text(encoding="utf-8")
    assert "4 clips: 3 annotated, 1 failed; **1 kept**, 2 dropped" in text
    assert "| no_face | 2 |" in text and "30.0 clips/min" in text and "| x | boom |" in text
    summary = json.loads((tmp_path / "report.json").read_text())
    assert summary["top_aus"]["happy"][0][0] in {a.au for a in records[0].coarse.active_aus}
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


def test_cli_annotate_and_export(tmp_path, tiny_clips) -> None:
    from emollama.cli import app

    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "grey.mp4").write_bytes(tiny_clips["grey"].read_bytes())
    bad = tmp_path / "labels.csv"
    bad.write_text("name,label\ngrey,sadish\n", encoding="utf-8")
    runner = CliRunner()
    res = runner.invoke(app, ["annotate", str(clips), "-o", str(tmp_path / "out"), "--label-file", str(bad)])
    assert res.exit_code != 0 and "sadish" in str(res.exception)
    good = tmp_path / "good.csv"
    good.write_text("name,label\ngrey,neutral\n", encoding="utf-8")
    subs = tmp_path / "subs.csv"
    subs.write_text("name,sentence\ngrey,Nothing to see here.\n", encoding="utf-8")
    res = runner.invoke(app, ["annotate", str(clips), "-o", str(tmp_path / "out"), "--label-file", str(good),
                              "--subtitles", str(subs), "--no-asr"])
    assert res.exit_code == 0, res.output
    assert "1 annotated" in res.output and (tmp_path / "out" / "report.png").exists()
    rec = read_record(tmp_path / "out" / "clips" / "grey.json")
    assert rec.coarse.subtitle.text == "Nothing to see here." and rec.label.value == "neutral"
    res = runner.invoke(app, ["annotate", str(clips), "-o", str(tmp_path / "out")])
    assert "1 already annotated" in res.output and "0 to do" in res.output
    res = runner.invoke(app, ["export", str(tmp_path / "out"), "--format", "sharegpt", "--include-dropped"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "export" / "sharegpt" / "merr_sharegpt.jsonl").exists()
    res = runner.invoke(app, ["export", str(tmp_path / "out"), "--format", "csv"])
    assert res.exit_code != 0 and "emotion-llama" in str(res.exception)
