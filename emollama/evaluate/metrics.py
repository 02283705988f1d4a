"""Metrics as pure functions of label lists and numbers.

Kept free of I/O and of parsing so each one can be checked against scikit-learn or a hand count in
isolation. Conventions that matter for comparing with published numbers:

* Every reference sample is scored. A prediction that is missing or unparseable is passed in as a
  value outside ``labels`` (for example :data:`UNPARSED`): it lowers recall of the true class and
  accuracy, and adds nothing to any class's precision column, which is what sklearn does with
  ``labels=`` restricted to the label set.
* Weighted F1 (the MER2023/2024 headline and what Emotion-LLaMA reports) weights each class by its
  reference support. Macro F1 and UAR average over the classes *present in the references*, because
  a class with no reference sample has no recall to average (DFEW's UAR is defined that way).
* WAR (DFEW) is recall weighted by support, which equals accuracy; it is reported under both names
  because papers use both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Stand-in prediction for "no usable label" (missing line, error status, unparseable text).
UNPARSED = "<unparsed>"


@dataclass(frozen=True)
class ClassScores:
    """Precision, recall, F1 and support of one class."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int
    predicted: int


@dataclass(frozen=True)
class ClassificationScores:
    """Every closed-set number for one (references, predictions) pair."""

    n: int
    accuracy: float
    weighted_f1: float
    weighted_precision: float
    weighted_recall: float
    macro_f1: float
    uar: float
    war: float
    per_class: tuple[ClassScores, ...]
    labels: tuple[str, ...]
    #: rows = reference label (in ``labels`` order), columns = ``labels`` then one "other" column
    #: counting predictions outside the label set (missing, unparseable, not in set).
    confusion: tuple[tuple[int, ...], ...]


def confusion_matrix(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Counts with one extra last column for predictions not in ``labels``.

    A reference label not in ``labels`` is a caller error (it could not be scored), so it raises.
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} references but {len(y_pred)} predictions")
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels) + 1), dtype=np.int64)
    for truth, pred in zip(y_true, y_pred, strict=True):
        if truth not in index:
            raise ValueError(f"reference label {truth!r} is not in the label set {list(labels)}")
        matrix[index[truth], index.get(pred, len(labels))] += 1
    return matrix


def _safe_div(num: float, den: float) -> float:
    """0 for 0/0, matching sklearn's ``zero_division=0`` so cross-checks agree."""
    return float(num) / float(den) if den else 0.0


def classification_scores(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> ClassificationScores:
    """Accuracy, weighted/macro F1, UAR/WAR, per-class P/R/F1 and the confusion matrix."""
    if not y_true:
        raise ValueError("no samples to score")
    labels = tuple(labels)
    matrix = confusion_matrix(y_true, y_pred, labels)
    k = len(labels)
    support = matrix.sum(axis=1)
    predicted = matrix[:, :k].sum(axis=0)
    diag = np.diag(matrix[:, :k])
    per_class = []
    for i, label in enumerate(labels):
        precision = _safe_div(diag[i], predicted[i])
        recall = _safe_div(diag[i], support[i])
        f1 = _safe_div(2 * precision * recall, precision + recall)
        per_class.append(ClassScores(label, precision, recall, f1, int(support[i]), int(predicted[i])))
    n = int(support.sum())
    present = [c for c in per_class if c.support > 0]
    weights = np.array([c.support for c in per_class], dtype=float) / n
    accuracy = _safe_div(diag.sum(), n)
    return ClassificationScores(
        n=n,
        accuracy=accuracy,
        weighted_f1=float(np.dot(weights, [c.f1 for c in per_class])),
        weighted_precision=float(np.dot(weights, [c.precision for c in per_class])),
        weighted_recall=float(np.dot(weights, [c.recall for c in per_class])),
        macro_f1=float(np.mean([c.f1 for c in present])),
        uar=float(np.mean([c.recall for c in present])),
        war=float(np.dot(weights, [c.recall for c in per_class])),
        per_class=tuple(per_class),
        labels=labels,
        confusion=tuple(tuple(int(v) for v in row) for row in matrix),
    )


def mean_squared_error(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    """Plain MSE; the caller decides which samples have both values."""
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} reference values but {len(y_pred)} predicted values")
    if not y_true:
        raise ValueError("no valence pairs to score")
    diff = np.asarray(y_true, dtype=float) - np.asarray(y_pred, dtype=float)
    return float(np.mean(diff**2))


def mer_multi_score(weighted_f1: float, valence_mse: float) -> float:
    """MER2023 MER-MULTI / MER-NOISE score: weighted F1 − 0.25 × valence MSE."""
    return weighted_f1 - 0.25 * valence_mse


@dataclass(frozen=True)
class SetScores:
    """MER-OV per-sample set scores: accuracy is |G∩P|/|P| (a precision), recall |G∩P|/|G|."""

    accuracy: float
    recall: float


def set_scores(reference: set[str], predicted: set[str]) -> SetScores:
    """Set accuracy and recall for one sample; an empty prediction scores 0 on both (as MER2024).

    An empty reference set cannot define recall, so it is a caller error: such samples are
    reported and excluded before scoring.
    """
    if not reference:
        raise ValueError("reference set is empty")
    if not predicted:
        return SetScores(0.0, 0.0)
    hit = len(reference & predicted)
    return SetScores(hit / len(predicted), hit / len(reference))


def jaccard(a: set[str], b: set[str]) -> float:
    """|A∩B|/|A∪B|, with two empty sets counting as full agreement (nothing claimed, nothing missed)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)
