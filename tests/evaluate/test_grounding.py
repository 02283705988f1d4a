"""The grounding check: hand-written paragraphs against hand-written clues with known answers."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from emollama.cli import app, main
from emollama.evaluate.grounding import check_grounding, cited_cues, grounding_summary
from emollama.recognize.reasoning import write_reasoning
from emollama.schema import Clues, FaceClues, ModalityScores, PeakFrame, VoiceClues, WordsClues

AUS = ["AU04", "AU06", "AU09", "AU12", "AU25", "AU45"]


def _clues(*, face: str = "ok", voice: str = "ok", words: str = "ok", rate: float = 1.3) -> Clues:
    peak = {"AU04": 0.1, "AU06": 1.8, "AU09": 0.2, "AU12": 2.8, "AU25": 1.05, "AU45": 0.0}
    face_clues = FaceClues(status=face)
    if face == "ok":
        face_clues = FaceClues(
            status="ok", n_frames=3, n_frames_with_face=3, coverage=1.0, au_names=AUS,
            au_intensity=[[0.0, 0.2, 0.1, 0.3, 0.0, 0.0], [0.1, 1.8, 0.2, 2.8, 1.05, 0.0], [None] * 6],
            peak=PeakFrame(index=1, time_s=0.8, total_intensity=5.9, au=peak),
            expression_clip={"happy": 0.82, "neutral": 0.1, "sad": 0.08})
    voice_clues = VoiceClues(status=voice)
    if voice == "ok":
        voice_clues = VoiceClues(
            status="ok", speech_duration_s=2.04, arousal=0.3, head_valence=0.7,
            prosody={"syllable_rate_per_s": 4.0 * rate, "hnr_db": 12.0},
            relative={"pitch_level_vs_norm_st": 0.5, "pitch_range_st": 9.2, "loudness_peak_vs_baseline_db": 18.4,
                      "rate_vs_typical": rate, "final_pitch_change_st": -1.0})
    words_clues = WordsClues(status=words)
    if words == "ok":
        words_clues = WordsClues(status="ok", source="subtitle", text="Kids are talking by the door.")
    return Clues(face=face_clues, voice=voice_clues, words=words_clues)


CLUES_STYLE = (
    "At 0.8 s, the most expressive moment of the face, the corners of the mouth pull up clearly (AU12 2.8); "
    "the cheeks push up towards the eyes moderately (AU06 1.8); the lips part slightly (AU25 1.0). "
    "The facial-expression model reads the face as happy (0.82). AU06, AU12 are typical of happy. "
    "The voice (2.0 s of speech) sounds energetic: the pitch range is wide, animated (9 semitones); "
    "loudness bursts 18 dB above the calm parts of the speech; the speech is fast (about 5.2 syllables per second); "
    "the voice model hears it as pleasant (valence +0.70). "
    "In the subtitle, the person says \u201cKids are talking by the door.\u201d; the wording suggests neutral (0.71). "
    "Overall the person most likely feels happy (0.90), supported by the face, voice.")


def _verdicts(report, verdict: str) -> list[tuple[str, str]]:
    return [(c.cue.type, c.cue.key) for c in report.checks if c.verdict == verdict]


def test_clues_tier_style_paragraph_is_grounded() -> None:
    report = check_grounding(CLUES_STYLE, _clues())
    assert report.status == "grounded", [c.to_dict() for c in report.checks if c.verdict != "matched"]
    matched = set(_verdicts(report, "matched"))
    assert {("au", "AU12"), ("au", "AU06"), ("au", "AU25"), ("quote", "quote"), ("voice", "rate"),
            ("voice", "pitch_range"), ("voice", "loudness"), ("voice", "arousal"), ("voice", "valence"),
            ("model", "face_expression"), ("presence", "voice")} <= matched
    # the phrase and the code of one AU in one sentence count once (the code, with its intensity)
    assert [c.cue.value for c in report.checks if c.cue.key == "AU12"] == ["2.8", None]


def test_dict_clues_work_like_the_model() -> None:
    assert check_grounding(CLUES_STYLE, _clues().model_dump()).status == "grounded"


def test_unmeasured_au_is_contradicted() -> None:
    report = check_grounding("The brows are furrowed (AU04) and the nose wrinkles.", _clues())
    assert report.status == "contradicted"
    assert ("au", "AU04") in _verdicts(report, "contradicted") and ("au", "AU09") in _verdicts(report, "contradicted")
    # a wrong intensity for a present AU is contradicted too; an AU the detector lacks is unverifiable
    assert check_grounding("A broad smile (AU12 4.5).", _clues()).status == "contradicted"
    assert check_grounding("AU43 closes the eyes.", _clues()).status == "unverified"


def test_negated_au_and_resting_face() -> None:
    assert check_grounding("There is no frown on the face.", _clues()).status == "grounded"
    assert check_grounding("She is not smiling at all.", _clues()).status == "contradicted"
    assert check_grounding("The face stays close to its resting state.", _clues()).status == "contradicted"


def test_made_up_quote_is_contradicted() -> None:
    report = check_grounding("She says \u201cI hate this place\u201d, which sounds bitter.", _clues())
    assert ("quote", "quote") in _verdicts(report, "contradicted")
    # case, punctuation and straight quotes do not matter; the quoted words are not read as claims
    ok = check_grounding('The person says "kids are TALKING, by the door".', _clues())
    assert ok.status == "grounded"
    assert not [c for c in cited_cues('He says "my voice is loud and I smile"') if c.type in ("au", "voice")]


def test_fast_speech_on_slow_rate_is_contradicted() -> None:
    report = check_grounding("The person speaks quickly, in a rush.", _clues(rate=0.6))
    assert ("voice", "rate") in _verdicts(report, "contradicted")
    assert check_grounding("The speech is slow (about 2.4 syllables per second).", _clues(rate=0.6)).grounded
    # in between the describe thresholds, neither word holds
    assert check_grounding("The speech is fast.", _clues(rate=1.1)).status == "contradicted"


def test_voice_claim_on_image_is_contradicted() -> None:
    image = _clues(voice="absent", words="no_text")
    report = check_grounding("Her voice trembles and the pitch is high.", image)
    assert report.status == "contradicted"
    assert ("presence", "voice") in _verdicts(report, "contradicted")
    assert ("voice", "pitch_level") in _verdicts(report, "contradicted")
    assert check_grounding("The clip has no audio track. No words were available.", image).grounded


def test_face_claim_without_face_is_contradicted() -> None:
    no_face = _clues(face="no_face")
    assert check_grounding("The corners of the mouth pull up (AU12 2.8).", no_face).status == "contradicted"
    assert check_grounding("No face could be found in the video.", no_face).grounded
    assert check_grounding("No face could be found in the video.", _clues()).status == "contradicted"


def test_no_checkable_cue_is_uncited() -> None:
    report = check_grounding("Overall the person most likely feels happy, which fits the situation.", _clues())
    assert report.status == "uncited" and not report.checks


def test_summary_counts() -> None:
    clues = _clues()
    summary = grounding_summary([(CLUES_STYLE, clues), ("Nothing to check here.", clues),
                                 ("A frown (AU04 2.0) shows.", clues), ("AU43 closes the eyes.", clues)])
    assert summary["n"] == 4
    assert summary["share_grounded"] == 0.25 and summary["share_uncited"] == 0.25
    assert summary["share_contradicted"] == 0.25 and summary["share_unverified"] == 0.25
    assert summary["by_type"]["au"]["contradicted"] == 1 and summary["by_type"]["au"]["unverifiable"] == 1
    assert summary["contradicted_keys"] == {"au:AU04": 1}


def test_real_clues_tier_reasoning_is_grounded() -> None:
    """write_reasoning itself, on full, image-like and face-less clues."""
    scores = {"happy": 0.8, "neutral": 0.15, "sad": 0.05}
    for clues in (_clues(), _clues(voice="absent", words="no_text"), _clues(face="no_face"),
                  _clues(voice="no_speech", words="no_text", rate=0.6)):
        used = [ModalityScores(modality=m, scores=scores, weight=1.0, source="test")
                for m in ("face", "voice", "words") if getattr(clues, m).status == "ok"]
        text = write_reasoning(clues, scores, "happy", used)
        report = check_grounding(text, clues)
        assert report.grounded, (text, [c.to_dict() for c in report.checks if c.verdict != "matched"])


def test_cli_grounding(tmp_path, monkeypatch, capsys) -> None:
    clues = _clues().model_dump()
    result = {"tier": "llm", "reasoning": "A frown (AU04 2.0) shows.", "clues": clues, "media": {"path": "b.mp4"}}
    lines = [
        {"name": "a", "status": "ok", "result": {"tier": "clues", "reasoning": CLUES_STYLE, "clues": clues}},
        {"name": "broken", "status": "error", "error": "moov atom not found", "result": None},
        {"name": "b", "status": "ok", "result": result},
    ]
    src = tmp_path / "results.jsonl"
    src.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    out = tmp_path / "grounding.json"
    res = CliRunner().invoke(app, ["evaluate", "grounding", str(src), "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "grounding (2 paragraphs)" in res.output and "moov atom" in res.output
    report = json.loads(out.read_text())
    assert report["by_tier"]["clues"]["share_grounded"] == 1.0
    assert report["by_tier"]["llm"]["share_contradicted"] == 1.0
    assert [p["status"] for p in report["paragraphs"]] == ["grounded", "contradicted"]
    # rerunning may replace its own report, never another file
    assert CliRunner().invoke(app, ["evaluate", "grounding", str(src), "--json", str(out)]).exit_code == 0
    other = tmp_path / "other.json"
    other.write_text("{}")
    for args, message in (([str(src), "--json", str(other)], "not written by this command"),
                          ([str(tmp_path / "none.jsonl")], "no such file")):
        monkeypatch.setattr(sys, "argv", ["emollama", "evaluate", "grounding", *args])
        with pytest.raises(SystemExit) as exc:
            main()
        assert exc.value.code == 2 and message in capsys.readouterr().err
