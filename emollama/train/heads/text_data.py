"""GoEmotions-Ekman, MELD and the Chinese set for the text recipes: the readers, the label order and the dev measure.

Training rows are GoEmotions-Ekman rows with exactly one label (multi-label rows have no single
target for a softmax) plus every MELD utterance. Every text recipe selects by the mean of
GoEmotions-dev macro-F1 (single-label rows) and MELD-dev weighted-F1 (:func:`dev_scores`). The
multilingual recipe can also read the Chinese rows written by ``scripts/zh_text/build_set.py``
(:func:`read_labelled_tsv`).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

from emollama.labels import normalize_label

#: Output order of the text heads (Ekman + neutral, canonical words).
LABELS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def read_goemotions(path: Path, names: list[str]) -> tuple[list[str], np.ndarray]:
    """Single-label rows only: (texts, label indices into LABELS)."""
    texts, ys = [], []
    with open(path, newline="") as fh:
        for row in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            ids = row[1].split(",")
            if len(ids) == 1:
                texts.append(row[0])
                ys.append(LABELS.index(normalize_label(names[int(ids[0])])))
    return texts, np.asarray(ys)


def read_meld(path: Path) -> tuple[list[str], np.ndarray]:
    """Every utterance of a MELD csv: (texts, label indices into LABELS)."""
    texts, ys = [], []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            texts.append(row["Utterance"].replace("\x92", "'"))
            ys.append(LABELS.index(normalize_label(row["Emotion"])))
    return texts, np.asarray(ys)


def read_labelled_tsv(path: Path) -> tuple[list[str], np.ndarray]:
    """``label<TAB>text[<TAB>id]`` lines (the Chinese set's form): (texts, label indices into LABELS)."""
    texts, ys = [], []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 2 or not parts[1]:
                raise ValueError(f"{path}:{number}: expected 'label<TAB>text'")
            texts.append(parts[1])
            ys.append(LABELS.index(normalize_label(parts[0])))
    return texts, np.asarray(ys)


def read_corpora(data: Path, *splits: str) -> dict[str, dict[str, tuple[list[str], np.ndarray]]]:
    """``{"goemotions": {split: rows}, "meld": {split: rows}}`` for ``splits`` (e.g. "train", "dev") of ``data``."""
    names = (data / "goemotions_ekman_labels.txt").read_text().split()
    return {"goemotions": {s: read_goemotions(data / f"goemotions_ekman_{s}.tsv", names) for s in splits},
            "meld": {s: read_meld(data / f"meld_{s}.csv") for s in splits}}


def dev_scores(logits: dict[str, np.ndarray], ys: dict[str, np.ndarray], bias: np.ndarray) -> dict[str, float]:
    """GoEmotions macro-F1, MELD weighted-F1 and their mean for ``logits + bias`` (keys "goemotions", "meld")."""
    go = f1_score(ys["goemotions"], (logits["goemotions"] + bias).argmax(1), average="macro")
    meld = f1_score(ys["meld"], (logits["meld"] + bias).argmax(1), average="weighted")
    return {"goemotions_dev_macro_f1": round(float(go), 4), "meld_dev_weighted_f1": round(float(meld), 4),
            "mean": round(float(go + meld) / 2, 4)}
