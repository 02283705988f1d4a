"""Reading the formats users hold, bad input, and the classification task end to end (library level)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.metrics import f1_score

from emollama.evaluate.classification import evaluate_classification
from emollama.evaluate.errors import EvaluationInputError, LabelMismatchError
from emollama.evaluate.metrics import UNPARSED
from emollama.evaluate.readers import normalize_name, parse_openset, read_table


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(tmp_path: Path, name: str, rows: list[dict]) -> Path:
    return write(tmp_path, name, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def test_emotion_llama_list_with_placeholder_valence(tmp_path) -> None:
    t = read_table(
        write(tmp_path, "t.txt", "s1 125 sad -10\ns2 40 happy 1.25\ns3 99 angry\n"), role="references"
    )
    assert t.format == "emotion-llama-list"
    assert [(r.name, r.label, r.valence) for r in t.records.values()] == [
        ("s1", "sad", None),
        ("s2", "happy", 1.25),
        ("s3", "angry", None),
    ]


def test_emer_v1_and_v2_columns(tmp_path) -> None:
    v1 = write(
        tmp_path, "gt.csv", 'names,emotions,subtitles,reasons\nsample_1,angry,"Go!","He shouts, angry."\n'
    )
    r = read_table(v1)
    assert (r.records["sample_1"].label, r.records["sample_1"].text) == ("angry", "He shouts, angry.")
    v2 = write(tmp_path, "v2.csv", "name,chinese,english\nx,他很生气,He is angry\n")
    assert read_table(v2, lang="en").records["x"].text == "He is angry"
    assert read_table(v2, lang="zh").records["x"].text == "他很生气"


def test_analyzer_jsonl_and_names(tmp_path) -> None:
    p = jsonl(
        tmp_path,
        "p.jsonl",
        [
            {
                "name": "c1",
                "path": "v/c1.mp4",
                "status": "ok",
                "label": "happy",
                "reasoning": "smiles",
                "error": None,
            },
            {
                "name": "c2",
                "path": "v/c2.mp4",
                "status": "error",
                "label": None,
                "reasoning": None,
                "error": "boom",
            },
            {
                "name": None,
                "path": "v/c3.mp4",
                "status": "ok",
                "label": "sad",
                "reasoning": None,
                "error": None,
            },
        ],
    )
    t = read_table(p, role="predictions")
    assert t.records["c1"].text == "smiles" and t.records["c2"].status == "error"
    assert t.records["c2"].error == "boom" and t.records["c3"].label == "sad"
    assert normalize_name(" clip.MP4 ") == "clip"


def test_dfew_csv_semicolon_and_tsv(tmp_path) -> None:
    semi = read_table(write(tmp_path, "d.csv", "name;label\n1;happy\n2;fear\n"))
    assert semi.records["2"].label == "fear"
    assert any("semicolon" in w for w in semi.warnings)
    tsv = read_table(write(tmp_path, "d.tsv", "name\tlabel\n1\thappy\n"))
    assert tsv.format == "tsv" and not tsv.warnings


def test_json_dict_keyed_by_name_and_openset(tmp_path) -> None:
    t = read_table(write(tmp_path, "m.json", json.dumps({"a": {"label": "sad"}, "b": "happy", "c": ["joy"]})))
    assert (t.records["a"].label, t.records["b"].label, t.records["c"].openset) == ("sad", "happy", ("joy",))
    assert parse_openset("['Happy', 'joyful ', 'happy']") == ("happy", "joyful")
    assert parse_openset("angry, dissatisfied；impatient") == ("angry", "dissatisfied", "impatient")
    assert parse_openset("[]") == ()


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("e.csv", "", "is empty"),
        ("e.csv", "  \n\n", "is empty"),
        ("n.csv", "video_id,label\n1,happy\n", "no name column"),
        ("w.csv", "name label\nx happy\n", "no name column"),
        ("j.json", "{not json", "not valid JSON"),
        ("j.jsonl", "garbage\nmore garbage\n", "no line is a JSON object"),
    ],
)
def test_bad_files_raise_clear_errors(tmp_path, name: str, text: str, message: str) -> None:
    with pytest.raises(EvaluationInputError, match=message):
        read_table(write(tmp_path, name, text))


def test_missing_file_and_directory(tmp_path) -> None:
    with pytest.raises(EvaluationInputError, match="does not exist"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(EvaluationInputError, match="is a directory"):
        read_table(tmp_path)


def test_duplicates(tmp_path) -> None:
    same = read_table(write(tmp_path, "r.csv", "name,label\na,happy\na,happy\nb,sad\n"), role="references")
    assert len(same.records) == 2 and any("identical rows merged" in w for w in same.warnings)
    with pytest.raises(EvaluationInputError, match="more than once with different content"):
        read_table(write(tmp_path, "r2.csv", "name,label\na,happy\na,sad\n"), role="references")
    preds = read_table(write(tmp_path, "p.csv", "name,label\na,happy\na,sad\n"), role="predictions")
    assert preds.records["a"].label == "sad" and any("last line wins" in w for w in preds.warnings)


def test_bad_rows_are_skipped_and_listed(tmp_path) -> None:
    t = read_table(write(tmp_path, "r.csv", "name,label\na,happy\nb,sad,extra\n,angry\n"))
    assert list(t.records) == ["a"]
    assert any("field count" in w and "3" in w for w in t.warnings)
    assert any("empty name" in w for w in t.warnings)
    j = read_table(write(tmp_path, "p.jsonl", '{"name": "a", "label": "happy"}\n{"name": "b", "lab\n'))
    assert any("not JSON objects: 2" in w for w in j.warnings)


def _refs_preds(tmp_path):
    refs = write(
        tmp_path,
        "refs.txt",
        "".join(
            f"s{i} 10 {lab} {val}\n"
            for i, (lab, val) in enumerate(
                [("happy", 2), ("happy", 1.5), ("sad", -2), ("sad", -1), ("angry", -2.5), ("neutral", 0)]
            )
        ),
    )
    preds = jsonl(
        tmp_path,
        "preds.jsonl",
        [
            {"name": "s0", "status": "ok", "label": "Happy", "valence": 2.5},
            {
                "name": "s1",
                "status": "ok",
                "label": None,
                "reasoning": "She is not sad; she is joyful.",
                "valence": 1,
            },
            {"name": "s2", "status": "ok", "label": None, "reasoning": "Hard to say.", "valence": -1},
            {"name": "s3", "status": "error", "label": None, "error": "decode failed"},
            {"name": "s4", "status": "ok", "label": "fear", "valence": -2.5},
            {"name": "zz", "status": "ok", "label": "happy"},
        ],
    )  # s5 missing
    return read_table(refs, role="references"), read_table(preds, role="predictions")


def test_classification_strict_and_official(tmp_path) -> None:
    refs, preds = _refs_preds(tmp_path)
    result = evaluate_classification(refs, preds)
    assert result.label_set == "mer6" and result.label_set_auto
    by = {s.name: s for s in result.samples}
    assert [by[n].strict_status for n in ("s0", "s1", "s2", "s3", "s4", "s5")] == [
        "ok",
        "ok",
        "unparseable",
        "error",
        "not_in_set",
        "missing",
    ]
    assert by["s1"].strict == "happy" and by["s2"].strict == UNPARSED
    assert [by[n].official for n in ("s2", "s3", "s4", "s5")] == ["neutral"] * 4
    y_true = [s.reference for s in result.samples]
    labels = list(result.strict.labels)
    assert result.strict.n == 6  # every reference is scored, none dropped
    assert result.strict.weighted_f1 == pytest.approx(
        f1_score(
            y_true, [s.strict for s in result.samples], labels=labels, average="weighted", zero_division=0
        )
    )
    assert result.official.accuracy == pytest.approx(3 / 6)  # s0, s1, and s5 (missing → neutral) = neutral
    assert result.strict.accuracy == pytest.approx(2 / 6)
    # valence pairs: s0, s1, s2, s4 (error line and missing have none)
    v = result.valence
    assert v["n_pairs"] == 4 and v["mse"] == pytest.approx((0.25 + 0.25 + 1 + 0) / 4)
    assert v["multi_strict"] == pytest.approx(result.strict.weighted_f1 - 0.25 * v["mse"])
    text = "\n".join(result.warnings)
    for needle in ("s5", "decode failed", "zz", "s2", "s4"):
        assert needle in text


def test_label_set_checks(tmp_path) -> None:
    refs, preds = _refs_preds(tmp_path)
    assert evaluate_classification(refs, preds, "merr9").label_set == "merr9"
    assert evaluate_classification(refs, preds, "merr9").samples[4].strict == "fear"
    with pytest.raises(LabelMismatchError, match="not in label set"):
        evaluate_classification(
            read_table(write(tmp_path, "r.csv", "name,label\na,contempt\n")), preds, "mer6"
        )
    with pytest.raises(LabelMismatchError, match="unknown reference label"):
        evaluate_classification(read_table(write(tmp_path, "r2.csv", "name,label\na,hangry\n")), preds)
    with pytest.raises(EvaluationInputError, match="no label column"):
        evaluate_classification(read_table(write(tmp_path, "r3.csv", "name,text\na,hello\n")), preds)
    dfew = evaluate_classification(
        read_table(write(tmp_path, "r4.csv", "name,label\ns0,disgust\ns1,happy\n")), preds
    )
    assert dfew.label_set == "dfew7"
