"""Closed-set evaluation: turn prediction rows into labels (two ways) and score them.

Two parsing modes are always computed side by side:

* **strict** — a label is read with :func:`~emollama.label_parsing.parse_label`; a missing
  prediction, an error line, unparseable text, or a label outside the set counts as wrong and is
  listed by name. This is the honest number.
* **official** — the original Emotion-LLaMA rule (:func:`parse_label_official`): last word of the
  answer, anything unrecognised becomes ``neutral``. Missing predictions also become ``neutral`` so
  both modes score the same reference samples. Use it to compare with published tables.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from emollama.errors import UnknownLabelError
from emollama.evaluate.errors import EvaluationInputError, LabelMismatchError
from emollama.evaluate.metrics import (
    UNPARSED,
    ClassificationScores,
    classification_scores,
    mean_squared_error,
    mer_multi_score,
)
from emollama.evaluate.readers import Alignment, Record, Table, _list, align, alignment_warnings
from emollama.label_parsing import parse_label, parse_label_official
from emollama.labels import LABEL_SETS, LabelSet, get_label_set, normalize_label

#: Tried in this order when no label set is given: the smallest standard set that covers every
#: reference label is the one the numbers are meant for.
AUTO_LABEL_SET_ORDER = ("mer6", "dfew7", "merr9", "ekman7")


@dataclass(frozen=True)
class SampleOutcome:
    """How one reference sample was scored in each mode (one row of ``samples.csv``)."""

    name: str
    reference: str
    strict: str  # a label, or UNPARSED
    strict_status: str  # ok | missing | error | unparseable | not_in_set
    official: str
    source: str  # label | text | none
    valence_ref: float | None = None
    valence_pred: float | None = None


@dataclass(frozen=True)
class ClassificationResult:
    """Everything the report and the metrics JSON need."""

    label_set: str
    label_set_auto: bool
    strict: ClassificationScores
    official: ClassificationScores
    samples: tuple[SampleOutcome, ...]
    alignment: Alignment
    warnings: tuple[str, ...]
    valence: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        status_counts: dict[str, int] = {}
        for sample in self.samples:
            status_counts[sample.strict_status] = status_counts.get(sample.strict_status, 0) + 1
        return {
            "label_set": self.label_set,
            "label_set_auto": self.label_set_auto,
            "n_references": len(self.samples),
            "strict": _scores_dict(self.strict),
            "official": _scores_dict(self.official),
            "strict_status_counts": status_counts,
            "unscored_in_strict": {
                status: [s.name for s in self.samples if s.strict_status == status]
                for status in ("missing", "error", "unparseable", "not_in_set")
            },
            "valence": self.valence,
            "alignment": self.alignment.to_dict(),
            "warnings": list(self.warnings),
        }


def _scores_dict(scores: ClassificationScores) -> dict[str, Any]:
    out = asdict(scores)
    out["per_class"] = {c["label"]: {k: v for k, v in c.items() if k != "label"} for c in out["per_class"]}
    out["confusion"] = {
        "rows": list(scores.labels),
        "columns": [*scores.labels, UNPARSED],
        "counts": [list(row) for row in scores.confusion],
    }
    out["labels"] = list(scores.labels)
    return out


def reference_labels(refs: Table) -> dict[str, str]:
    """Canonical reference label per name; every unknown spelling is listed in one error."""
    out: dict[str, str] = {}
    unlabeled: list[str] = []
    unknown: dict[str, list[str]] = {}
    for name, record in refs.records.items():
        if not record.label:
            unlabeled.append(name)
            continue
        try:
            out[name] = normalize_label(record.label)
        except UnknownLabelError:
            unknown.setdefault(record.label, []).append(name)
    if unlabeled and len(unlabeled) == len(refs.records):
        raise EvaluationInputError(
            f"{refs.path}: no label column found (columns: {list(refs.columns)[:12]}); "
            "classification references need name and label"
        )
    if unlabeled:
        raise EvaluationInputError(
            f"{refs.path}: {len(unlabeled)} reference(s) have an empty label: {_list(unlabeled)}"
        )
    if unknown:
        detail = "; ".join(f"{label!r} ({_list(names, 3)})" for label, names in unknown.items())
        raise LabelMismatchError(f"{refs.path}: unknown reference label(s): {detail}")
    return out


def choose_label_set(labels: set[str], requested: str | LabelSet | None) -> tuple[LabelSet, bool]:
    """The requested set (checked to cover the references) or the smallest standard one that does."""
    if requested is not None:
        chosen = get_label_set(requested)
        outside = sorted(labels - set(chosen.labels))
        if outside:
            raise LabelMismatchError(
                f"reference label(s) {outside} are not in label set {chosen.name} {list(chosen.labels)}; "
                "choose another --label-set"
            )
        return chosen, False
    for name in AUTO_LABEL_SET_ORDER:
        if labels <= set(LABEL_SETS[name].labels):
            return LABEL_SETS[name], True
    raise LabelMismatchError(
        f"no standard label set covers the reference labels {sorted(labels)}; "
        f"sets: {', '.join(f'{n} {list(s.labels)}' for n, s in LABEL_SETS.items())}"
    )


def _fallback(labels: LabelSet) -> str:
    return "neutral" if "neutral" in labels else labels.labels[0]


def predict_one(record: Record | None, labels: LabelSet) -> tuple[str, str, str, str]:
    """``(strict_label, strict_status, official_label, source)`` for one prediction row."""
    if record is None:
        return UNPARSED, "missing", _fallback(labels), "none"
    if record.status == "error":
        return UNPARSED, "error", _fallback(labels), "none"
    if record.label:
        try:
            canonical = normalize_label(record.label)
        except UnknownLabelError:
            canonical = None
        if canonical is not None:
            if canonical in labels:
                return canonical, "ok", canonical, "label"
            return UNPARSED, "not_in_set", _fallback(labels), "label"
        # A free-text answer stored in the label field: parse it like text.
        parsed = parse_label(record.label, labels)
        official = parse_label_official(record.label, labels)
        return (parsed.label or UNPARSED), parsed.status, official, "label"
    if record.text:
        parsed = parse_label(record.text, labels)
        return (parsed.label or UNPARSED), parsed.status, parse_label_official(record.text, labels), "text"
    return UNPARSED, "unparseable", _fallback(labels), "none"


def evaluate_classification(
    refs: Table, preds: Table, label_set: str | LabelSet | None = None
) -> ClassificationResult:
    """Score predictions against references in strict and official modes (see module docstring)."""
    truth = reference_labels(refs)
    labels, auto = choose_label_set(set(truth.values()), label_set)
    alignment = align(refs, preds)
    samples = []
    for name in alignment.names:
        record = preds.records.get(name)
        strict, status, official, source = predict_one(record, labels)
        samples.append(
            SampleOutcome(
                name=name,
                reference=truth[name],
                strict=strict,
                strict_status=status,
                official=official,
                source=source,
                valence_ref=refs.records[name].valence,
                valence_pred=record.valence if record is not None and record.status == "ok" else None,
            )
        )
    y_true = [s.reference for s in samples]
    strict_scores = classification_scores(y_true, [s.strict for s in samples], labels.labels)
    official_scores = classification_scores(y_true, [s.official for s in samples], labels.labels)
    warnings = [*refs.warnings, *preds.warnings, *alignment_warnings(alignment, preds)]
    unparsed = [s.name for s in samples if s.strict_status in ("unparseable", "not_in_set")]
    if unparsed:
        warnings.append(
            f"{len(unparsed)} prediction(s) gave no label in {labels.name} (strict: wrong; "
            f"official: {_fallback(labels)}): {_list(unparsed)}"
        )
    valence = _valence(samples, strict_scores, official_scores, warnings)
    if auto:
        warnings.append(
            f"label set {labels.name} chosen automatically from the reference labels; "
            "pass --label-set to fix it"
        )
    return ClassificationResult(
        label_set=labels.name,
        label_set_auto=auto,
        strict=strict_scores,
        official=official_scores,
        samples=tuple(samples),
        alignment=alignment,
        warnings=tuple(warnings),
        valence=valence,
    )


def _valence(
    samples: list[SampleOutcome],
    strict: ClassificationScores,
    official: ClassificationScores,
    warnings: list[str],
) -> dict[str, Any] | None:
    """Valence MSE and the MER2023 MULTI score, over samples that have both values."""
    with_ref = [s for s in samples if s.valence_ref is not None]
    if not with_ref:
        return None
    pairs = [s for s in with_ref if s.valence_pred is not None]
    if not pairs:
        warnings.append(
            f"references carry valence for {len(with_ref)} sample(s) but no prediction has a "
            "valence; MULTI score not computed"
        )
        return {
            "n_reference": len(with_ref),
            "n_pairs": 0,
            "mse": None,
            "multi_strict": None,
            "multi_official": None,
        }
    if len(pairs) < len(with_ref):
        warnings.append(
            f"valence MSE uses {len(pairs)} of {len(with_ref)} samples with a reference valence "
            "(the others have no predicted valence)"
        )
    mse = mean_squared_error([s.valence_ref for s in pairs], [s.valence_pred for s in pairs])
    return {
        "n_reference": len(with_ref),
        "n_pairs": len(pairs),
        "mse": mse,
        "multi_strict": mer_multi_score(strict.weighted_f1, mse),
        "multi_official": mer_multi_score(official.weighted_f1, mse),
    }
