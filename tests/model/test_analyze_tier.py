"""`analyze --tier emotion-llama`: real media through perception, a tiny random model folder, one result type."""

from __future__ import annotations

from pathlib import Path

import pytest

from emollama.model.emotion_llama import EmotionLlama
from emollama.model.encoders import MediaEncoders
from emollama.model.processor import EmotionLlamaProcessor
from tests.clips import EXAMPLE
from tests.test_cli import assert_one_line_error, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture()
def model_dir(tmp_path: Path, tiny_model: EmotionLlama, tiny_encoders: MediaEncoders,
              tiny_processor: EmotionLlamaProcessor) -> Path:
    return tiny_model.save_pretrained(tmp_path / "tiny", save_backbones=True, processor=tiny_processor,
                                      encoders=tiny_encoders)


def test_emotion_llama_tier_returns_the_same_result_type(model_dir: Path):
    from emollama.api import EmotionLlamaAnalyzer
    from emollama.schema import AnalysisResult

    analyzer = EmotionLlamaAnalyzer(model_dir, max_new_tokens=8)
    r = analyzer.analyze(EXAMPLE, subtitle="I am so happy today")
    assert isinstance(r, AnalysisResult) and r.tier == "emotion-llama"
    assert r.clues.face.status == "ok" and r.clues.face.peak is not None  # perception ran for real
    assert isinstance(r.reasoning, str) and "emotion_llama" in r.models and "emotion_llama_s" in r.timings_s
    if r.label is None:  # a random model rarely names a label; that must be reported, not turned into neutral
        assert any("names no label" in w for w in r.warnings)
        assert len(set(r.scores.values())) == 1
    else:
        assert r.scores[r.label] == 1.0


def test_missing_model_folder_is_one_line(tmp_path: Path):
    proc = run_cli("analyze", str(EXAMPLE), "--tier", "emotion-llama", "--model", str(tmp_path / "nowhere"))
    assert_one_line_error(proc, "config.json")
