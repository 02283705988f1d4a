"""Rebuild the voice-emotion head (``emollama/assets/heads/voice/``) on the EmoDB dev speakers.

Features: the clip-mean of every Whisper-base encoder layer
(:mod:`emollama.heads.whisper_encoder`), computed once and cached. Selection is
leave-one-speaker-out (LOSO) over the speakers in ``emodb/labels.csv``: for every candidate (set
of layers × C) each speaker is predicted by a model trained on the others, with the
standardisation fitted on the training speakers only; UAR is computed on the pooled out-of-fold
predictions. The chosen candidate's out-of-fold logits give the temperature (ECE before/after).
The shipped model is then refitted on all dev speakers. Audio is resampled to 16 kHz, as the
analyze pipeline delivers it.

    OMP_NUM_THREADS=1 python -m emollama.train.heads.voice --data ../shared/data/emodb
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, f1_score
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from emollama.heads.calibration import expected_calibration_error, fit_temperature, softmax
from emollama.heads.linear import LinearHead
from emollama.heads.voice import VOICE_DIR
from emollama.heads.whisper_encoder import SAMPLE_RATE, WhisperLayerEmbedder
from emollama.labels import normalize_label

#: Candidate layer sets (0 = convolution stem, 6 = last layer after the final norm) and C values.
LAYER_SETS = ((2,), (3,), (4,), (6,), (2, 3), (2, 3, 4, 5))
C_VALUES = (0.01, 0.1, 1.0)
WIDTH = 512


def make_model(c: float) -> LogisticRegression:
    """The classifier of every candidate: class-balanced multinomial logistic regression."""
    return LogisticRegression(C=c, max_iter=5000, class_weight="balanced")


def load_audio(path: Path) -> np.ndarray:
    """Mono float32 at :data:`SAMPLE_RATE`, as the analyze pipeline delivers audio."""
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if sr != SAMPLE_RATE:
        g = np.gcd(sr, SAMPLE_RATE)
        x = resample_poly(x, SAMPLE_RATE // g, sr // g).astype(np.float32)
    return x


def loso(x: np.ndarray, y: np.ndarray, spk: np.ndarray, c: float) -> np.ndarray:
    """Out-of-fold decision values, one speaker held out at a time."""
    logits = np.zeros((len(y), len(np.unique(y))))
    for s in np.unique(spk):
        tr, te = spk != s, spk == s
        scaler = StandardScaler().fit(x[tr])
        clf = make_model(c).fit(scaler.transform(x[tr]), y[tr])
        logits[te] = clf.decision_function(scaler.transform(x[te]))
    return logits


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m emollama.train.heads.voice", description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/emodb"))
    ap.add_argument("--out", type=Path, default=VOICE_DIR)
    ap.add_argument("--work", type=Path, default=Path("/tmp/emollama_voice"))
    args = ap.parse_args(argv)
    log = functools.partial(print, flush=True)
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(args.data / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    labels = sorted({normalize_label(r["label"]) for r in rows})
    y = np.array([labels.index(normalize_label(r["label"])) for r in rows])
    spk = np.array([r["speaker_id"] for r in rows])
    cache = args.work / "whisper_layers.npy"
    if cache.is_file():
        x = np.load(cache)
    else:
        embed = WhisperLayerEmbedder(layers=tuple(range(7)))
        x = np.stack([embed(load_audio(args.data / r["path"])) for r in tqdm(rows, desc="whisper layers")])
        np.save(cache, x)
    grid, best = [], None
    for layers in LAYER_SETS:
        cols = np.concatenate([np.arange(i * WIDTH, (i + 1) * WIDTH) for i in layers])
        for c in C_VALUES:
            logits = loso(x[:, cols], y, spk, c)
            pred = logits.argmax(1)
            row = {"layers": list(layers), "model": "logreg", "C": c,
                   "loso_uar": round(balanced_accuracy_score(y, pred), 4),
                   "loso_accuracy": round(float((pred == y).mean()), 4),
                   "loso_macro_f1": round(f1_score(y, pred, average="macro"), 4)}
            row["per_speaker_uar"] = {s: round(balanced_accuracy_score(y[spk == s], pred[spk == s]), 3)
                                      for s in np.unique(spk)}
            grid.append(row)
            log(str(row))
            if best is None or row["loso_uar"] > best[0]["loso_uar"]:
                best = (row, logits, cols)
    assert best is not None
    chosen, logits, cols = best
    temperature = fit_temperature(logits, y)
    ece_before = expected_calibration_error(softmax(logits), y)
    ece_after = expected_calibration_error(softmax(logits / temperature), y)

    scaler = StandardScaler().fit(x[:, cols])
    clf = make_model(chosen["C"]).fit(scaler.transform(x[:, cols]), y)
    weight = clf.coef_.T / scaler.scale_[:, None]  # fold the standardisation into the weights
    bias = clf.intercept_ - (scaler.mean_ / scaler.scale_) @ clf.coef_.T
    report = {"selected": chosen, "grid": grid, "temperature": round(temperature, 4),
              "loso_ece_before": round(ece_before, 4), "loso_ece_after": round(ece_after, 4),
              "speakers": sorted(set(spk.tolist())), "n": len(y), "train_s": round(time.perf_counter() - t0, 1)}
    LinearHead(weight, bias, tuple(labels), temperature,
               {"features": "clip mean of Whisper-base encoder layers (512 each, concatenated in this order)",
                "whisper_layers": chosen["layers"], "dev": {k: v for k, v in chosen.items() if k != "per_speaker_uar"},
                "loso_ece_before": report["loso_ece_before"], "loso_ece_after": report["loso_ece_after"]}
               ).save(args.out / "voice_linear")
    (args.work / "report.json").write_text(json.dumps(report, indent=2))
    log(json.dumps({k: v for k, v in report.items() if k != "grid"}, indent=2))


if __name__ == "__main__":
    main()
