"""`emollama features` on the command line: exit 0 on clips and on official folders, one-line errors."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from emollama.features.store import FeatureStore
from tests.features.conftest import TINY_YAML
from tests.features.test_official import fake_official
from tests.features.test_store import _changed
from tests.test_cli import assert_one_line_error, run_cli


def test_cli_extracts_a_folder_and_resumes(feature_clips, model_dir, quiet_perceiver, tmp_path, monkeypatch):
    """In-process (the loaded perception models are reused); --config takes a model folder."""
    from emollama.cli import app

    monkeypatch.setattr("emollama.perception.pipeline.Perceiver", lambda settings: quiet_perceiver)
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(feature_clips["tone"], clips / "tone.mp4")
    (clips / "broken.mp4").write_bytes(b"not a video")
    args = ["features", str(clips), "-o", str(tmp_path / "features"), "--config", str(model_dir)]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "extracted now" in first.output and "broken" in first.output
    assert FeatureStore.open(tmp_path / "features").names() == ["tone"]
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "1 already in" in again.output and "failed last time" in again.output


def main_in_process(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:  # noqa: ANN001
    """``emollama ARGS`` through the console entry point (its error handling included), without a new process."""
    from emollama.cli import main

    monkeypatch.setattr("sys.argv", ["emollama", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    captured = capsys.readouterr()
    return int(exit_.value.code or 0), captured.out, captured.err


def test_cli_reads_official_folders(tmp_path, monkeypatch, capsys):
    fake_official(tmp_path / "official", ["a", "b"])
    code, out, err = main_in_process(monkeypatch, capsys, "features", "--official", str(tmp_path / "official"),
                                     "-o", str(tmp_path / "features"), "--config", str(TINY_YAML))
    assert code == 0, out + err
    assert FeatureStore.open(tmp_path / "features").names() == ["a", "b"]


def test_cli_missing_config_is_one_line_exit_2(feature_clips, tmp_path):
    proc = run_cli("features", str(feature_clips["tone"]), "-o", str(tmp_path / "f"), "--config",
                   str(tmp_path / "nowhere.yaml"))
    assert_one_line_error(proc, "nowhere.yaml")


def test_cli_refusals_are_one_line(feature_clips, tmp_path, monkeypatch, capsys):
    fake_official(tmp_path / "official", ["a"])
    FeatureStore.create(tmp_path / "mixed", _changed(local_encoder={"pool": "cls"}), settings={})
    cases = [(["--official", str(tmp_path / "official"), "-o", str(tmp_path / "mixed")], "already holds features"),
             ([str(feature_clips["tone"]), "--official", str(tmp_path / "official"), "-o", str(tmp_path / "f")],
              "not both"),
             ([str(feature_clips["tone"]), "-o", str(tmp_path / "f"), "--patch-dtype", "int8"], "--patch-dtype")]
    for args, fragment in cases:
        code, out, err = main_in_process(monkeypatch, capsys, "features", *args, "--config", str(TINY_YAML))
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), (args, out, err)
        assert fragment in lines[0] and "Traceback" not in out + err
