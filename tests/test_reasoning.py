"""The explanation is written from the measurements: different evidence, different paragraph."""

from __future__ import annotations

from emollama.recognize.reasoning import write_reasoning
from emollama.schema import Clues, FaceClues, ModalityScores, PeakFrame, SpeechSegment, VoiceClues, WordsClues


def clues(au: dict[str, float], t: float, text: str) -> Clues:
    face = FaceClues(status="ok", n_frames=10, n_frames_with_face=10, coverage=1.0, mean_detection_confidence=0.9,
                     peak=PeakFrame(index=3, time_s=t, total_intensity=sum(au.values()), au=au),
                     expression_mean={"happy": 0.7, "neutral": 0.3})
    voice = VoiceClues(status="ok", speech_segments=[SpeechSegment(start_s=0, end_s=2)], speech_duration_s=2.0,
                       vad_confidence=0.9, relative={"pitch_range_st": 9.0}, arousal=0.6)
    words = WordsClues(status="ok", source="subtitle", text=text)
    return Clues(face=face, voice=voice, words=words)


def test_reasoning_cites_the_measured_clues():
    scores = {"happy": 0.8, "sad": 0.2}
    ms = [ModalityScores(modality="face", scores=scores, weight=0.9, source="t")]
    text = write_reasoning(clues({"AU12": 3.1, "AU06": 2.0}, 1.4, "What a day!"), scores, "happy", ms)
    assert "1.4 s" in text and "AU12 3.1" in text and "What a day!" in text
    assert text.rstrip().endswith(".") and "happy (0.80)" in text


def test_reasoning_changes_with_the_evidence():
    scores = {"happy": 0.8, "sad": 0.2}
    a = write_reasoning(clues({"AU12": 3.1}, 1.4, "What a day!"), scores, "happy", [])
    sad = {"sad": 0.7, "happy": 0.3}
    b = write_reasoning(clues({"AU15": 2.2, "AU01": 1.8}, 2.7, "Leave me alone."), sad, "sad", [])
    assert a != b
    assert "2.7 s" in b and "AU15" in b and "turn down" in b and "sad (0.70)" in b


def test_missing_modalities_are_stated():
    c = Clues(face=FaceClues(status="no_face"), voice=VoiceClues(status="absent"),
              words=WordsClues(status="no_text"))
    text = write_reasoning(c, {"neutral": 1.0}, None, [])
    assert "No face" in text and "no audio track" in text and "no emotion is concluded" in text


def test_voice_model_valence_is_cited_only_when_clear():
    scores = {"sad": 0.7, "happy": 0.3}
    c = clues({"AU15": 2.2}, 2.0, "...")
    c.voice.head_valence = -0.62
    assert "the voice model hears it as unpleasant (valence -0.62)" in write_reasoning(c, scores, "sad", [])
    c.voice.head_valence = 0.1
    assert "voice model" not in write_reasoning(c, scores, "sad", [])
