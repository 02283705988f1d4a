"""The ``llm`` tier: clue lines in, one chat request, a strictly parsed label out (no real LLM loaded)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from emollama.labels import get_label_set
from emollama.llm.backend import ChatBackend, ChatMessage, ChatReply, LLMRequestError
from emollama.perception.face_clues import FaceSummary
from emollama.perception.pipeline import Perception
from emollama.recognize.llm_tier import (
    LLMRecognizer,
    build_messages,
    check_llm_target,
    describe_clues,
    load_llm_backend,
    read_answer,
)
from emollama.schema import (
    Clues,
    FaceClues,
    MediaInfo,
    ModalityScores,
    PeakFrame,
    SpeechSegment,
    VoiceClues,
    WordsClues,
)

MERR9 = get_label_set("merr9")


def clues(au: dict[str, float] | None = None, text: str = "What a wonderful day!") -> Clues:
    face = FaceClues(status="ok", n_frames=10, n_frames_with_face=10, coverage=1.0, mean_detection_confidence=0.9,
                     baseline="own_least_expressive",
                     peak=PeakFrame(index=3, time_s=1.4, total_intensity=5.0, au=au or {"AU12": 3.1, "AU06": 2.0}),
                     expression_mean={"happy": 0.7, "neutral": 0.3})
    voice = VoiceClues(status="ok", speech_segments=[SpeechSegment(start_s=0, end_s=2)], speech_duration_s=2.0,
                       vad_confidence=0.9, relative={"pitch_range_st": 9.0}, arousal=0.6, head_arousal=0.5,
                       head_valence=0.2)
    words = WordsClues(status="ok", source="subtitle", text=text)
    return Clues(face=face, voice=voice, words=words)


def scores(**top: float) -> dict[str, float]:
    rest = (1.0 - sum(top.values())) / (len(MERR9) - len(top))
    return {y: top.get(y, rest) for y in MERR9.labels}


MODALITIES = [
    ModalityScores(modality="face", scores=scores(happy=0.71, neutral=0.2), weight=0.9, source="face head"),
    ModalityScores(modality="action_units", scores=scores(happy=0.6), weight=0.5, source="AU rules"),
    ModalityScores(modality="voice", scores=scores(angry=0.4, happy=0.3), weight=0.3, source="voice head"),
    ModalityScores(modality="words", scores=scores(happy=0.8), weight=0.6, source="text head"),
]


def test_description_carries_the_measured_clues():
    text = describe_clues(clues(), MODALITIES)
    lines = text.splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["Face", "Voice", "Words"]
    assert "1.4 s" in lines[0] and "AU12 3.1" in lines[0] and "corners of the mouth pull up" in lines[0]
    assert "expression model reads happy 71%, neutral 20%" in lines[0]
    assert "muscle pattern fits happy 60%" in lines[0]
    assert "highly aroused" in lines[1] and "wide, animated" in lines[1] and "voice model reads angry 40%" in lines[1]
    assert "What a wonderful day!" in lines[2] and "text model reads happy 80%" in lines[2]
    assert len(text) < 600  # short enough for a 135M model's attention


def test_description_changes_with_the_evidence_and_states_missing_modalities():
    sad = describe_clues(clues({"AU15": 2.2, "AU01": 1.8}, "Leave me alone."), MODALITIES[:1])
    assert "AU15" in sad and "turn down" in sad and "Leave me alone." in sad and "text model" not in sad
    none = describe_clues(Clues(face=FaceClues(status="no_face"), voice=VoiceClues(status="absent"),
                                words=WordsClues(status="no_text")), [])
    assert none == "Face: not visible.\nVoice: no audio.\nWords: none."
    # A face the clues tier left out (zero weight) is not described as if it were evidence.
    unused = [m.model_copy(update={"weight": 0.0}) for m in MODALITIES[:2]]
    assert describe_clues(clues(), unused).startswith("Face: not reliably seen.")


def test_long_transcripts_are_cut():
    text = describe_clues(clues(text="word " * 200), MODALITIES)
    assert "..." in text and len(text) < 700


def test_prompt_spells_out_the_labels_and_the_answer_form():
    messages = build_messages("Face: x.\nVoice: y.\nWords: z.", MERR9)
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert isinstance(user, str)
    assert ", ".join(MERR9.labels) in user and "Emotion:" in user and "Reason:" in user and "Face: x." in user


@pytest.mark.parametrize(("reply", "label", "status"), [
    ("Emotion: happy. Reason: the mouth corners pull up.", "happy", "ok"),
    ("emotion: Sadness\nReason: the voice is subdued.", "sad", "ok"),
    ("Emotion: angry. Reason: not happy at all, loud voice.", "angry", "ok"),  # the field wins over the reason
    ("The person looks happy.", "happy", "ok"),  # no field: the whole reply, through parse_label
    ("Emotion: <one emotion from the list>. Reason: <one short sentence>.", None, "unparseable"),
    ("Emotion: happy or sad. Reason: hard to say.", None, "ambiguous"),
    ("The person shows a mix of emotions, including both neutral and happy.", None, "ambiguous"),
    ("Emotion: neutral, happy, angry, worried, sad, surprise, fear, doubt, contempt", None, "ambiguous"),
    ("The person is happy, not sad.", "happy", "ok"),
    ("Emotion: calm. Reason: an even voice.", None, "not_in_set"),  # calm is not a merr9 label
    ("I cannot tell from these measurements.", None, "unparseable"),
    ("", None, "unparseable"),
])
def test_answers_are_read_strictly(reply: str, label: str | None, status: str):
    answer = read_answer(reply, MERR9)
    assert (answer.label, answer.status) == (label, status)
    assert (answer.detail == "") == (status == "ok")


class FixedBackend:
    """A ChatBackend that returns one fixed reply and records what it was asked."""

    def __init__(self, text: str, model: str = "fixed-test-llm", delay_s: float = 0.0) -> None:
        self.text, self._model, self.delay_s = text, model, delay_s
        self.calls: list[tuple[list[ChatMessage], float, int]] = []

    @property
    def model(self) -> str:
        return self._model

    def complete(self, messages: Sequence[ChatMessage], *, temperature: float = 0.0,
                 max_tokens: int = 512) -> ChatReply:
        self.calls.append((list(messages), temperature, max_tokens))
        time.sleep(self.delay_s)
        return ChatReply(text=self.text, model=self._model)


class FailingBackend(FixedBackend):
    def complete(self, messages: Sequence[ChatMessage], *, temperature: float = 0.0,
                 max_tokens: int = 512) -> ChatReply:
        raise LLMRequestError("connection refused")


def perception(c: Clues | None = None, *, text_probs: dict[str, float] | None = None) -> Perception:
    """A Perception as the pipeline leaves it, without running any perception model."""
    c = c or clues()
    media = MediaInfo(path="clip.mp4", kind="video", duration_s=2.0, has_video=True, has_audio=True)
    face = FaceSummary(c.face, {"happy": 0.7, "neutral": 0.3}, 0.0, 3) if c.face.status == "ok" else \
        FaceSummary(c.face, {}, 0.0, None)
    return Perception(reader=None, media=media, fps=5.0, scan=None, face=face,  # type: ignore[arg-type]
                      audio=np.zeros(32000, dtype=np.float32), clues=c,
                      voice_probs={"happy": 0.5, "angry": 0.3, "neutral": 0.2} if c.voice.status == "ok" else None,
                      text_probs=text_probs if text_probs is not None else {"happy": 0.8, "neutral": 0.2},
                      models={"face": "face model"}, timings={"perception_s": 1.0}, warnings=["a perception note"],
                      started=time.perf_counter())


def test_tier_returns_the_common_result_with_the_llm_text():
    backend = FixedBackend("Emotion: happy. Reason: the person smiles and says it is a wonderful day.", delay_s=0.01)
    assert isinstance(backend, ChatBackend)
    result = LLMRecognizer(backend).recognize(perception(), "merr9")
    assert result.tier == "llm" and result.label == "happy" and result.label_set == "merr9"
    assert result.scores == {y: float(y == "happy") for y in MERR9.labels}
    assert result.reasoning == backend.text
    assert result.models["llm"] == "fixed-test-llm" and result.models["face"] == "face model"
    assert result.timings_s["llm_s"] >= 0.01 and result.timings_s["total_s"] >= result.timings_s["llm_s"]
    assert result.warnings == ["a perception note"]
    assert {m.modality for m in result.modality_scores} >= {"face", "voice", "words"}
    (messages, temperature, max_tokens), = backend.calls
    assert temperature == 0.0 and max_tokens <= 120
    assert "AU12 3.1" in str(messages[1]["content"]) and "wonderful day" in str(messages[1]["content"])


def test_unparseable_answer_gives_no_label_uniform_scores_and_a_warning():
    result = LLMRecognizer(FixedBackend("Emotion: <one emotion from the list>.")).recognize(perception(), "merr9")
    assert result.label is None
    assert set(result.scores.values()) == {round(1 / len(MERR9), 4)}
    assert any("no label of merr9" in w and "unparseable" in w for w in result.warnings)
    assert result.reasoning == "Emotion: <one emotion from the list>."


def test_other_label_sets_are_asked_and_read_in_their_own_labels():
    backend = FixedBackend("Emotion: disgusted. Reason: the nose wrinkles.")
    result = LLMRecognizer(backend, name="named").recognize(perception(), "ekman7")
    assert result.label == "disgust" and result.models["llm"] == "named" and "disgust" in result.scores
    assert ", ".join(get_label_set("ekman7").labels) in str(backend.calls[0][0][1]["content"])


def test_backend_failure_is_raised_not_stored():
    with pytest.raises(LLMRequestError, match="connection refused"):
        LLMRecognizer(FailingBackend("")).recognize(perception(), "merr9")


def test_without_any_clues_the_answer_is_flagged():
    c = Clues(face=FaceClues(status="no_face"), voice=VoiceClues(status="absent"), words=WordsClues(status="no_text"))
    result = LLMRecognizer(FixedBackend("Emotion: neutral. Reason: nothing shows.")).recognize(
        perception(c, text_probs={}), "merr9")
    assert result.label == "neutral"
    assert any("without measured clues" in w for w in result.warnings)


@pytest.mark.parametrize(("target", "model", "fragment"), [
    ("http://localhost:11434/v1", None, "needs the model name"),
    ("nowhere/model.gguf", None, "no such .gguf file"),
    ("nowhere/folder", None, "not an http(s):// URL"),
    (None, "llama3", "give --llm URL too"),
])
def test_bad_targets_are_refused_before_loading(target: str | None, model: str | None, fragment: str):
    from emollama.errors import InputError

    with pytest.raises(InputError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        check_llm_target(target, model)


def test_a_folder_without_config_is_refused(tmp_path: Path):
    from emollama.errors import InputError

    with pytest.raises(InputError, match="no config.json"):
        load_llm_backend(str(tmp_path))


def test_a_gguf_without_llama_cpp_is_converted_for_transformers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """No llama-cpp-python: the GGUF goes through gguf_to_hf and TransformersBackend (both stubbed here)."""
    import sys

    import emollama.llm.transformers_local as tl
    import emollama.packaged as packaged

    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp raises ImportError
    monkeypatch.setattr(packaged, "gguf_to_hf", lambda path: tmp_path / f"{Path(path).stem}-hf")
    monkeypatch.setattr(tl, "TransformersBackend", lambda folder: ("transformers", folder))
    backend, name = load_llm_backend(str(gguf))
    assert backend == ("transformers", tmp_path / "tiny-hf") and name == "tiny.gguf"


@pytest.mark.parametrize(("args", "fragment"), [
    (["--tier", "llm", "--llm", "nowhere/model.gguf"], "no such .gguf file"),
    (["--tier", "llm", "--llm", "nowhere/folder"], "not an http(s):// URL"),
    (["--tier", "llm", "--llm", "http://localhost:1/v1"], "--llm-model"),
    (["--llm", "http://localhost:1/v1", "--llm-model", "m"], "no effect with --tier clues"),
    (["--tier", "gpt"], "choose 'clues', 'llm' or 'emotion-llama'"),
], ids=["missing-gguf", "missing-folder", "url-without-model", "llm-without-tier", "unknown-tier"])
def test_cli_refuses_a_bad_llm_setting_in_one_line(args: list[str], fragment: str):
    """Checked before the media is read or any model loads: exit 2, one ``error:`` line."""
    from tests.test_cli import assert_one_line_error, run_cli

    assert_one_line_error(run_cli("analyze", "missing.mp4", *args, timeout=60), fragment)
