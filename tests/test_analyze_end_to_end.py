"""The whole clues tier on real media: the bundled clip, degraded inputs, the shared MER clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emollama.schema import SCHEMA_VERSION, AnalysisResult
from tests.clips import EXAMPLE, example_audio, example_frames, write_video

pytestmark = pytest.mark.slow


def test_example_clip_is_happy_with_grounded_reasoning(example_result: AnalysisResult):
    r = example_result
    assert r.label == "happy"
    assert r.scores["happy"] == max(r.scores.values())
    face = r.clues.face
    assert face.status == "ok" and face.coverage > 0.9
    assert face.baseline == "own_least_expressive"
    # The smile is animated to peak at 55 % of the clip (about 3.2 s): the peak frame must be in the bump.
    assert face.peak is not None and 2.0 < face.peak.time_s < 4.2
    top = sorted(face.peak.au.items(), key=lambda kv: -kv[1])[:3]
    assert "AU12" in [k for k, _ in top]
    assert r.clues.voice.status == "ok" and r.clues.voice.speech_duration_s > 2.0
    words = r.clues.words
    assert words.source == "asr" and words.language == "en" and "happy" in words.text.lower()
    assert f"{face.peak.time_s:.1f} s" in r.reasoning and "AU12" in r.reasoning
    assert "happy" in r.reasoning.split("Overall")[-1]


def test_result_json_round_trips_with_a_schema_version(example_result: AnalysisResult):
    data = json.loads(example_result.model_dump_json())
    assert data["schema_version"] == SCHEMA_VERSION
    again = AnalysisResult.model_validate(data)
    assert again == example_result
    assert len(data["clues"]["face"]["au_intensity"]) == len(data["clues"]["face"]["times"])


def test_subtitle_replaces_asr_and_changes_the_reasoning(analyzer, example_result):
    r = analyzer.analyze(EXAMPLE, subtitle="I am terrified, please help me, I am so scared.")
    assert r.clues.words.source == "subtitle"
    assert "terrified" in r.reasoning and "terrified" not in example_result.reasoning
    assert r.scores["fear"] > example_result.scores["fear"]


def test_label_set_changes_the_output_space(analyzer):
    r = analyzer.analyze(EXAMPLE, label_set="mer6", subtitle="Great news, I am so happy!")
    assert set(r.scores) == {"neutral", "angry", "happy", "sad", "worried", "surprise"}


def test_video_without_a_face_still_uses_voice_and_words(analyzer, tmp_path: Path):
    audio = example_audio()
    grey = [np.full((96, 96, 3), 128, np.uint8)] * int(len(audio) / 16000 * 10)
    p = write_video(tmp_path / "noface.mp4", grey, fps=10, audio=audio)
    r = analyzer.analyze(p)
    assert r.clues.face.status == "no_face"
    assert r.clues.voice.status == "ok" and r.clues.words.status == "ok"
    assert {m.modality for m in r.modality_scores} == {"voice", "words"}
    assert r.label is not None and "No face" in r.reasoning


def test_video_without_audio_uses_the_face(analyzer, tmp_path: Path):
    p = write_video(tmp_path / "mute.mp4", example_frames(limit=100), fps=25)
    r = analyzer.analyze(p)
    assert r.clues.voice.status == "absent" and r.clues.words.status == "no_text"
    assert r.clues.face.status == "ok" and r.label is not None
    assert "no audio track" in r.reasoning


def test_silent_audio_is_reported_not_transcribed(analyzer, tmp_path: Path):
    frames = example_frames(limit=30)
    p = write_video(tmp_path / "silence.mp4", frames, fps=25, audio=np.zeros(16000, np.float32))
    r = analyzer.analyze(p)
    assert r.clues.voice.status == "silent"
    assert r.clues.words.status == "no_text"


def test_still_image(analyzer, tmp_path: Path):
    p = tmp_path / "photo.png"
    Image.fromarray(example_frames(limit=1)[0]).save(p)
    r = analyzer.analyze(p)
    assert r.media.kind == "image"
    assert r.clues.face.status == "ok" and r.clues.face.baseline == "population_prior"
    assert r.clues.voice.status == "absent"


def test_audio_only(analyzer, tmp_path: Path):
    from tests.clips import write_wav

    r = analyzer.analyze(write_wav(tmp_path / "speech.wav", example_audio()))
    assert r.media.kind == "audio" and r.clues.face.status == "absent"
    assert r.clues.words.language == "en" and r.label is not None


def test_shared_mandarin_clips(analyzer, shared_clips: Path):
    """MER example clips: a face with AUs and a peak, speech, Mandarin words, a label.

    Three of the eight, spread over the sorted list: all eight cost a minute of CI time for the
    same assertions.
    """
    clips = sorted(shared_clips.glob("*.mp4"))
    for clip in clips[:: max(1, len(clips) // 3)][:3]:
        r = analyzer.analyze(clip)
        assert r.clues.face.status == "ok" and r.clues.face.peak is not None, clip.name
        assert r.clues.voice.status == "ok", clip.name
        assert r.clues.words.status == "ok" and r.clues.words.language == "zh", clip.name
        assert r.label in r.scores and f"{r.clues.face.peak.time_s:.1f} s" in r.reasoning, clip.name


def test_unconfirmed_face_still_counts_but_zero_evidence_gives_no_label(analyzer, tmp_path: Path):
    """A tight crop: the mesh finds the face, the detector may not. Never a label picked by list order."""
    crop = example_frames(limit=1)[0][40:250, 70:250]
    p = tmp_path / "tight.png"
    Image.fromarray(crop).save(p)
    r = analyzer.analyze(p)
    assert r.clues.face.status == "ok"
    face_weight = next(m.weight for m in r.modality_scores if m.modality == "face")
    assert face_weight > 0 and r.label == "happy"


def test_zero_total_weight_means_no_label(analyzer, tmp_path: Path, monkeypatch):
    import emollama.recognize.clues as clues_tier

    monkeypatch.setattr(clues_tier, "face_reliability", lambda coverage, conf: 0.0)
    p = tmp_path / "photo.png"
    Image.fromarray(example_frames(limit=1)[0]).save(p)
    r = analyzer.analyze(p)
    assert r.label is None and any("zero reliability" in w for w in r.warnings)
    assert "no emotion is concluded" in r.reasoning


def test_a_face_the_detector_never_confirms_is_not_used(analyzer, tmp_path: Path):
    """An upside-down photo: the mesh fits a face-like region (detection confidence 0.00). It used to get
    weight 0.30 and "supported by the face"; now the face is left out and the result says why."""
    p = tmp_path / "upside_down.png"
    Image.fromarray(example_frames(limit=1)[0][::-1]).save(p)
    r = analyzer.analyze(p)
    assert r.clues.face.status == "ok" and r.clues.face.mean_detection_confidence < 0.01
    assert all(m.modality not in ("face", "action_units") for m in r.modality_scores)
    assert r.label is None and any("never confirmed" in w for w in r.warnings)
    assert "supported by the face" not in r.reasoning
