"""Measure one perception head (face, voice, text) or the whole ``analyze`` pipeline (clip) on a manifest.

Why a separate evaluator from ``emollama evaluate``: that command scores prediction files written
elsewhere; this one *runs* a model over labelled media so every number in the heads' model cards
can be reproduced with one command. Rules:

* Reference labels pass through :func:`emollama.labels.normalize_label` (the one synonym table).
* Classes: the model's own output classes by default, or ``--labels SET`` (model scores are then
  moved onto the set with :func:`emollama.labels.project_scores`). A reference label outside those
  classes cannot be predicted: it is listed under ``classes_not_covered`` and its items are scored
  as wrong (never renamed to a near label).
* An item that fails (unreadable file, no face, unknown label spelling) is counted and listed in
  ``failed`` and left out of the metrics; ``n_failed`` sits next to ``n``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emollama.errors import EmollamaError, UnknownLabelError
from emollama.evaluate.errors import EvaluationInputError
from emollama.evaluate.metrics import ClassificationScores, classification_scores
from emollama.evaluate.plots import confusion_matrix_png
from emollama.labels import get_label_set, normalize_label, project_scores

KINDS = ("face", "voice", "text", "clip")
#: Short side (px) up to which a face image is taken as an already-cropped face.
CROP_MAX_SIDE = 128
NOT_COVERED = "<not covered>"


@dataclass
class ManifestItem:
    row: int
    source: str  # path as written, or the text
    label: str


@dataclass
class EvalOutcome:
    kind: str
    classes: tuple[str, ...]
    scores: ClassificationScores | None
    references: list[str] = field(default_factory=list)
    predictions: list[str] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    not_covered: dict[str, int] = field(default_factory=dict)
    model: str = ""

    def to_json(self) -> dict[str, Any]:
        s = self.scores
        out: dict[str, Any] = {"kind": self.kind, "model": self.model, "classes": list(self.classes),
                               "n": s.n if s else 0, "n_failed": len(self.failed)}
        if s is not None:
            out.update({"accuracy": round(s.accuracy, 4), "macro_f1": round(s.macro_f1, 4),
                        "weighted_f1": round(s.weighted_f1, 4), "uar": round(s.uar, 4),
                        "per_class_recall": {c.label: round(c.recall, 4) for c in s.per_class if c.support},
                        "confusion_matrix": {"rows": list(s.labels), "columns": [*s.labels, "other"],
                                             "counts": [list(r) for r in s.confusion]}})
        out["classes_not_covered"] = self.not_covered
        out["failed"] = self.failed
        return out


def read_manifest(path: Path, kind: str) -> list[ManifestItem]:
    """Rows with ``path`` (or ``text`` for the text kind) and ``label``."""
    if not path.is_file():
        raise EvaluationInputError(f"manifest not found: {path}")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        cols = set(reader.fieldnames or [])
        source_col = "text" if kind == "text" and "text" in cols else "path"
        if source_col not in cols or "label" not in cols:
            need = "'text' (or 'path')" if kind == "text" else "'path'"
            raise EvaluationInputError(f"{path}: needs columns {need} and 'label'; found {sorted(cols)}")
        items = [ManifestItem(i + 2, row[source_col] or "", row["label"] or "") for i, row in enumerate(reader)]
    if not items:
        raise EvaluationInputError(f"{path}: no rows")
    return items


def _load_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


class _FacePredictor:
    def __init__(self) -> None:
        from emollama.heads.face import load_expression_model

        self.model = load_expression_model()
        self.name = self.model.name
        self.classes = tuple(normalize_label(y) for y in self.model.labels)
        self._analyzer = None

    def __call__(self, source: Path) -> np.ndarray:
        rgb = _load_rgb(source)
        if min(rgb.shape[:2]) > CROP_MAX_SIDE:  # a photo: find the face first
            from emollama.media.decode import Frame
            from emollama.perception.face import FaceAnalyzer, aligned_crop

            if self._analyzer is None:
                self._analyzer = FaceAnalyzer(expression=self.model)
            with self._analyzer._mesh(static=True) as mesh:
                faces = self._analyzer._faces(Frame(0, 0.0, rgb), mesh)
            if not faces:
                raise EvaluationInputError("no face found")
            lm = max(faces, key=lambda f: (f[1][2] - f[1][0]) * (f[1][3] - f[1][1]))[0]
            rgb = aligned_crop(rgb, lm)
        return self.model.predict([rgb])[0]


class _VoicePredictor:
    def __init__(self) -> None:
        from emollama.heads.voice import VoiceEmotionHead

        self.head = VoiceEmotionHead()
        self.name = self.head.name
        self.classes = self.head.head.labels

    def __call__(self, source: Path) -> np.ndarray:
        from emollama.media.decode import MediaReader

        audio = MediaReader(source).audio()
        if audio is None or audio.size == 0:
            raise EvaluationInputError("no audio track")
        return self.head.predict(audio)


class _TextPredictor:
    def __init__(self) -> None:
        from emollama.heads.text import TextEmotionHead

        self.head = TextEmotionHead()
        self.name = self.head.name
        self.classes = self.head.labels

    def __call__(self, source: str) -> np.ndarray:
        if not source.strip():
            raise EvaluationInputError("empty text")
        return self.head.predict([source])[0]


class ClipPredictor:
    def __init__(self, label_set: str, analyzer: Any = None) -> None:
        if analyzer is None:
            from emollama.api import Analyzer

            analyzer = Analyzer(label_set=label_set)
        self.analyzer = analyzer
        self.label_set = label_set
        self.name = "emollama analyze (clues tier)"
        self.classes = get_label_set(label_set).labels

    def __call__(self, source: Path) -> np.ndarray:
        result = self.analyzer.analyze(source, label_set=self.label_set)
        if result.label is None:
            raise EvaluationInputError("; ".join(result.warnings) or "no label")
        return np.array([result.scores[y] for y in self.classes])


def make_predictor(kind: str, label_set: str | None) -> Any:
    if kind == "face":
        return _FacePredictor()
    if kind == "voice":
        return _VoicePredictor()
    if kind == "text":
        return _TextPredictor()
    if kind == "clip":
        return ClipPredictor(label_set or "merr9")
    raise EvaluationInputError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")


def evaluate_model(kind: str, manifest: Path, label_set: str | None = None, predictor: Any = None,
                   progress: Callable[[int, int], None] | None = None) -> EvalOutcome:
    """Run ``predictor`` (built from ``kind`` when not given) over the manifest and score it."""
    items = read_manifest(manifest, kind)
    predictor = predictor if predictor is not None else make_predictor(kind, label_set)
    model_classes = tuple(predictor.classes)
    target = get_label_set(label_set).labels if label_set else model_classes
    outcome = EvalOutcome(kind, target, None, model=predictor.name)
    for i, item in enumerate(items):
        if progress:
            progress(i, len(items))
        try:
            ref = normalize_label(item.label)
        except UnknownLabelError as exc:
            outcome.failed.append({"row": item.row, "item": item.source, "reason": str(exc)})
            continue
        try:
            source: Any = item.source if kind == "text" else (manifest.parent / item.source)
            if kind != "text" and not source.is_file():
                raise EvaluationInputError(f"file not found: {source}")
            probs = np.asarray(predictor(source), dtype=float)
        except (EmollamaError, OSError, ValueError, RuntimeError) as exc:
            outcome.failed.append({"row": item.row, "item": item.source, "reason": str(exc) or type(exc).__name__})
            continue
        scores = dict(zip(model_classes, probs, strict=True))
        if label_set:
            scores = project_scores(scores, label_set)
        pred = max(target, key=lambda y: scores.get(y, 0.0))
        if ref not in target:
            outcome.not_covered[ref] = outcome.not_covered.get(ref, 0) + 1
        outcome.references.append(ref)
        outcome.predictions.append(pred)
    if outcome.references:
        # Uncovered references get their own confusion rows so their items count as wrong.
        rows = target + tuple(sorted(outcome.not_covered))
        outcome.scores = classification_scores(outcome.references, outcome.predictions, rows)
    return outcome


def write_outputs(outcome: EvalOutcome, out_dir: Path) -> dict[str, Path]:
    """metrics.json and confusion.png (when anything was scored)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": out_dir / "metrics.json"}
    paths["metrics"].write_text(json.dumps(outcome.to_json(), indent=2, ensure_ascii=False) + "\n")
    if outcome.scores is not None:
        paths["confusion"] = confusion_matrix_png(outcome.scores, out_dir / "confusion.png",
                                                  f"{outcome.kind}: {outcome.model}")
    return paths
