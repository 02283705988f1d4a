"""The command line: one-line errors with a non-zero status, JSON/PNG outputs, resumable batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clips import EXAMPLE, write_long_sparse_video

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-m", "emollama", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=env, timeout=timeout)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert fragment in lines[0]


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda d: d / "missing.mp4", "no such file"),
        (lambda d: d, "is a directory"),
        (lambda d: write(d / "empty.mp4", b""), "empty"),
        (lambda d: write(d / "text.mp4", b"hello\n" * 50), "cannot decode"),
        (lambda d: write(d / "cut.mp4", EXAMPLE.read_bytes()[:2000]), "cannot decode"),
        (lambda d: write_long_sparse_video(d / "film.mkv"), "longer than the limit"),
    ],
    ids=["missing", "directory", "zero-byte", "text-as-mp4", "truncated-mp4", "two-hours"],
)
def test_bad_inputs_give_one_line_errors(tmp_path: Path, make, fragment: str):
    assert_one_line_error(run_cli("analyze", str(make(tmp_path))), fragment)


def test_unknown_label_set(tmp_path: Path):
    assert_one_line_error(run_cli("analyze", str(EXAMPLE), "--labels", "plutchik"), "unknown label set")


def test_unreadable_subtitle_file(tmp_path: Path):
    assert_one_line_error(run_cli("analyze", str(EXAMPLE), "--subtitle", str(tmp_path / "nope.srt")),
                          "subtitle file")


def test_bad_manifest(tmp_path: Path):
    m = tmp_path / "clips.csv"
    m.write_text("file,subtitle\na.mp4,hi\n")
    assert_one_line_error(run_cli("analyze", "--manifest", str(m), "--out", str(tmp_path / "p.jsonl")),
                          "needs a 'path' column")


@pytest.mark.slow
def test_analyze_writes_json_and_png(tmp_path: Path):
    proc = run_cli("analyze", str(EXAMPLE), "--json", str(tmp_path / "r.json"), "--plot", str(tmp_path / "r.png"),
                   "--subtitle", "This is wonderful, I am so happy!")
    assert proc.returncode == 0, proc.stderr
    assert "Emotion: happy" in proc.stdout and "Reasoning" in proc.stdout
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["label"] == "happy" and data["clues"]["words"]["source"] == "subtitle"
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert proc.stderr.strip() == ""  # no native log noise


@pytest.mark.slow
def test_manifest_batch_records_failures_and_resumes(tmp_path: Path):
    (tmp_path / "broken.mp4").write_text("not a video")
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "ex.mp4").write_bytes(EXAMPLE.read_bytes())
    manifest = tmp_path / "clips.csv"
    manifest.write_text("path,subtitle\nclips/ex.mp4,I am so happy\nbroken.mp4,\n")
    out = tmp_path / "preds.jsonl"
    first = run_cli("analyze", "--manifest", str(manifest), "--out", str(out))
    assert first.returncode == 0, first.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(x["key"], x["status"]) for x in lines] == [("clips/ex.mp4", "ok"), ("broken.mp4", "error")]
    assert lines[0]["name"] == "ex" and lines[0]["label"] == "happy" and lines[0]["result"]["tier"] == "clues"
    assert "cannot decode" in lines[1]["error"]

    again = run_cli("analyze", "--manifest", str(manifest), "--out", str(out))
    assert "0 to do" in again.stdout and len(out.read_text().splitlines()) == 2

    # A crash mid-write leaves half a line: the next run drops it and redoes only that clip.
    text = out.read_text().splitlines()
    out.write_text(text[0] + "\n" + text[1][: len(text[1]) // 2])
    third = run_cli("analyze", "--manifest", str(manifest), "--out", str(out))
    assert "1 to do" in third.stdout
    keys = [json.loads(x)["key"] for x in out.read_text().splitlines()]
    assert keys == ["clips/ex.mp4", "broken.mp4"]


def test_output_that_is_a_directory_is_refused_before_analysis(tmp_path: Path):
    assert_one_line_error(run_cli("analyze", str(EXAMPLE), "--json", str(tmp_path)), "is a directory")
    m = tmp_path / "clips.csv"
    m.write_text(f"path\n{EXAMPLE}\n")
    assert_one_line_error(run_cli("analyze", "--manifest", str(m), "--out", str(tmp_path)), "is a directory")


@pytest.mark.parametrize("value", ["0", "-3", "nan", "inf"])
def test_bad_fps_values(value: str):
    assert_one_line_error(run_cli("analyze", str(EXAMPLE), "--fps", value), "--fps")
