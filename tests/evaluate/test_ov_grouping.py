"""MER-OV grouping: wheel v2 (word forms, hedges, more words) against the strict v1 table it extends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emollama.cli import app
from emollama.evaluate.lexicon import group_words, load_wheel

runner = CliRunner()


@pytest.mark.parametrize(
    ("word", "group"),
    [
        # the words the issue found matched only literally under v1
        ("concern", "worried"),
        ("pain", "hurt"),
        ("accusation", "dissatisfied"),
        ("relax", "relaxed"),
        ("pressure", "nervous"),
        ("blame", "dissatisfied"),
        ("friendly", "friendly"),
        ("mad", "angry"),
        # word forms of listed words
        ("relaxing", "relaxed"),
        ("worries", "worried"),
        ("shock", "surprised"),
        ("upsetting", "sad"),
        ("Heaviness", "sad"),
        # hedges and framing words
        ("slightly anxious", "worried"),
        ("a sense of happiness", "happy"),
        ("positive emotions", "positive"),
        ("angry/displeased", "angry"),
        ("looking forward to", "hopeful"),
    ],
)
def test_v2_groups_forms_and_hedges(word: str, group: str) -> None:
    entry = load_wheel(2).lookup(word)
    assert entry is not None and entry.group == group, word


def test_v2_keeps_opposites_apart_and_v1_unchanged() -> None:
    v2 = load_wheel(2)
    assert v2.lookup("hopeless").group == "helpless" and v2.lookup("hopeful").group == "hopeful"
    assert v2.lookup("careless") is None and v2.lookup("fearless") is None and v2.lookup("bemused") is None
    v1 = load_wheel(1)
    assert v1.lookup("relax") is None and v1.lookup("concern") is None  # the strict table stays strict
    assert set(v1.entries) < set(v2.entries)
    assert all(v2.entries[w].group == e.group for w, e in v1.entries.items())  # v1 words keep their groups
    grouped = group_words(["Relax", "concern", "slightly anxious", "bemused"], v2)
    assert grouped.groups == {"relaxed", "worried", "bemused"} and grouped.unknown == ("bemused",)


def test_cli_grouping_option(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text("name,openset\na,\"['relaxed', 'worried']\"\n", encoding="utf-8")
    (tmp_path / "p.csv").write_text("name,openset\na,\"['relax', 'concern', 'mad']\"\n", encoding="utf-8")
    means = {}
    for grouping in ("wheel-v1", "wheel-v2"):
        out = tmp_path / grouping
        res = runner.invoke(
            app,
            ["evaluate", "ov", "--pred", str(tmp_path / "p.csv"), "--ref", str(tmp_path / "r.csv"), "--out", str(out),
             "--grouping", grouping],
        )
        assert res.exit_code == 0, res.output
        metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
        assert metrics["grouping"] == grouping
        means[grouping] = (metrics["synonym_groups"]["accuracy"], metrics["synonym_groups"]["recall"])
    # v1: nothing matches literally; v2: relax→relaxed, concern→worried hit, mad→angry does not
    assert means == {"wheel-v1": (0.0, 0.0), "wheel-v2": (pytest.approx(2 / 3), 1.0)}
