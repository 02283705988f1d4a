"""Pseudo-labels: confident ``analyze`` answers on unlabelled clips become fusion training data.

The second half of the SZTU-CMU MER2024 recipe: label the unlabelled clips with the current
model, keep only the answers it is sure of, and train on them next to the labelled data. Here the
answers come from ``emollama analyze --manifest clips.csv --out preds.jsonl --labels dfew7`` (the
default tier on the head's own label set, as the threshold was measured; any tier's JSONL works),
and a clip is kept when its top score reaches ``min_confidence``
(:data:`DEFAULT_MIN_CONFIDENCE`) and its label is one the fusion head has (dfew7). The kept clips
are written as a manifest (``path,label,confidence``) that ``python -m emollama.train.fusion
--pseudo`` adds to the training clips of every fold and of the shipped head, never to the scored
ones.

The threshold trades how many clips are kept against how many of them are right;
:func:`threshold_tradeoff` measures that on labelled clips whose labels were hidden (the fusion
recipe reports it on the dev takes from its out-of-fold probabilities, i.e. from heads that never
saw the take), and ``docs/heads.md`` gives the numbers behind the default.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from emollama.errors import InputError
from emollama.files import atomic_write_text
from emollama.labels import get_label_set

#: Least top score for a pseudo-label (see the trade-off in docs/heads.md).
DEFAULT_MIN_CONFIDENCE = 0.6
#: The fusion head's classes (:class:`~emollama.recognize.conv_attention.ConvAttentionConfig`), named
#: here without importing torch, so the CLI stays quick to start.
FUSION_LABELS = get_label_set("dfew7").labels


@dataclass(frozen=True)
class PseudoLabel:
    path: str
    label: str
    confidence: float


def read_answers(jsonl: Path) -> tuple[list[PseudoLabel], list[str]]:
    """Every answered clip of an ``analyze --manifest`` output, and the lines that could not be used."""
    answers: list[PseudoLabel] = []
    skipped: list[str] = []
    try:
        lines = Path(jsonl).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {jsonl}: {exc}") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if rec.get("status") != "ok":
                skipped.append(f"line {n}: {rec.get('path')}: analysis failed ({rec.get('error')})")
                continue
            result = rec["result"]
            label = result["label"]
            if label is None:
                skipped.append(f"line {n}: {rec['path']}: no label (no usable face, voice or words)")
                continue
            answers.append(PseudoLabel(rec["path"], label, float(result["scores"][label])))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InputError(f"{jsonl}, line {n}: not a record of `emollama analyze --manifest`") from None
    return answers, skipped


def select(answers: Sequence[PseudoLabel], min_confidence: float = DEFAULT_MIN_CONFIDENCE,
           labels: Sequence[str] = FUSION_LABELS) -> tuple[list[PseudoLabel], dict[str, int]]:
    """The answers confident enough and in ``labels``; counts of why the others were left out."""
    if not 0.0 < min_confidence <= 1.0:
        raise InputError(f"--min-confidence must be in (0, 1], got {min_confidence}")
    kept = [a for a in answers if a.label in labels and a.confidence >= min_confidence]
    why = {"below_min_confidence": sum(a.label in labels and a.confidence < min_confidence for a in answers),
           "label_not_in_fusion_classes": sum(a.label not in labels for a in answers)}
    return kept, why


HEADER = ("path", "label", "confidence", "source")


def write_manifest(rows: Sequence[PseudoLabel], dest: Path) -> None:
    """``path,label,confidence,source`` with absolute paths (the manifest may live anywhere)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HEADER)
    for r in rows:
        writer.writerow([str(Path(r.path).resolve()), r.label, f"{r.confidence:.4f}", "pseudo"])
    atomic_write_text(dest, buf.getvalue())


def threshold_tradeoff(confidence: Sequence[float], correct: Sequence[bool],
                       thresholds: Sequence[float] = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)) -> list[dict]:
    """For each threshold: the share of clips kept and the accuracy of the kept labels."""
    out = []
    for t in thresholds:
        kept = [c for conf, c in zip(confidence, correct, strict=True) if conf >= t]
        out.append({"min_confidence": t, "kept": len(kept), "keep_rate": round(len(kept) / max(1, len(correct)), 3),
                    "accuracy_of_kept": round(sum(kept) / len(kept), 3) if kept else None})
    return out


def is_pseudo_label_manifest(path: Path) -> bool:
    """Whether ``path`` is a manifest this module wrote (so writing it again loses nothing)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.readline().strip() == ",".join(HEADER)
    except (OSError, UnicodeDecodeError):
        return False
