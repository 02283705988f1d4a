"""A tiny instruction-tuning workspace: features whose audio vector encodes the label, annotations, a recipe.

The three labels differ only in the clips' audio features (plus noise); the subtitle is the same
for every clip, so a model can only get held-out clips right by reading the spliced features.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from emollama.features.store import FeatureStore
from emollama.model.config import EmotionLlamaConfig
from emollama.model.emotion_llama import MediaFeatures

ROOT = Path(__file__).resolve().parents[2]
TINY_YAML = ROOT / "emollama" / "model" / "configs" / "tiny.yaml"
LABELS = ("happy", "sad", "angry")


def make_workspace(root: Path, n: int = 30) -> Path:
    """Write model.yaml, features/, ann/ (coarse list + JSON + subtitles) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    cfg = EmotionLlamaConfig.from_file(TINY_YAML)
    # A wider head init and LoRA on more projections stand in for a trained LM (see tests/model/test_overfit.py).
    cfg.lora.r, cfg.lora.target_modules = 16, ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"]
    assert cfg.llm.random_init is not None
    cfg.llm.random_init["initializer_range"] = 0.3
    cfg.to_yaml(root / "model.yaml")
    cfg = EmotionLlamaConfig.from_file(root / "model.yaml")
    store = FeatureStore.create(root / "features", cfg)
    g = torch.Generator().manual_seed(0)
    proto = {label: torch.randn(cfg.projector.audio_dim, generator=g) * 2 for label in LABELS}
    lines, coarse = [], {}
    for i in range(n):
        label, name = LABELS[i % 3], f"clip{i:03d}"
        feats = MediaFeatures.zeros(cfg.projector, 1)
        feats.audio[0] = proto[label] + 0.3 * torch.randn(cfg.projector.audio_dim, generator=g)
        feats.local[0] = torch.randn(cfg.projector.local_dim, generator=g)
        store.write(name, feats)
        lines.append(f"{name} 10 {label} -10\n")
        coarse[name] = {"caption": f"The person looks {label}: the voice sounds {label}.", "peak_index": 3}
    ann = root / "ann"
    ann.mkdir(exist_ok=True)
    (ann / "MERR_coarse_grained.txt").write_text("".join(lines), encoding="utf-8")
    (ann / "MERR_coarse_grained.json").write_text(json.dumps(coarse), encoding="utf-8")
    (ann / "transcription_en_all.csv").write_text(
        "name,sentence\n" + "".join(f"clip{i:03d},well here we are\n" for i in range(n)), encoding="utf-8")
    return root


def write_recipe(root: Path, name: str, body: str) -> Path:
    path = root / f"{name}.yaml"
    path.write_text(f"name: {name}\nmodel: model.yaml\ndata: {{features: features}}\n{body}", encoding="utf-8")
    return path


def emollama(*args: str, cwd: Path, torchrun: int = 0, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real command line (``emollama …``, or under ``torchrun`` with N CPU processes)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    prefix = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(torchrun),
              "--master-port", str(29500 + os.getpid() % 1000)] if torchrun else [sys.executable]
    return subprocess.run([*prefix, "-m", "emollama", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def train_losses(run: Path) -> list[tuple[str, int, float]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    return [(r["stage"], r["step"], r["loss"]) for r in rows if r["kind"] == "train"]


def val_records(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    return [r for r in rows if r["kind"] == "val"]
