"""Copy a finished emotion-llama-mini run into the package (``emollama/assets/emotion_llama_mini/``).

    python scripts/mini/ship.py RUN_DIR

Takes the last stage's best model folder (``config.json``, ``model.safetensors``, the instruction
pools), checks that it loads strictly and that its config needs nothing outside the installed
packages (no absolute paths), and writes ``training.json`` (stages, steps, wall time, the
validation record of each kept checkpoint) and ``training_curves.png`` beside it. The model card
(``MODEL_CARD.md``) is written by hand from these and from the evaluation commands it lists.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from emollama.packaged import MINI_MODEL_DIR

FILES = ("config.json", "model.safetensors", "instructions.yaml")
LIMIT_MB = 20


def summary(run: Path) -> dict:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    stages: dict[str, dict] = {}
    for r in records:
        st = stages.setdefault(r.get("stage", "?"), {"steps": 0, "samples_per_s": [], "validation": []})
        if r["kind"] == "train":
            st["steps"] = max(st["steps"], r["step"])
            st["samples_per_s"].append(r["samples_per_s"])
        elif r["kind"] == "val":
            st["validation"].append({k: r[k] for k in ("step", "loss", "accuracy", "weighted_f1", "uar", "n",
                                                        "unparsed") if k in r})
    for st in stages.values():
        rates = st.pop("samples_per_s")
        st["mean_samples_per_s"] = round(sum(rates) / len(rates), 3) if rates else None
    best = {}
    for name in stages:
        path = run / name / "best" / "validation.json"
        if path.is_file():
            best[name] = json.loads(path.read_text())
    return {"stages": stages, "best": best}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--stage", default="fine", help="Whose best folder ships (default: the last stage, fine).")
    args = ap.parse_args()
    src = args.run / args.stage / "best"
    missing = [f for f in FILES if not (src / f).is_file()]
    if missing:
        raise SystemExit(f"{src} lacks {', '.join(missing)}: is the run finished?")
    cfg = json.loads((src / "config.json").read_text())
    paths = [cfg["llm"].get("path"), cfg["llm"].get("tokenizer_path")] + [
        (cfg.get(slot) or {}).get("path") for slot in ("global_encoder", "local_encoder", "temporal_encoder",
                                                       "audio_encoder")]
    if cfg["llm"].get("gguf") not in ("smollm2", None):
        paths.append(cfg["llm"]["gguf"])
    if any(p for p in paths):
        raise SystemExit(f"{src}/config.json names files outside the package ({[p for p in paths if p]}); "
                         "the shipped model may only use packaged parts")
    size_mb = (src / "model.safetensors").stat().st_size / 2**20
    if size_mb > LIMIT_MB:
        raise SystemExit(f"model.safetensors is {size_mb:.1f} MB, over the {LIMIT_MB} MB limit")
    from emollama.model.emotion_llama import EmotionLlama

    EmotionLlama.from_pretrained(src)  # strict load before anything is copied: every tensor present, none extra
    MINI_MODEL_DIR.mkdir(parents=True, exist_ok=True)
    for f in FILES:
        shutil.copyfile(src / f, MINI_MODEL_DIR / f)
    if (args.run / "curves.png").is_file():
        shutil.copyfile(args.run / "curves.png", MINI_MODEL_DIR / "training_curves.png")
    (MINI_MODEL_DIR / "training.json").write_text(json.dumps(summary(args.run), indent=2) + "\n")
    print(f"shipped {src} -> {MINI_MODEL_DIR} ({size_mb:.1f} MB)")


if __name__ == "__main__":
    main()
