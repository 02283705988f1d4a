"""The shipped emotion-llama-mini: loads strictly from the package and answers with no --model, offline.

This is what `make demo`'s install promises: `emollama analyze CLIP --tier emotion-llama` works with
nothing but registry packages (the SmolLM2 GGUF is converted into the cache on first use).
"""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from emollama.packaged import MINI_MODEL_DIR
from tests.clips import EXAMPLE
from tests.test_cli import run_cli

pytestmark = pytest.mark.slow


def test_shipped_folder_is_small_complete_and_self_contained() -> None:
    files = {p.name for p in MINI_MODEL_DIR.iterdir()}
    assert {"config.json", "model.safetensors", "instructions.yaml", "MODEL_CARD.md"} <= files
    assert (MINI_MODEL_DIR / "model.safetensors").stat().st_size <= 20 * 2**20
    cfg = json.loads((MINI_MODEL_DIR / "config.json").read_text())
    assert cfg["llm"]["gguf"] == "smollm2" and cfg["llm"]["path"] is None  # nothing outside the packages
    keys = load_file(str(MINI_MODEL_DIR / "model.safetensors")).keys()
    assert "projector.absent" in keys and any("lora_A" in k for k in keys)


def test_analyze_uses_the_shipped_model_without_model_flag(tmp_path) -> None:
    out = tmp_path / "r.json"
    proc = run_cli("analyze", str(EXAMPLE), "--tier", "emotion-llama", "--labels", "dfew7", "--no-asr",
                   "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    assert r["tier"] == "emotion-llama" and r["models"]["emotion_llama"] == "emotion-llama-mini"
    assert r["label"] in ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear") or any(
        "names no label" in w for w in r["warnings"])  # parsed strictly: never a silent default
    assert r["reasoning"] and r["timings_s"]["emotion_llama_s"] > 0
    assert "[emotion]" in proc.stdout  # the answer was streamed to the terminal
