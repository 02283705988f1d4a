from __future__ import annotations

import pytest

from emollama.errors import UnknownLabelError, UnknownLabelSetError
from emollama.labels import LABEL_SETS, get_label_set, normalize_label, project_scores
from emollama.recognize.au_rules import au_emotion_scores
from emollama.recognize.fusion import ModalityEvidence, face_reliability, fuse, words_reliability


def test_label_sets_and_errors():
    assert get_label_set("MERR9").labels[:3] == ("neutral", "happy", "angry")
    assert len(LABEL_SETS["merr9"]) == 9 and len(LABEL_SETS["mer6"]) == 6
    with pytest.raises(UnknownLabelSetError, match="merr9"):
        get_label_set("plutchik8")


def test_synonyms_and_unknown_labels():
    assert normalize_label("Joy") == "happy"
    assert normalize_label("anger") == "angry"
    assert normalize_label("难过") == "sad"
    assert normalize_label("calm") == "calm"  # kept distinct, never silently neutral
    with pytest.raises(UnknownLabelError):
        normalize_label("hangry")


def test_projection_routes_missing_labels_by_the_table():
    mer6 = project_scores({"fear": 0.6, "happy": 0.4}, "mer6")
    assert mer6["worried"] == pytest.approx(0.6) and mer6["happy"] == pytest.approx(0.4)
    merr9 = project_scores({"disgust": 1.0}, "merr9")
    assert merr9["contempt"] == pytest.approx(0.6) and merr9["angry"] == pytest.approx(0.4)
    assert sum(project_scores({"sad": 0.2, "happy": 0.8}, "dfew7").values()) == pytest.approx(1.0)


def _face(label: str, rel: float = 1.0) -> ModalityEvidence:
    probs = {k: 0.02 for k in ("neutral", "happy", "sad", "angry", "surprise", "fear", "disgust")}
    probs[label] = 0.88
    return ModalityEvidence("face", probs, rel, "test")


def _words(label: str, rel: float = 1.0) -> ModalityEvidence:
    probs = {k: 0.01 for k in ("neutral", "happy", "sad", "angry", "worried", "doubt")}
    probs[label] = 0.95
    return ModalityEvidence("words", probs, rel, "test")


def test_missing_modality_drops_out_cleanly():
    alone, per = fuse([_face("sad")], "merr9")
    assert max(alone, key=alone.get) == "sad"
    assert [m.modality for m in per] == ["face"]
    assert sum(alone.values()) == pytest.approx(1.0, abs=1e-3)


def test_unreliable_modality_loses_weight():
    conflict_reliable, _ = fuse([_face("sad", rel=1.0), _words("happy", rel=1.0)], "merr9")
    conflict_weak_face, per = fuse([_face("sad", rel=0.1), _words("happy", rel=1.0)], "merr9")
    assert conflict_weak_face["happy"] > conflict_reliable["happy"]
    assert max(conflict_weak_face, key=conflict_weak_face.get) == "happy"
    assert per[0].weight < per[1].weight


def test_zero_reliability_equals_absence():
    with_zero, _ = fuse([_face("sad"), _words("happy", rel=0.0)], "merr9")
    without, _ = fuse([_face("sad")], "merr9")
    assert with_zero == without


def test_reliability_signals():
    assert face_reliability(1.0, 0.9) > face_reliability(0.2, 0.9) > 0
    assert words_reliability("subtitle", "I am very happy today", None) == 1.0
    sentence = "I am very happy today"
    assert words_reliability("asr", sentence, 0.4) < words_reliability("asr", sentence, 0.9)
    assert words_reliability("asr", "ok", 0.9) < words_reliability("asr", "I am very happy today", 0.9)


def test_au_rules_read_the_prototypes():
    smile = au_emotion_scores({"AU06": 3.0, "AU12": 4.0})
    assert max(smile, key=smile.get) == "happy"
    frown = au_emotion_scores({"AU01": 3.0, "AU04": 2.0, "AU15": 3.0})
    assert max(frown, key=frown.get) == "sad"
    rest = au_emotion_scores({"AU12": 0.2})
    assert max(rest, key=rest.get) == "neutral"
    smirk = au_emotion_scores({"AU12": 0.5}, corner_asymmetry=0.12)
    assert max(smirk, key=smirk.get) == "contempt"


def test_a_modality_has_no_vote_on_labels_it_cannot_express():
    """The face network has no 'doubt': it must not push doubt down when the words say doubt."""
    face = ModalityEvidence("face", {"neutral": 0.5, "happy": 0.1, "sad": 0.1, "angry": 0.1, "surprise": 0.1,
                                     "fear": 0.05, "disgust": 0.05}, 1.0, "test")
    fused, per = fuse([face, _words("doubt")], "merr9")
    assert max(fused, key=fused.get) == "doubt"
    assert per[0].scores["doubt"] == 0.0 and per[0].scores["worried"] == 0.0  # no opinion, shown as 0
    assert sum(per[0].scores.values()) == pytest.approx(1.0, abs=1e-3)


def test_a_label_no_modality_favours_cannot_win_by_abstentions():
    """Both modalities say sad; only the words can express doubt, and they rate it low."""
    face = ModalityEvidence("face", {"sad": 0.88, "neutral": 0.06, "happy": 0.06}, 1.0, "test")
    fused, _ = fuse([face, _words("sad")], "merr9")
    assert max(fused, key=fused.get) == "sad"
    assert fused["doubt"] < fused["sad"] / 10


def test_labels_no_modality_can_express_get_zero():
    fused, _ = fuse([_face("happy")], "merr9")  # the face network has neither worried nor doubt
    assert fused["worried"] == 0.0 and fused["doubt"] == 0.0


def test_no_weight_at_all_gives_uniform_scores():
    fused, per = fuse([_face("happy", rel=0.0)], "merr9")
    assert len(set(fused.values())) == 1 and per[0].weight == 0.0


def test_voice_head_certainty_is_damped():
    voice = ModalityEvidence("voice", {"sad": 0.999, "neutral": 0.0005, "happy": 0.0005}, 1.0, "test")
    _, per = fuse([voice], "merr9")
    assert per[0].scores["sad"] < 0.7 and per[0].scores["neutral"] > 0.1
