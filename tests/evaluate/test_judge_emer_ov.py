"""Judge parsing and failures, EMER proxies and judge path, MER-OV grouping — hand-checked."""

from __future__ import annotations

import json
import re

import pytest

from emollama.evaluate.emer import evaluate_emer
from emollama.evaluate.judge import Judge, first_integer, parse_score, parse_word_list
from emollama.evaluate.lexicon import CANONICAL_TO_LEVEL1, extract_emotions, group_words, load_wheel
from emollama.evaluate.ov import evaluate_ov
from emollama.evaluate.readers import read_table
from emollama.label_parsing import AMBIGUOUS
from emollama.labels import SYNONYMS
from emollama.llm import CachedBackend, OpenAICompatibleBackend


@pytest.mark.parametrize(
    ("reply", "score", "status"),
    [
        ("7; both see anger", 7, "ok"),
        ("Score: 8/10", 8, "ok"),
        ("10", 10, "ok"),
        ("0; nothing", None, "out_of_range"),
        ("11", None, "out_of_range"),
        ("I can't rate this.", None, "unparseable"),
        ("", None, "unparseable"),
        ("-3", None, "out_of_range"),
    ],
)
def test_parse_score(reply: str, score: int | None, status: str) -> None:
    assert parse_score(reply) == (score, status)


def test_first_integer_and_word_lists() -> None:
    assert first_integer("about 6.5 out of 10") == 6
    assert parse_word_list("Anxious, sad.") == ("anxious", "sad")
    assert parse_word_list("- happy\n- grateful and shy") == ("happy", "grateful", "shy")
    assert parse_word_list("none") == ()


@pytest.mark.parametrize("version", [1, 2])
def test_wheel_is_consistent_with_label_synonyms(version: int) -> None:
    wheel = load_wheel(version)
    assert set(wheel.categories) == set(CANONICAL_TO_LEVEL1.values())
    checked = 0
    for spelling, canonical in SYNONYMS.items():
        entry = wheel.lookup(spelling)
        if entry is None or spelling in AMBIGUOUS:
            continue
        checked += 1
        assert entry.category == CANONICAL_TO_LEVEL1[canonical], spelling
    assert checked > 100


def test_lexicon_extraction_respects_negation_and_chinese() -> None:
    ext = extract_emotions("He is not angry at all. Is he nervous? He is grateful and 非常开心, 有点不满意.")
    assert ext.words == ("grateful", "开心", "不满")
    assert ext.categories == ("happy", "angry")
    assert set(ext.negated) == {"angry", "nervous"}
    g = group_words(["Happy", "joyful", "Relieved", "complaining", "bemused"])
    assert g.groups == {"happy", "relaxed", "dissatisfied", "bemused"} and g.unknown == ("bemused",)


def _files(tmp_path):
    (tmp_path / "r.csv").write_text(
        "names,emotions,reasons\n"
        'a,angry,"He shouts and frowns; he is angry and dissatisfied."\n'
        'b,happy,"She laughs; she is happy and grateful."\n'
        'c,sad,"He speaks slowly with his head down."\n'
        'd,worried,"She paces; she is worried."\n',
        encoding="utf-8",
    )
    rows = [
        {"name": "a", "status": "ok", "reasoning": "He yells. He is furious, not happy."},
        {"name": "b", "status": "ok", "reasoning": "She is sad."},
        {"name": "c", "status": "ok", "reasoning": "He is sad."},
        {"name": "d", "status": "error", "error": "boom"},
    ]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return read_table(tmp_path / "r.csv", role="references"), read_table(tmp_path / "p.jsonl")


def test_emer_proxies_hand_checked(tmp_path) -> None:
    refs, preds = _files(tmp_path)
    result = evaluate_emer(refs, preds)
    by = {s.name: s for s in result.samples}
    assert by["a"].emotion_word_jaccard == 1.0 and by["a"].label_hit == 1  # {angry} vs {angry}
    assert by["b"].emotion_word_jaccard == 0.0 and by["b"].label_hit == 0
    assert by["c"].emotion_word_jaccard is None and by["c"].label_hit == 1  # reference has no wheel word
    assert not by["d"].has_prediction and by["d"].emotion_word_jaccard is None
    block = result.summary["proxy_emotion_words"]
    assert block["mean"] == pytest.approx(0.5) and block["n_scored"] == 2 and block["n_candidates"] == 3
    assert block["label_hit_rate"]["mean"] == pytest.approx(2 / 3)
    assert result.summary["judge_clue_overlap"]["status"] == "skipped"
    assert any("d: boom" in w for w in result.warnings)


def test_emer_judge_over_http_with_failures(tmp_path, server) -> None:
    refs, preds = _files(tmp_path)

    def reply(body: dict) -> str:
        prompt = body["messages"][-1]["content"]
        if "name the emotional state" in prompt:
            return "angry" if "shouts" in prompt or "yells" in prompt else "happy, grateful"
        if "He speaks slowly" in prompt:
            return "I refuse to give a number."  # unparseable → no score
        if "She laughs" in prompt and "Reference account" in prompt:
            return "3; different emotions"
        return "9; same"

    server.script = [("reply", reply)]
    backend = OpenAICompatibleBackend(server.url, "judge-x", max_retries=0, sleep=lambda s: None)
    judge = Judge(CachedBackend(backend, tmp_path / "cache"), max_workers=2)
    result = evaluate_emer(refs, preds, judge=judge)
    by = {s.name: s for s in result.samples}
    assert (by["a"].clue_overlap, by["b"].clue_overlap, by["c"].clue_overlap) == (9, 3, None)
    assert by["c"].clue_status == "unparseable"
    clue = result.summary["judge_clue_overlap"]
    assert clue["mean"] == pytest.approx(6.0) and clue["n_scored"] == 2 and clue["not_scored"] == 1
    assert result.summary["judge"]["reported_models"] == ["judge-test-0001"]
    calls = [c for o in result.judge_outcomes for c in o.calls]
    assert all(c.reply is not None and c.model == "judge-test-0001" for c in calls)
    n_requests = len(server.requests)
    assert all(r["body"]["temperature"] == 0.0 for r in server.requests)
    # Re-scoring from cache: no new request, same numbers.
    offline = Judge(CachedBackend(backend, tmp_path / "cache", offline=True))
    again = evaluate_emer(refs, preds, judge=offline)
    assert len(server.requests) == n_requests
    assert again.summary["judge_clue_overlap"]["mean"] == clue["mean"]


def test_emer_judge_down_never_becomes_a_score(tmp_path, server) -> None:
    refs, preds = _files(tmp_path)
    server.script = [("status", 503)]
    backend = OpenAICompatibleBackend(server.url, "judge-x", max_retries=1, sleep=lambda s: None)
    result = evaluate_emer(refs, preds, judge=Judge(CachedBackend(backend, tmp_path / "c")))
    for key in ("judge_clue_overlap", "judge_label_overlap"):
        assert result.summary[key]["mean"] is None and result.summary[key]["n_scored"] == 0
    assert all(
        s.clue_overlap is None and s.clue_status == "error" for s in result.samples if s.has_prediction
    )
    assert any("got no score from the judge" in w and "HTTP 503" in w for w in result.warnings)
    assert not list((tmp_path / "c").rglob("*.json"))


def test_ov_hand_checked(tmp_path) -> None:
    (tmp_path / "g.csv").write_text(
        "name,openset\n1,\"['happy', 'grateful', 'shy']\"\n2,\"['angry']\"\n3,\"['sad']\"\n4,[]\n",
        encoding="utf-8",
    )
    (tmp_path / "p.jsonl").write_text(
        '{"name": "1", "openset": ["joyful", "thankful", "excited", "bemused"]}\n'
        '{"name": "2", "text": "He is furious and not sad."}\n',
        encoding="utf-8",
    )
    result = evaluate_ov(read_table(tmp_path / "g.csv", role="references"), read_table(tmp_path / "p.jsonl"))
    by = {s.name: s for s in result.samples}
    # 1: G={happy, grateful, shy}, P={happy, grateful, excited, bemused} → acc 2/4, rec 2/3
    assert (by["1"].accuracy, by["1"].recall) == (0.5, pytest.approx(2 / 3))
    # 2: text → {furious} → angry group; "sad" negated → acc 1, rec 1
    assert (by["2"].accuracy, by["2"].recall) == (1.0, 1.0)
    # 3: missing prediction → 0, 0 ; 4: empty reference → excluded
    assert (by["3"].accuracy, by["3"].recall, by["3"].status) == (0.0, 0.0, "missing")
    assert "4" not in by
    g = result.summary["synonym_groups"]
    assert g["accuracy"] == pytest.approx(1.5 / 3) and g["recall"] == pytest.approx((2 / 3 + 1) / 3)
    assert g["mean"] == pytest.approx((g["accuracy"] + g["recall"]) / 2)
    assert result.summary["unknown_words"] == {"bemused": 1}
    assert any(re.search(r"no emotion words and are excluded: 4", w) for w in result.warnings)


def test_ov_judge_extractor(tmp_path, server) -> None:
    (tmp_path / "g.csv").write_text("name,openset\n1,\"['worried']\"\n", encoding="utf-8")
    (tmp_path / "p.jsonl").write_text('{"name": "1", "text": "She keeps pacing around."}\n', encoding="utf-8")
    server.script = [("reply", "Anxious, restless")]
    backend = OpenAICompatibleBackend(server.url, "judge-x", sleep=lambda s: None)
    result = evaluate_ov(
        read_table(tmp_path / "g.csv"),
        read_table(tmp_path / "p.jsonl"),
        extractor="judge",
        judge=Judge(CachedBackend(backend, tmp_path / "c")),
    )
    s = result.samples[0]
    assert s.predicted_words == ("anxious", "restless")
    assert (s.accuracy, s.recall) == (0.5, 1.0)  # anxious → worried group; restless unknown
    assert len(result.judge_calls) == 1 and result.judge_calls[0].model == "judge-test-0001"
