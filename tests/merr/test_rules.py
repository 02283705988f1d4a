"""Pure rules: the AU/label filter, the tone word, the fine-annotation output filter, label input."""

from __future__ import annotations

import pytest

from emollama.errors import UnknownLabelError
from emollama.merr.consistency import check_consistency
from emollama.merr.inputs import ClipItem, apply_labels, read_labels, read_subtitles
from emollama.merr.tone import TONE_WORDS, choose_tone
from emollama.schema import VoiceClues, WordsClues

ZERO = dict.fromkeys(["AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12", "AU14", "AU15",
                      "AU17", "AU20", "AU23", "AU25", "AU26", "AU45"], 0.0)


def aus(**kw: float) -> dict[str, float]:
    return {**ZERO, **kw}


def test_happy_kept_only_with_cheek_and_smile() -> None:
    kept = check_consistency("happy", aus(AU06=1.8, AU12=3.0))
    assert kept.kept and kept.code == "au_support" and kept.matched_aus[:2] == ["AU12", "AU06"]
    smile_only = check_consistency("happy", aus(AU12=3.0))
    assert smile_only.kept  # half of the required AUs, strong enough
    dropped = check_consistency("happy", aus(AU04=2.0, AU15=2.0))
    assert not dropped.kept and dropped.code == "missing_required_aus" and "AU06 0.0" in dropped.reason


def test_weak_prototype_and_threshold() -> None:
    weak = check_consistency("surprise", aus(AU01=1.0, AU02=1.0), min_strength=1.5)
    assert not weak.kept and weak.code == "weak_prototype"
    assert check_consistency("surprise", aus(AU01=2.0, AU02=2.0, AU26=2.0)).kept
    assert not check_consistency("surprise", aus(AU01=0.9, AU02=0.9, AU26=0.9)).kept


def test_the_face_model_keeps_what_landmark_aus_miss_and_still_drops_contradictions() -> None:
    face = {"happy": 0.55, "neutral": 0.25, "sad": 0.1, "angry": 0.05, "surprise": 0.05}
    weak_aus = aus(AU12=0.6)  # a talking mouth hides the smile's AUs
    kept = check_consistency("happy", weak_aus, face_scores=face)
    assert kept.kept and kept.code == "face_model_support" and "#1" in kept.reason
    assert check_consistency("neutral", aus(AU25=1.5), face_scores=face).kept  # ranked #2
    contradiction = check_consistency("sad", weak_aus, face_scores=face, face_rank=2)
    assert not contradiction.kept and contradiction.code == "missing_required_aus"
    assert "happy 0.55" in contradiction.reason
    assert not check_consistency("happy", weak_aus, face_scores=face, face_rank=0).kept  # the AU rule alone
    assert check_consistency("sad", weak_aus, face_scores=face, face_rank=3).kept
    assert not check_consistency("angry", None, face_status="no_face", face_scores=face).kept


def test_the_face_model_can_speak_for_worried_but_not_for_doubt() -> None:
    from types import SimpleNamespace

    from emollama.merr.annotate import face_scores_for
    from emollama.schema import FaceClues

    face = {"fear": 0.6, "neutral": 0.2, "sad": 0.1, "happy": 0.05, "angry": 0.05}
    p = SimpleNamespace(face=SimpleNamespace(expression_probs=face,
                                             clues=FaceClues(status="ok", mean_detection_confidence=0.9)))
    worried = face_scores_for(p, "worried")
    assert worried is not None and worried["worried"] == pytest.approx(0.6)  # fear's mass, as in mer6
    assert check_consistency("worried", aus(AU01=0.5), face_scores=worried).code == "face_model_support"
    assert face_scores_for(p, "doubt") is None  # no label set lets the face model say doubt: AUs decide
    assert face_scores_for(p, "sad") == face
    p.face.clues = FaceClues(status="ok", mean_detection_confidence=0.0)  # never confirmed by the detector
    assert face_scores_for(p, "sad") is None


def test_a_low_keep_rate_is_said_loudly() -> None:
    from types import SimpleNamespace

    from emollama.cli.annotate import low_keep_warning

    def rec(kept: bool, code: str = "au_support") -> SimpleNamespace:
        return SimpleNamespace(filter=SimpleNamespace(kept=kept, code=code))

    few = [rec(True)] + [rec(False, "missing_required_aus")] * 4 + [rec(False, "no_face")] * 2
    warning = low_keep_warning(few)
    assert warning is not None and "1 of 7" in warning and "missing_required_aus 4" in warning
    assert "--keep-dropped" in warning
    assert low_keep_warning([rec(True)] + [rec(False)] * 3) is None  # 25 % kept
    assert low_keep_warning([]) is None


def test_neutral_contempt_no_face_and_unruled_labels() -> None:
    assert check_consistency("neutral", aus(AU45=3.0, AU12=0.5)).code == "neutral_at_rest"
    assert check_consistency("neutral", aus(AU04=2.0)).code == "neutral_but_active"
    assert check_consistency("contempt", aus(), corner_asymmetry=0.05).kept
    assert not check_consistency("contempt", aus(), corner_asymmetry=0.01).kept
    assert check_consistency("angry", None, face_status="no_face").code == "no_face"
    assert check_consistency("calm", aus(AU06=2.0)).code == "no_rule"


def voice(arousal: float, **rel: float) -> VoiceClues:
    return VoiceClues(status="ok", arousal=arousal, speech_duration_s=2.0, relative=rel)


@pytest.mark.parametrize(("v", "polarity", "word"), [
    (voice(0.7), 0.8, "joyful"),
    (voice(0.7, loudness_peak_vs_baseline_db=18), -0.6, "angry"),
    (voice(0.7, loudness_peak_vs_baseline_db=5), -0.6, "fearful"),
    (voice(0.7), None, "shocked"),
    (voice(0.3, loudness_peak_vs_baseline_db=16), None, "negative"),
    (voice(0.3), None, "positive"),
    (voice(0.0), None, "calm"),
    (voice(0.0), 0.5, "positive"),
    (voice(-0.4), -0.5, "sad"),
    (voice(-0.4, pitch_range_st=2, final_pitch_change_st=-6), None, "dismissive"),
    (voice(-0.4), None, "calm"),
    (voice(0.7, final_pitch_change_st=4), 0.9, "doubtful"),
])
def test_tone_rules(v: VoiceClues, polarity: float | None, word: str) -> None:
    words = WordsClues(status="ok", text="x", polarity=polarity) if polarity is not None else None
    tone = choose_tone(v, words)
    assert tone.word == word and tone.word in TONE_WORDS
    assert f"arousal {v.arousal:+.2f}" in tone.evidence


def test_tone_without_speech() -> None:
    tone = choose_tone(VoiceClues(status="silent", note="the audio is silent"))
    assert tone.word is None and "silent" in tone.evidence


def test_unknown_labels_are_listed_together(tmp_path) -> None:
    f = tmp_path / "labels.csv"
    f.write_text("name,label\na.mp4,Happy\nb,furious\nc,zzz\nd,meh\n", encoding="utf-8")
    given = read_labels(f)
    assert given == {"a": "Happy", "b": "furious", "c": "zzz", "d": "meh"}
    items = [ClipItem(n, tmp_path / f"{n}.mp4") for n in "abcd"]
    with pytest.raises(UnknownLabelError) as err:
        apply_labels(items, given, str(f))
    assert "'zzz' (c)" in str(err.value) and "'meh' (d)" in str(err.value) and "furious" not in str(err.value)
    ok = apply_labels(items[:2], {"a": "Happy", "b": "furious"}, str(f))
    assert [(i.label, i.label_given_as) for i in ok] == [("happy", "Happy"), ("angry", "furious")]


def test_subtitle_table_accepts_emotion_llama_and_manifest_layouts(tmp_path) -> None:
    a = tmp_path / "a.csv"
    a.write_text("name,sentence\nx,hello there\n", encoding="utf-8")
    b = tmp_path / "b.csv"
    b.write_text("path,transcript_en\nx.mp4,hi\ny.mp4,\n", encoding="utf-8")
    assert read_subtitles(a) == {"x": "hello there"}
    assert read_subtitles(b) == {"x": "hi"}


def test_voice_head_valence_signs_the_tone_only_when_the_words_do_not() -> None:
    sad_voice = VoiceClues(status="ok", arousal=-0.4, speech_duration_s=2.0, head_valence=-0.6)
    tone = choose_tone(sad_voice)  # Mandarin or no transcript: the voice model's valence decides
    assert tone.word == "sad" and "voice-model valence -0.60" in tone.evidence
    assert choose_tone(sad_voice.model_copy(update={"head_valence": -0.2})).word == "calm"  # too weak
    # -0.45 is what a nearly uniform (unsure) head gives, since most EmoDB classes are unpleasant.
    assert choose_tone(sad_voice.model_copy(update={"head_valence": -0.45})).word == "calm"
    assert choose_tone(sad_voice.model_copy(update={"head_valence": 0.5})).word == "calm"  # no rule: calm
    words = WordsClues(status="ok", text="x", polarity=0.8)
    excited = VoiceClues(status="ok", arousal=0.7, speech_duration_s=2.0, head_valence=-0.7)
    tone = choose_tone(excited, words)  # the words' sign wins over the voice model's
    assert tone.word == "joyful" and "voice-model" not in tone.evidence
