"""Rebuild the voice arousal calibration (``emollama/assets/heads/voice/arousal.json``) on EmoDB.

Samples: every EmoDB dev file through the same prosody analyser as ``analyze`` (VAD speech,
Praat measures; :class:`~emollama.perception.voice.VoiceAnalyzer`). Aroused = angry, happy,
fear; calm = neutral, bored, sad; disgust is left out (its arousal in EmoDB is mixed). Selection
is leave-one-speaker-out over C, by balanced accuracy of the pooled out-of-fold predictions; the
shipped model is refitted on every speaker. ``--check-clips`` then scores another labelled clip
manifest (calm: neutral, calm, bored, sad; aroused: angry, happy, fear, surprise) without fitting
anything on it — the RAVDESS dev takes are another corpus, language and speaker.

    OMP_NUM_THREADS=1 python -m emollama.train.heads.arousal --data ../shared/data/emodb \\
        --check-clips ../shared/data/clips_ravdess/labels.csv
"""

from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from emollama.files import atomic_write_npz
from emollama.heads.arousal import AROUSAL_FILE, FEATURES, ArousalModel
from emollama.labels import normalize_label

AROUSED = ("angry", "happy", "fear", "surprise")
CALM = ("neutral", "bored", "sad", "calm")
C_VALUES = (0.01, 0.1, 1.0, 10.0)


def measures(clues: object) -> list[float]:
    """The :data:`FEATURES` of one clip's voice clues (NaN where Praat measured nothing)."""
    out = []
    for section, key in FEATURES:
        value = getattr(clues, section).get(key)
        out.append(np.nan if value is None else float(value))
    return out


def _impute(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(x), mean, x)


def fit(x: np.ndarray, y: np.ndarray, c: float) -> ArousalModel:
    """Standardise on ``x`` (missing = mean), fit a balanced logistic regression."""
    mean = np.nanmean(x, axis=0)
    filled = _impute(x, mean)
    std = filled.std(axis=0).clip(min=1e-6)
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit((filled - mean) / std, y)
    return ArousalModel([round(float(v), 6) for v in mean], [round(float(v), 6) for v in std],
                        [round(float(v), 6) for v in clf.coef_[0]], round(float(clf.intercept_[0]), 6))


def _score(model: ArousalModel, x: np.ndarray) -> np.ndarray:
    names = [f"{s}.{k}" for s, k in FEATURES]
    out = []
    for row in x:
        sections: dict[str, dict[str, float | None]] = {"prosody": {}, "relative": {}}
        for name, v in zip(names, row, strict=True):
            section, key = name.split(".", 1)
            sections[section][key] = None if np.isnan(v) else float(v)
        a = model.arousal(sections)
        out.append(np.nan if a is None else a)
    return np.array(out)


def _binary_report(y: np.ndarray, arousal: np.ndarray) -> dict:
    ok = ~np.isnan(arousal)
    pred = arousal[ok] > 0
    return {"n": int(ok.sum()), "balanced_accuracy": round(balanced_accuracy_score(y[ok], pred), 4),
            "auc": round(roc_auc_score(y[ok], arousal[ok]), 4),
            "share_calm_called_highly_aroused": round(float(np.mean(arousal[ok][y[ok] == 0] >= 0.5)), 4),
            "share_aroused_called_highly_aroused": round(float(np.mean(arousal[ok][y[ok] == 1] >= 0.5)), 4)}


def _emodb(data: Path, work: Path, log: Callable[[str], None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """EmoDB prosody, cached per data folder and labels file (a changed copy is measured again)."""
    labels = (data / "labels.csv").resolve()
    key = hashlib.sha1(f"{labels}|{labels.stat().st_mtime_ns}|{[k for _, k in FEATURES]}".encode()).hexdigest()[:12]
    cache = work / f"emodb_prosody.{key}.npz"
    if cache.is_file():
        with np.load(cache) as z:
            return z["x"], z["y"], z["spk"]
    from emollama.perception.voice import VoiceAnalyzer
    from emollama.train.heads.voice import load_audio

    analyzer = VoiceAnalyzer(calibrated_arousal=False)  # measures only: this recipe makes the calibration
    with open(data / "labels.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if normalize_label(r["label"]) in AROUSED + CALM]
    x, y, spk = [], [], []
    for i, r in enumerate(rows):
        clues, _ = analyzer.analyze(load_audio(data / r["path"]))
        if clues.status != "ok":
            continue
        x.append(measures(clues))
        y.append(int(normalize_label(r["label"]) in AROUSED))
        spk.append(r["speaker_id"])
        if (i + 1) % 50 == 0:
            log(f"EmoDB prosody {i + 1}/{len(rows)}")
    out = np.array(x), np.array(y), np.array(spk)
    work.mkdir(parents=True, exist_ok=True)
    atomic_write_npz(cache, x=out[0], y=out[1], spk=out[2])
    return out


def _clips(manifest: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from emollama.media.decode import MediaReader
    from emollama.perception.voice import VoiceAnalyzer

    analyzer = VoiceAnalyzer(calibrated_arousal=False)
    with open(manifest, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if normalize_label(r["label"]) in AROUSED + CALM]
    x, y, names = [], [], []
    for r in rows:
        clues, _ = analyzer.analyze(MediaReader(manifest.parent / r["path"]).audio())
        if clues.status == "ok":
            x.append(measures(clues))
            y.append(int(normalize_label(r["label"]) in AROUSED))
            names.append(normalize_label(r["label"]))
    return np.array(x), np.array(y), names


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m emollama.train.heads.arousal", description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/emodb"))
    ap.add_argument("--check-clips", type=Path, default=None, help="a labelled clip manifest scored, never fitted")
    ap.add_argument("--out", type=Path, default=AROUSAL_FILE)
    ap.add_argument("--work", type=Path, default=Path("/tmp/emollama_arousal"))
    args = ap.parse_args(argv)
    log = functools.partial(print, flush=True)
    t0 = time.perf_counter()
    x, y, spk = _emodb(args.data, args.work, log)
    grid = []
    for c in C_VALUES:
        oof = np.zeros(len(y))
        for s in np.unique(spk):
            oof[spk == s] = _score(fit(x[spk != s], y[spk != s], c), x[spk == s])
        grid.append({"C": c, **_binary_report(y, oof)})
        log(str(grid[-1]))
    best = max(grid, key=lambda r: (r["balanced_accuracy"], r["auc"]))
    model = fit(x, y, best["C"])
    model.meta = {"data": f"EmoDB dev speakers ({len(np.unique(spk))}), {len(y)} files: aroused = angry/happy/fear, "
                          "calm = neutral/bored/sad", "selection": "leave-one-speaker-out over C",
                  "loso": best, "grid": grid}
    if args.check_clips is not None:
        cx, cy, names = _clips(args.check_clips)
        scored = _score(model, cx)
        per_label = {k: round(float(np.nanmean(scored[[n == k for n in names]])), 3) for k in sorted(set(names))}
        model.meta["check_clips"] = {"manifest": str(args.check_clips), **_binary_report(cy, scored),
                                     "mean_arousal_per_label": per_label}
        log(json.dumps(model.meta["check_clips"], indent=1))
    model.meta["train_s"] = round(time.perf_counter() - t0, 1)
    model.save(args.out)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
