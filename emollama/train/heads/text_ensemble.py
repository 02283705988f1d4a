"""Combine fine-tuned MiniLM text heads into the shipped ensemble (``assets/heads/text/minilm_ensemble.json``).

Each ``--member`` is a folder written by :mod:`emollama.train.heads.text_finetune` (``minilm_top.*``).
The recipe packs every member's matrices as the packaged MiniLM matrix plus a rank-``--rank`` delta
(:func:`emollama.heads.text_finetuned.pack_low_rank`), loads the packed members exactly as
``analyze`` will, and scores on dev: each member alone, then the ensemble (mean of the members'
log-probabilities). On dev it then chooses the prior correction τ (logits − τ·log training class
frequency) by the mean of GoEmotions-Ekman dev macro-F1 and MELD dev weighted-F1, and fits the
temperature on both dev sets (ECE before/after). Only then are the files written to ``--out``.

    python -m emollama.train.heads.text_ensemble --data ../shared/data/text --rank 96 \\
        --member /tmp/emollama_text_ft/out_top2_meld3 --member /tmp/emollama_text_ft/out_top6_meld3 \\
        --member /tmp/emollama_text_ft/out_top4_meld3_ascii
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from emollama.heads.calibration import expected_calibration_error, fit_temperature, log_softmax, softmax
from emollama.heads.minilm import load_minilm
from emollama.heads.text import ENSEMBLE_PATH, TEXT_DIR
from emollama.heads.text_finetuned import (
    EnsembleTextHead,
    FineTunedTextHead,
    MiniLMEmotionModel,
    base_fingerprint,
    pack_low_rank,
)
from emollama.train.heads.text_data import LABELS, dev_scores, read_corpora

PRIOR_CORRECTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)
NO_BIAS = np.zeros(len(LABELS))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m emollama.train.heads.text_ensemble",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/text"))
    ap.add_argument("--member", type=Path, action="append", required=True,
                    help="folder with minilm_top.safetensors/.json from emollama.train.heads.text_finetune")
    ap.add_argument("--rank", type=int, default=96, help="rank of the shipped weight deltas (0: store whole)")
    ap.add_argument("--out", type=Path, default=TEXT_DIR)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    log = functools.partial(print, flush=True)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    corpora = read_corpora(args.data, "train", "dev")
    dev = {k: v["dev"] for k, v in corpora.items()}
    dev_y = {k: v[1] for k, v in dev.items()}
    train_y = np.concatenate([corpora["goemotions"]["train"][1], corpora["meld"]["train"][1]])
    log_prior = np.log(np.bincount(train_y, minlength=len(LABELS)) / len(train_y))

    minilm = load_minilm()
    stage = Path(tempfile.mkdtemp(prefix="emollama_text_ensemble_"))
    stems, member_report, member_logp = [], [], []
    for i, folder in enumerate(args.member):
        meta = json.loads((folder / "minilm_top.json").read_text())
        if list(meta["labels"]) != list(LABELS):
            raise SystemExit(f"{folder}: labels {meta['labels']} differ from {list(LABELS)}")
        stem = f"minilm_member{i}_top{meta['n_top']}"
        trained = load_file(str(folder / "minilm_top.safetensors"))
        if args.rank:
            base = MiniLMEmotionModel(minilm[1], int(meta["n_top"]), len(LABELS)).state_dict()
            trained = pack_low_rank(trained, base, args.rank)
        save_file(trained, str(stage / f"{stem}.safetensors"))
        (stage / f"{stem}.json").write_text(json.dumps({**meta, "packed_rank": args.rank, "from": str(folder)},
                                                       indent=2) + "\n")
        head = FineTunedTextHead(stage / stem, minilm)
        logits = {k: head.logits(v[0], with_bias=False) for k, v in dev.items()}
        member_logp.append({k: log_softmax(z) for k, z in logits.items()})
        alone = dev_scores(logits, dev_y, NO_BIAS)
        member_report.append({"stem": stem, "n_top": meta["n_top"], "meld_repeat": meta["n_train"]["meld_repeat"],
                              "best_epoch": meta["best_epoch"],
                              "normalize_punctuation": meta.get("normalize_punctuation", False),
                              "dev_alone_no_prior_correction": alone,
                              "bytes": (stage / f"{stem}.safetensors").stat().st_size})
        stems.append(stem)
        log(f"{stem} {alone} {member_report[-1]['bytes'] / 1e6:.1f} MB")

    mean = {k: np.mean([m[k] for m in member_logp], axis=0) for k in dev}
    grid = {tau: dev_scores(mean, dev_y, -tau * log_prior) for tau in PRIOR_CORRECTIONS}
    tau = max(grid, key=lambda t: grid[t]["mean"])
    bias = -tau * log_prior
    all_logits = np.concatenate([mean["goemotions"], mean["meld"]]) + bias
    all_y = np.concatenate([dev_y["goemotions"], dev_y["meld"]])
    temperature = fit_temperature(all_logits, all_y)
    report = {"labels": list(LABELS), "members": stems, "logit_bias": [round(float(b), 5) for b in bias],
              "prior_correction": tau, "temperature": round(temperature, 4), "dev": grid[tau],
              "prior_correction_grid": {str(k): v for k, v in grid.items()},
              "ece_before": round(expected_calibration_error(softmax(all_logits), all_y), 4),
              "ece_after": round(expected_calibration_error(softmax(all_logits / temperature), all_y), 4),
              "member_report": member_report, "packed_rank": args.rank, "base_sha256": base_fingerprint(minilm[1]),
              "build_s": round(time.perf_counter() - t0, 1)}
    (stage / ENSEMBLE_PATH.name).write_text(json.dumps(report, indent=2) + "\n")

    # What ships is checked through the class analyze uses, before anything is copied.
    shipped = EnsembleTextHead(stage / ENSEMBLE_PATH.name)
    check = dev_scores({k: shipped.logits(v[0]) for k, v in dev.items()}, dev_y, NO_BIAS)
    if abs(check["mean"] - grid[tau]["mean"]) > 1e-3:
        raise SystemExit(f"reloaded ensemble scores {check}, built {grid[tau]}: not shipped (files in {stage})")
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("minilm_member*"):
        old.unlink()
    for f in stage.iterdir():
        shutil.copyfile(f, args.out / f.name)  # not copy2: the staging files are private (0600)
    shutil.rmtree(stage)
    log(json.dumps({k: v for k, v in report.items() if k != "member_report"}, indent=2))


if __name__ == "__main__":
    main()
