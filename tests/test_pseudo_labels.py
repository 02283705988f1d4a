"""Pseudo-labels: confident analyze answers on unlabelled clips become a fusion training manifest."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from emollama.train.fusion.pseudo import PseudoLabel, select, threshold_tradeoff
from tests.clips import EXAMPLE, write_video
from tests.test_cli import assert_one_line_error, run_cli


def _record(path: Path, result) -> dict:  # noqa: ANN001 - AnalysisResult
    return {"name": path.stem, "key": str(path), "path": str(path), "status": "ok", "label": result.label,
            "reasoning": result.reasoning, "error": None, "result": json.loads(result.model_dump_json())}


@pytest.fixture(scope="module")
def predictions(analyzer, tmp_path_factory) -> Path:
    """`analyze --manifest` output: the happy example, an unsure copy of it, a faceless silent clip, a failure."""
    root = tmp_path_factory.mktemp("pseudo")
    blank = write_video(root / "blank.mp4", seconds=1.0)
    sure = _record(EXAMPLE, analyzer.analyze(EXAMPLE, label_set="dfew7"))
    unsure = json.loads(json.dumps(sure))
    unsure["path"] = str(root / "unsure.mp4")
    unsure["result"]["scores"] = {y: (0.4 if y == "happy" else 0.1) for y in unsure["result"]["scores"]}
    lines = [sure, unsure, _record(blank, analyzer.analyze(blank, label_set="dfew7")),
             {"name": "broken", "key": "broken.mp4", "path": "broken.mp4", "status": "error", "label": None,
              "reasoning": None, "error": "not a media file", "result": None}]
    out = root / "preds.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return out


def test_confident_answers_become_a_manifest(predictions, tmp_path):
    out = tmp_path / "pseudo.csv"
    proc = run_cli("pseudo-label", str(predictions), "--out", str(out), "--min-confidence", "0.3")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open()))
    assert [Path(r["path"]).name for r in rows] == [EXAMPLE.name, "unsure.mp4"]
    assert rows[0]["label"] == "happy" and float(rows[0]["confidence"]) >= 0.6
    assert "2 of 2 answered clips kept" in proc.stdout and "2 lines without an answer" in proc.stdout
    strict = run_cli("pseudo-label", str(predictions), "--out", str(out), "--min-confidence", "0.6")
    assert strict.returncode == 0  # our own earlier file: rewritten
    assert [Path(r["path"]).name for r in csv.DictReader(out.open())] == [EXAMPLE.name]
    assert "1 below the threshold" in strict.stdout


def test_bad_predictions_and_options_are_one_line_errors(predictions, tmp_path):
    junk = tmp_path / "junk.jsonl"
    junk.write_text("path,label\nx.mp4,happy\n")
    assert_one_line_error(run_cli("pseudo-label", str(junk), "--out", str(tmp_path / "p.csv")), "line 1")
    assert_one_line_error(run_cli("pseudo-label", str(predictions), "--out", str(tmp_path / "p.csv"),
                                  "--min-confidence", "0"), "--min-confidence")
    foreign = tmp_path / "mine.csv"
    foreign.write_text("my,own,table\n")
    assert_one_line_error(run_cli("pseudo-label", str(predictions), "--out", str(foreign)), "mine.csv")
    assert foreign.read_text() == "my,own,table\n"


def test_selection_and_tradeoff():
    answers = [PseudoLabel("a", "happy", 0.9), PseudoLabel("b", "sad", 0.5), PseudoLabel("c", "worried", 0.95)]
    kept, why = select(answers, 0.6)
    assert [a.path for a in kept] == ["a"]
    assert why == {"below_min_confidence": 1, "label_not_in_fusion_classes": 1}
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.2, 1.0, 200)
    correct = rng.uniform(0, 1, 200) < conf  # surer answers are right more often
    table = threshold_tradeoff(conf.tolist(), correct.tolist(), (0.3, 0.6, 0.9))
    assert [r["keep_rate"] for r in table] == sorted((r["keep_rate"] for r in table), reverse=True)
    assert table[-1]["accuracy_of_kept"] > table[0]["accuracy_of_kept"]
