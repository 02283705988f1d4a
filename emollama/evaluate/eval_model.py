"""Measure one perception head (face, voice, text) or the whole ``analyze`` pipeline (clip) on a manifest.

Why a separate evaluator from ``emollama evaluate``: that command scores prediction files written
elsewhere; this one *runs* a model over labelled media so every number in the heads' model cards
can be reproduced with one command. Rules:

* Reference labels pass through :func:`emollama.labels.normalize_label` (the one synonym table).
* Classes: the model's own output classes by default, or ``--labels SET`` (model scores are then
  moved onto the set with :func:`emollama.labels.project_scores`). A reference label outside those
  classes cannot be predicted: it is listed under ``classes_not_covered`` and its items are scored
  as wrong (never renamed to a near label).
* Each kind runs exactly what ``analyze`` runs on that modality (the perception stage of
  :mod:`emollama.perception`, not a side path): the face head on a crop or the face stage on a
  photo, the voice head on the VAD speech only, the text head with the emotion-word cues, and the
  whole pipeline for ``clip``.
* An item that fails (unreadable file, no face, unknown label spelling) is counted and listed in
  ``failed`` and left out of the metrics; ``n_failed`` sits next to ``n``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emollama.errors import EmollamaError, UnknownLabelError
from emollama.evaluate.errors import EvaluationInputError
from emollama.evaluate.metrics import ClassificationScores, classification_scores
from emollama.evaluate.plots import confusion_matrix_png
from emollama.files import atomic_write_text
from emollama.labels import get_label_set, normalize_label, project_scores
from emollama.manifest import read_table
from emollama.recognize.clues import DEFAULT_FUSION
from emollama.settings import CROP_MAX_SIDE

if TYPE_CHECKING:
    from emollama.media.corrupt import Corruptor

KINDS = ("face", "voice", "text", "clip")
NOT_COVERED = "<not covered>"
#: A generative tier's answer that names no label: scored as a wrong answer, never skipped.
UNPARSED = "<unparsed>"


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
    per_item: list[dict[str, Any]] = field(default_factory=list)  # clip: corruption draws, modality weights
    run: dict[str, Any] = field(default_factory=dict)  # how the run was made (fusion, corruption spec, seed)

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
        if self.per_item:
            weights: dict[str, list[float]] = {}
            for r in self.per_item:
                for m, w in r.get("modality_weights", {}).items():
                    if w > 0:  # the clips where the fusion used the modality at all
                        weights.setdefault(m, []).append(w)
            # How much the fusion leaned on each modality. Units differ by fusion: the learned head's
            # attention sums to 1 over the modalities present; the hand-set weight is prior x reliability.
            out["mean_modality_weight"] = {m: round(float(np.mean(v)), 4) for m, v in weights.items()}
            out["modality_weight_units"] = ("face, action units, voice: attention of the learned head; words: the "
                                            "words term's prior x reliability"
                                            if self.run.get("fusion") == "learned" else "prior x reliability")
        if self.run:
            out["run"] = self.run
        out["failed"] = self.failed
        return out


def read_manifest(path: Path, kind: str) -> list[ManifestItem]:
    """Rows with ``path`` (or ``text`` for the text kind) and ``label``."""
    table = read_table(path)
    cols = set(table.fields)
    source_col = "text" if kind == "text" and "text" in cols else "path"
    if source_col not in cols or "label" not in cols:
        need = "'text' (or 'path')" if kind == "text" else "'path'"
        raise EvaluationInputError(f"{path}: needs columns {need} and 'label'; found {sorted(cols)}")
    items = [ManifestItem(n, row.get(source_col, ""), row.get("label", "")) for n, row in table.rows]
    if not items:
        raise EvaluationInputError(f"{path}: no rows")
    return items


class _FacePredictor:
    """The face head on a crop; on a photo, the face stage of ``analyze`` (detection, mesh, aligned crop)."""

    def __init__(self) -> None:
        from emollama.heads.face import load_expression_model

        self.model = load_expression_model()
        self.name = self.model.name
        self.classes = tuple(normalize_label(y) for y in self.model.labels)
        self._analyzer = None

    def __call__(self, source: Path) -> Mapping[str, float] | np.ndarray:
        from PIL import Image

        with Image.open(source) as im:
            small = min(im.size) <= CROP_MAX_SIDE
            rgb = np.asarray(im.convert("RGB")) if small else None
        if rgb is not None:  # already a face crop (FER2013, CK+): the head alone
            return self.model.predict([rgb])[0]
        from emollama.media.decode import DEFAULT_FPS, MediaReader
        from emollama.perception.face import FaceAnalyzer
        from emollama.perception.pipeline import face_stage

        if self._analyzer is None:
            self._analyzer = FaceAnalyzer(expression=self.model)
        _, face, _ = face_stage(self._analyzer, MediaReader(source), DEFAULT_FPS)
        if face.clues.status != "ok" or not face.expression_probs:
            raise EvaluationInputError(face.clues.note or "no face found")
        return face.expression_probs


class _VoicePredictor:
    """What ``analyze`` runs on the audio: VAD, prosody, then the voice head on the speech only."""

    def __init__(self) -> None:
        from emollama.perception.voice_emotion import VoiceEmotion

        self.voice = VoiceEmotion()
        self.name = self.voice.head.name
        self.classes = self.voice.head.head.labels

    def __call__(self, source: Path) -> Mapping[str, float]:
        from emollama.media.decode import MediaReader

        audio = MediaReader(source).audio()
        if audio is None or audio.size == 0:
            raise EvaluationInputError("no audio track")
        clues, probs = self.voice.analyze(audio)
        if probs is None:
            raise EvaluationInputError(clues.note or "too little speech for the voice head")
        return probs


class _TextPredictor:
    """What ``analyze`` runs on a transcript: the text head plus the emotion-word cues."""

    def __init__(self) -> None:
        from emollama.perception.text_emotion import TextEmotion

        self.text = TextEmotion()
        self.name = self.text.head.name
        self.classes = self.text.head.labels

    def __call__(self, source: str) -> Mapping[str, float]:
        if not source.strip():
            raise EvaluationInputError("empty text")
        return self.text.analyze(source)[0]


class ClipPredictor:
    """The whole ``analyze`` pipeline (perception + the clues tier), optionally on corrupted media.

    After each call :attr:`last_details` says what was applied to that clip (the corruption's
    draws) and how the recogniser weighed each modality, so a robustness run can show the fusion
    leaning away from a damaged modality; ``eval-model`` writes these to ``per_clip.jsonl``.
    """

    def __init__(self, label_set: str, perceiver: Any = None, fusion: str = DEFAULT_FUSION,
                 corruptor: Corruptor | None = None) -> None:
        from emollama.recognize.clues import CluesRecognizer

        if perceiver is None:
            from emollama.perception.pipeline import Perceiver
            from emollama.settings import AnalysisSettings

            perceiver = Perceiver(AnalysisSettings(label_set=label_set))
        self.perceiver = perceiver
        self.recognizer = CluesRecognizer(fusion)
        self.label_set = label_set
        self.corruptor = corruptor
        self.name = f"emollama analyze (clues tier, {fusion} fusion)"
        self.classes = get_label_set(label_set).labels
        self.last_details: dict[str, Any] = {}

    def __call__(self, source: Path) -> Mapping[str, float]:
        corruption = self.corruptor.draw(str(source)) if self.corruptor is not None else None
        result = self.recognizer.recognize(self.perceiver.perceive(source, corruption=corruption), self.label_set)
        self.last_details = {"label": result.label,
                             "modality_weights": {m.modality: m.weight for m in result.modality_scores},
                             "corruption": corruption.to_dict() if corruption is not None else None}
        if result.label is None:
            raise EvaluationInputError("; ".join(result.warnings) or "no label")
        return result.scores


class EmotionLlamaPredictor:
    """The ``emotion-llama`` tier (default: the shipped emotion-llama-mini) on any kind of item.

    Face images, speech files and clips go through ``analyze``'s own path (perception, then the
    tier); a text item is the subtitle of an input with no media. An answer that names no label is
    returned as :data:`UNPARSED` and scored as wrong. Only the label task is generated (a model's
    separate reasoning task is not scored here; ``evaluate grounding`` reads analyze's results).
    """

    def __init__(self, kind: str, label_set: str, model_dir: Path | None = None) -> None:
        from emollama.packaged import mini_model_dir
        from emollama.recognize.emotion_llama import EmotionLlamaTier

        self.tier = EmotionLlamaTier(model_dir if model_dir is not None else mini_model_dir())
        self.tier.reason_task = None  # only the label is scored: skip the (long) reasoning generation
        self.kind = kind
        self.label_set = label_set
        self.name = f"emotion-llama tier ({self.tier.model.model_name})"
        self.classes = get_label_set(label_set).labels
        self._perceiver: Any = None
        self.last_details: dict[str, Any] = {}

    def __call__(self, source: Any) -> Mapping[str, float]:
        if self.kind == "text":
            from emollama.label_parsing import parse_label
            from emollama.model.tier import EmotionLlamaInputs

            inputs = EmotionLlamaInputs([], [], [], None, None, str(source))
            answer = self.tier._generate(inputs, self.label_set, self.tier.task)
            label, reasoning = parse_label(answer, self.label_set).label, answer
        else:
            if self._perceiver is None:
                from emollama.perception.pipeline import Perceiver
                from emollama.settings import AnalysisSettings

                self._perceiver = Perceiver(AnalysisSettings(label_set=self.label_set))
            n = self.tier.n_frames
            result = self.tier.recognize(self._perceiver.perceive(source, keep_crops=n, encoder_frames=n),
                                         self.label_set)
            label, reasoning = result.label, result.reasoning
        self.last_details = {"label": label, "answer": reasoning}
        return {UNPARSED: 1.0} if label is None else {label: 1.0}


def clip_corruptor(spec_values: list[str], seed: int, manifest: Path) -> Corruptor | None:
    """The :class:`~emollama.media.corrupt.Corruptor` of an ``eval-model clip --corrupt`` run (None: clean)."""
    from emollama.media.corrupt import CorruptionSpec, Corruptor
    from emollama.media.decode import MediaReader

    spec = CorruptionSpec.parse(spec_values)
    if not spec.active:
        return None
    sources = [str(manifest.parent / item.source) for item in read_manifest(manifest, "clip")]
    return Corruptor(spec, seed, sources, lambda path: MediaReader(Path(path)).audio())


def make_predictor(kind: str, label_set: str | None, fusion: str = DEFAULT_FUSION,
                   corruptor: Corruptor | None = None, tier: str = "clues", model_dir: Path | None = None) -> Any:
    if tier == "emotion-llama":
        if kind not in KINDS:
            raise EvaluationInputError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
        return EmotionLlamaPredictor(kind, label_set or "dfew7", model_dir)
    if tier != "clues":
        raise EvaluationInputError(f"unknown --tier {tier!r}; eval-model measures 'clues' (the heads and "
                                   "analyze's default tier) or 'emotion-llama'")
    if kind == "face":
        return _FacePredictor()
    if kind == "voice":
        return _VoicePredictor()
    if kind == "text":
        return _TextPredictor()
    if kind == "clip":
        return ClipPredictor(label_set or "merr9", fusion=fusion, corruptor=corruptor)
    raise EvaluationInputError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")


def evaluate_model(kind: str, manifest: Path, label_set: str | None = None, predictor: Any = None,
                   progress: Callable[[int, int], None] | None = None, fusion: str = DEFAULT_FUSION,
                   corrupt: list[str] | None = None, seed: int = 0, tier: str = "clues",
                   model_dir: Path | None = None) -> EvalOutcome:
    """Run ``predictor`` (built from ``kind`` when not given) over the manifest and score it.

    ``corrupt`` (clip only): ``--corrupt`` values, see :mod:`emollama.media.corrupt`.
    """
    items = read_manifest(manifest, kind)
    if corrupt and kind != "clip":
        raise EvaluationInputError("--corrupt is for eval-model clip (the whole analyze pipeline)")
    corruptor = clip_corruptor(corrupt, seed, manifest) if corrupt else None
    if corruptor is not None and tier != "clues":
        raise EvaluationInputError("--corrupt is for the clues tier's eval-model clip")
    predictor = predictor if predictor is not None else make_predictor(kind, label_set, fusion, corruptor, tier,
                                                                       model_dir)
    model_classes = tuple(predictor.classes)
    target = get_label_set(label_set).labels if label_set else model_classes
    outcome = EvalOutcome(kind, target, None, model=predictor.name)
    if kind == "clip":
        outcome.run = {"fusion": fusion, "corrupt": list(corrupt or []), "seed": seed}
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
            out = predictor(source)
            if not isinstance(out, Mapping):
                out = np.asarray(out, dtype=float)
        except (EmollamaError, OSError, ValueError, RuntimeError) as exc:
            outcome.failed.append({"row": item.row, "item": item.source, "reason": str(exc) or type(exc).__name__})
            continue
        scores = dict(out) if isinstance(out, Mapping) else dict(zip(model_classes, out, strict=True))
        unparsed = bool(scores.get(UNPARSED))  # before projection, which would spread it over the labels
        if label_set and not unparsed:
            scores = project_scores(scores, label_set)
        pred = UNPARSED if unparsed else max(target, key=lambda y: scores.get(y, 0.0))
        details = getattr(predictor, "last_details", None)
        if details is not None:
            outcome.per_item.append({"row": item.row, "item": item.source, "label": ref, "predicted": pred,
                                     **{k: v for k, v in details.items() if k != "label"}})
        if ref not in target:
            outcome.not_covered[ref] = outcome.not_covered.get(ref, 0) + 1
        outcome.references.append(ref)
        outcome.predictions.append(pred)
    if outcome.references:
        # Uncovered references get their own confusion rows so their items count as wrong; so do unparsed answers.
        rows = target + tuple(sorted(outcome.not_covered)) + ((UNPARSED,) if UNPARSED in outcome.predictions else ())
        outcome.scores = classification_scores(outcome.references, outcome.predictions, rows)
    return outcome


def write_outputs(outcome: EvalOutcome, out_dir: Path) -> dict[str, Path]:
    """metrics.json and confusion.png (when anything was scored)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": out_dir / "metrics.json"}
    atomic_write_text(paths["metrics"], json.dumps(outcome.to_json(), indent=2, ensure_ascii=False) + "\n")
    if outcome.per_item:
        paths["per_clip"] = out_dir / "per_clip.jsonl"
        atomic_write_text(paths["per_clip"], "".join(json.dumps(r, ensure_ascii=False) + "\n"
                                                     for r in outcome.per_item))
    if outcome.scores is not None:
        paths["confusion"] = confusion_matrix_png(outcome.scores, out_dir / "confusion.png",
                                                  f"{outcome.kind}: {outcome.model}")
    return paths
