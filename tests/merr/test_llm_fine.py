"""Fine annotation through the HTTP backend against a loopback server, and the output filter."""

from __future__ import annotations

from pathlib import Path

import pytest

from emollama.llm.factory import LLMSpec, make_backend
from emollama.merr.annotate import AnnotateOptions, write_fine
from emollama.merr.fine import LLMFineWriter, check_reasoning
from emollama.merr.inputs import ClipItem
from emollama.merr.record import read_record
from emollama.merr.runner import RunConfig, run_annotation
from tests.clips import EXAMPLE

GOOD = ("At the most expressive moment the corners of the mouth pull up strongly and the cheeks rise (AU12, AU06), "
        "a clear smile. The voice is joyful and energetic, and the person says the news is wonderful. "
        "Therefore the emotion is happy.")


@pytest.fixture
def happy(annotated: Path):
    return read_record(annotated / "clips" / "astronaut_happy.json")


@pytest.mark.parametrize(("text", "code"), [
    ("", "empty"), ("   ", "empty"), ("Error: upstream model overloaded", "error_text"),
    ("I'm sorry, but I cannot analyse people's emotions from video.", "refusal"),
    ("The person is happy.", "too_short"),
    ("happy happy happy " * 20, "degenerate"),
    ("The mouth pulls up. The mouth pulls up. The mouth pulls up. Therefore the emotion is happy.", "degenerate"),
    (GOOD.replace("Therefore the emotion is happy.", "Therefore the emotion is sad."), "contradicts_label"),
    ("The clip shows a person in a room who has a lot going on and many things to think about today, "
     "so the emotion is happy.", "no_clue"),
    ("The corners of the mouth pull up and the voice is loud and lively throughout the clip "
     "while the person talks about the news.", "label_missing"),
    (GOOD, "ok"),
])
def test_output_filter(happy, text: str, code: str) -> None:
    assert check_reasoning(text, happy)[1] == code


def test_http_fine_ok_contradiction_and_cache(happy, chat_server, tmp_path) -> None:
    chat_server.reply = lambda body: GOOD if "annotated as: happy" in body["messages"][1]["content"] else "?"
    spec = LLMSpec(chat_server.url, "m", timeout_s=5, max_retries=0, cache_dir=str(tmp_path / "cache"))
    writer = LLMFineWriter(make_backend(spec))
    rec = write_fine(happy, writer, AnnotateOptions())
    assert rec.fine.status == "ok" and rec.fine.source == "llm" and rec.fine.text == GOOD
    assert rec.fine.model == "merr-test-llm"
    prompt = chat_server.requests[0]["messages"][1]["content"]
    assert "AU12" in prompt and "joyful" in prompt and happy.coarse.subtitle.text in prompt
    write_fine(happy, writer, AnnotateOptions())
    assert len(chat_server.requests) == 1  # the second call is served from the content-hash cache
    chat_server.reply = lambda body: GOOD.replace("is happy.", "is angry.")
    other = LLMFineWriter(make_backend(LLMSpec(chat_server.url, "m2", timeout_s=5, max_retries=0)))
    bad = write_fine(happy, other, AnnotateOptions())
    assert bad.fine.status == "filtered" and bad.fine.text is None and bad.fine.reason.startswith("contradicts_label")


def test_garbage_and_timeout_are_never_stored_and_are_retried(perceiver, chat_server, tmp_path) -> None:
    chat_server.reply = lambda body: ("garbage", None)
    spec = LLMSpec(chat_server.url, "m", timeout_s=1.0, max_retries=0, cache_dir=str(tmp_path / "cache"))
    config = RunConfig(llm=spec)
    items = [ClipItem("astronaut_happy", EXAMPLE, None, "happy", "Happy")]
    run_annotation(items, tmp_path / "out", config, perceiver=perceiver)
    rec = read_record(tmp_path / "out" / "clips" / "astronaut_happy.json")
    assert rec.fine.status == "llm_error" and rec.fine.text is None and "not JSON" in rec.fine.reason
    assert not list((tmp_path / "cache").rglob("*.json"))  # errors are not cached either
    chat_server.reply = lambda body: ("sleep", 2.5)
    stats = run_annotation(items, tmp_path / "out", config, perceiver=perceiver)
    assert stats["fine_retried"] == 1 and stats["to_do"] == 0  # perception is not redone
    rec = read_record(tmp_path / "out" / "clips" / "astronaut_happy.json")
    assert rec.fine.status == "llm_error" and "did not answer within" in rec.fine.reason and rec.fine.attempts == 2
    chat_server.reply = lambda body: GOOD
    run_annotation(items, tmp_path / "out", config, perceiver=perceiver)
    rec = read_record(tmp_path / "out" / "clips" / "astronaut_happy.json")
    assert rec.fine.status == "ok" and rec.fine.text == GOOD and rec.coarse.peak is not None


def test_optional_local_backends_fail_clearly(tmp_path) -> None:
    from emollama.errors import InputError, ModelUnavailableError

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(ModelUnavailableError, match="llama-cpp-python is not installed"):
        make_backend(LLMSpec(str(gguf)))
    with pytest.raises(ModelUnavailableError, match="config.json"):
        make_backend(LLMSpec(str(tmp_path)))
    with pytest.raises(InputError, match="--llm-model"):
        make_backend(LLMSpec("http://127.0.0.1:9/v1"))
