"""``evaluate ov --synonyms``: the MER2024 MER-OV scorer's definition on a cache written in its format."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from emollama.cli import app, main
from emollama.evaluate.errors import EvaluationInputError
from emollama.evaluate.ov_official import (
    evaluate_ov_official,
    load_synonym_cache,
    official_openset,
    parse_synonym_reply,
    synonym_map,
)
from emollama.evaluate.readers import read_table

runner = CliRunner()

REFS = (
    "name,openset\n"
    "s1,\"['Happy', 'relaxed']\"\n"
    "s2,\"['angry', 'dissatisfied', 'impatient']\"\n"
    "s3,\"['worried']\"\n"
    "s4,\"['sad', 'lonely']\"\n"
    "s5,\"['surprised']\"\n"
)
PREDS = (
    "name,openset\n"
    "s1,\"['joyful', 'relax']\"\n"
    "s2,\"['annoyed']\"\n"
    "s3,[]\n"
    "s4,\"[\"\"don't believe\"\", 'sad']\"\n"
    "s5,\"['surprised']\"\n"
)
#: One GPT reply per sample, as the official cache stores it (a NumPy string). s5 has no entry;
#: s9 names no reference. s4's reply quotes "don't believe", which the official split cuts at the
#: apostrophe into the group ['don', 't believe'].
REPLIES = {
    "s1": "[['happy', 'joyful'], ['relaxed', 'relax']]",
    "s2": "[['angry', 'annoyed'], ['dissatisfied'], ['impatient']]",
    "s3": "[['worried']]",
    "s4": "[[\"don't believe\"], ['sad'], ['lonely']]",
    "s9": "[['calm']]",
}
# By hand, after mapping (accuracy = |G∩P|/|P|, recall = |G∩P|/|G|):
#   s1 G={happy, relaxed} P={happy, relaxed}            → 1, 1
#   s2 G={angry, dissatisfied, impatient} P={angry}     → 1, 1/3
#   s3 P empty                                          → 0, 0
#   s4 G={sad, lonely} P={don, sad}                     → 1/2, 1/2
# accuracy 2.5/4 = 0.625, recall (11/6)/4 = 11/24, mean 13/24.
ACCURACY, RECALL, MEAN = 0.625, 11 / 24, 13 / 24


def _write_inputs(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "refs.csv").write_text(REFS, encoding="utf-8")
    (tmp_path / "preds.csv").write_text(PREDS, encoding="utf-8")
    return tmp_path / "refs.csv", tmp_path / "preds.csv"


def _npy_bytes(value: object, tmp_path: Path) -> bytes:
    path = tmp_path / "one.npy"
    np.save(path, value)  # what the official generator does with each GPT reply
    return path.read_bytes()


def _zip_cache(tmp_path: Path) -> Path:
    path = tmp_path / "openset-synonym.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, reply in REPLIES.items():
            archive.writestr(f"openset-synonym/{name}.npy", _npy_bytes(reply, tmp_path))
        archive.writestr("__MACOSX/openset-synonym/._s1.npy", b"resource fork")
    return path


def test_official_splitting_rules() -> None:
    assert official_openset("['Happy', 'relaxed']") == ["Happy", "relaxed"]
    assert official_openset("[\"don't believe\", 'doubt']") == ["don", "t believe", "doubt"]
    assert official_openset("[]") == [] and official_openset("") == [] and official_openset(None) == []
    assert official_openset("happy, sad") is None  # the official reader cannot read this form
    assert parse_synonym_reply("[['a', 'b'], ['c']]") == [["a", "b"], ["c"]]
    # a word in two groups takes the later group's head, as the official dictionary does
    assert synonym_map([["a", "b"], ["c", "a"]]) == {"a": "c", "b": "a", "c": "c"}


def test_zip_cache_hand_computed(tmp_path: Path) -> None:
    ref, pred = _write_inputs(tmp_path)
    cache = load_synonym_cache(_zip_cache(tmp_path))
    result = evaluate_ov_official(read_table(ref, role="references"), read_table(pred, role="predictions"), cache)
    by = {s.name: s for s in result.samples}
    assert sorted(by) == ["s1", "s2", "s3", "s4"]
    assert by["s4"].predicted_groups == ("don", "sad") and by["s3"].status == "empty_prediction"
    g = result.summary["synonym_groups"]
    assert g["accuracy"] == pytest.approx(ACCURACY, abs=1e-9)
    assert g["recall"] == pytest.approx(RECALL, abs=1e-9)
    assert g["mean"] == pytest.approx(MEAN, abs=1e-9)
    provenance = result.summary["synonym_cache"]
    assert provenance["entries"] == 5 and provenance["references_without_entry"] == ["s5"]
    assert provenance["entries_without_reference"] == ["s9"]
    assert any("no synonym-cache entry" in w and "s5" in w for w in result.warnings)


def test_folder_cache_with_table_entry_through_cli(tmp_path: Path) -> None:
    ref, pred = _write_inputs(tmp_path)
    folder = tmp_path / "cache"
    folder.mkdir()
    for name, reply in REPLIES.items():
        np.save(folder / f"{name}.npy", reply)
    # s1 as a 2-d table of words (one row per group, '' padding) gives the same groups
    np.save(folder / "s1.npy", np.array([["happy", "joyful"], ["relaxed", "relax"]]))
    out = tmp_path / "out"
    res = runner.invoke(
        app, ["evaluate", "ov", "--pred", str(pred), "--ref", str(ref), "--out", str(out), "--synonyms", str(folder)]
    )
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["grouping"] == "mer2024-cache" and metrics["n_scored"] == 4
    assert metrics["synonym_groups"]["mean"] == pytest.approx(MEAN, abs=1e-9)
    assert "exactly as the MER2024 scorer" in (out / "report.md").read_text(encoding="utf-8")


def test_cache_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    ref, pred = _write_inputs(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    np.save(bad / "s1.npy", np.array([["a"], ["b", "c"]], dtype=object), allow_pickle=True)
    with pytest.raises(EvaluationInputError, match="pickled objects are not loaded"):
        load_synonym_cache(bad)
    with pytest.raises(EvaluationInputError, match="no such file"):
        load_synonym_cache(tmp_path / "nowhere.zip")
    argv = ["emollama", "evaluate", "ov", "--pred", str(pred), "--ref", str(ref), "--out", str(tmp_path / "o")]
    monkeypatch.setattr("sys.argv", [*argv, "--synonyms", str(tmp_path / "nowhere")])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2 and "no such file or folder" in capsys.readouterr().err
