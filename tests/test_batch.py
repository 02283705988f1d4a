"""Manifest reading and the resumable JSONL writer, without models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emollama.batch import ManifestRow, ok_record, read_manifest, run_batch
from emollama.errors import ManifestError, MediaDecodeError


def test_one_odd_failure_is_recorded_and_the_batch_goes_on(tmp_path: Path):
    rows = [ManifestRow(k, tmp_path / k, None) for k in ("a.mp4", "b.mp4", "c.mp4")]

    def analyze_one(row: ManifestRow) -> dict:
        if row.key == "a.mp4":
            raise MediaDecodeError("a.mp4: corrupt")
        if row.key == "b.mp4":
            raise RuntimeError("a bug nobody foresaw")
        return ok_record(row, {"label": "happy", "reasoning": "r"})

    out = tmp_path / "p.jsonl"
    done = [rec["status"] for _, rec in run_batch(analyze_one, rows, out)]
    assert done == ["error", "error", "ok"]
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines[0]["error"] == "a.mp4: corrupt"
    assert lines[1]["error"].startswith("unexpected RuntimeError: a bug nobody foresaw")
    assert list(run_batch(analyze_one, rows, out)) == []  # all recorded: nothing to redo


def test_manifest_rows_with_extra_fields_are_refused(tmp_path: Path):
    m = tmp_path / "m.csv"
    m.write_text("path,subtitle\na.mp4,hello, world\n")
    with pytest.raises(ManifestError, match="line 2: more fields"):
        read_manifest(m)


def test_blank_rows_are_skipped_and_equivalent_paths_are_duplicates(tmp_path: Path):
    m = tmp_path / "m.csv"
    m.write_text("path,subtitle\na.mp4,hi\n,\n\nb.mp4,\n")
    assert [r.key for r in read_manifest(m)] == ["a.mp4", "b.mp4"]
    m.write_text("path\nsub/a.mp4\n./sub/a.mp4\n")
    with pytest.raises(ManifestError, match="duplicate"):
        read_manifest(m)


def test_semicolon_manifest_with_bom(tmp_path: Path):
    m = tmp_path / "m.csv"
    m.write_bytes("\ufeffPath;Subtitle\nclip 1.mp4;Bonjour\n".encode())
    rows = read_manifest(m)
    assert rows[0].key == "clip 1.mp4" and rows[0].subtitle == "Bonjour"
