"""MER-OV (open-vocabulary) evaluation: set accuracy, set recall and their mean.

Each side of a sample becomes a set of emotion words: an explicit list (``openset`` column) is
taken as is; free text is reduced to the wheel words it asserts (offline lexicon, negations
skipped) or to the words a judge LLM names (``extractor="judge"``). Words are then grouped with the
shipped wheel — each word → its synonym group's head — instead of MER2024's per-sample GPT
grouping, so the score of one prediction never depends on the others or on a model version.
Wheel version 2 (the default) also matches word forms and hedged phrases; version 1 is the
earlier, stricter table, kept so old numbers can be recomputed. The official computation on a
frozen GPT synonym cache is :mod:`emollama.evaluate.ov_official`.

Per sample (as MER2024): accuracy = |G∩P|/|P|, recall = |G∩P|/|G|; an empty or missing
prediction scores 0 on both (it is also listed). Samples whose reference set is empty cannot
define recall and are excluded with a warning. The same numbers at the wheel's level 1 (basic
categories) are reported as a coarser view.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from emollama.evaluate.errors import EvaluationInputError
from emollama.evaluate.judge import Judge, JudgeCall
from emollama.evaluate.lexicon import EmotionWheel, GroupedSet, extract_emotions, group_words, load_wheel
from emollama.evaluate.metrics import set_scores
from emollama.evaluate.readers import Alignment, Record, Table, _list, align, alignment_warnings

Extractor = Literal["lexicon", "judge"]


@dataclass
class OvSample:
    name: str
    reference_words: tuple[str, ...]
    predicted_words: tuple[str, ...]
    reference_groups: tuple[str, ...]
    predicted_groups: tuple[str, ...]
    accuracy: float
    recall: float
    accuracy_l1: float | None
    recall_l1: float | None
    status: str  # ok | missing | error | empty_prediction


@dataclass
class OvResult:
    samples: list[OvSample]
    alignment: Alignment
    warnings: list[str]
    summary: dict[str, Any]
    judge_calls: list[JudgeCall]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.summary,
            "alignment": self.alignment.to_dict(),
            "warnings": self.warnings,
        }


def _words(
    record: Record, side: str, extractor: Extractor, judge: Judge | None, calls: list[JudgeCall]
) -> tuple[tuple[str, ...], str]:
    """Emotion words of one record and where they came from (openset | label | lexicon | judge)."""
    if record.openset:
        return record.openset, "openset"
    text = record.text
    if not text and record.label:
        # A short label field ("happy" or "happy, relieved") is a list, not prose.
        from emollama.evaluate.readers import parse_openset

        return parse_openset(record.label), "label"
    if not text:
        return (), "none"
    if extractor == "judge":
        if judge is None:
            raise EvaluationInputError("the judge extractor needs --judge-url and --judge-model")
        call, words = judge.extract(record.name, text, f"extract_{side}", "ov")
        calls.append(call)
        if words is None:
            return (), "judge_error"
        return words, "judge"
    return extract_emotions(text).words, "lexicon"


#: Emotion-wheel version that groups words unless the caller picks another.
DEFAULT_WHEEL_VERSION = 2


def evaluate_ov(
    refs: Table,
    preds: Table,
    *,
    extractor: Extractor = "lexicon",
    judge: Judge | None = None,
    wheel_version: int = DEFAULT_WHEEL_VERSION,
) -> OvResult:
    """Score open-vocabulary predictions (see module docstring)."""
    wheel = load_wheel(wheel_version)
    alignment = align(refs, preds)
    warnings = [*refs.warnings, *preds.warnings, *alignment_warnings(alignment, preds, "scored 0")]
    tally = _Tally(extractor, judge, wheel)
    samples: list[OvSample] = []
    for name in alignment.names:
        sample = tally.score(name, refs.records[name], preds.records.get(name))
        if sample is not None:
            samples.append(sample)
    if not samples:
        raise EvaluationInputError(
            f"{refs.path}: no reference sample has an emotion word set (columns: {list(refs.columns)[:12]}); "
            "MER-OV references need an openset list or a text with emotion words"
        )
    warnings += tally.warnings()
    summary = _summary(samples, len(refs.records), tally)
    calls = tally.calls
    if judge is not None and extractor == "judge":
        summary["judge"] = {
            "requested_model": judge.backend.model,
            "reported_models": sorted({c.model for c in calls if c.model}),
            "calls": len(calls),
            "cached_calls": sum(1 for c in calls if c.cached),
        }
    return OvResult(samples, alignment, warnings, summary, calls)


@dataclass
class _Tally:
    """Scores samples one by one and keeps what the summary and the warnings need across them."""

    extractor: Extractor
    judge: Judge | None
    wheel: EmotionWheel
    calls: list[JudgeCall] = field(default_factory=list)
    empty_refs: list[str] = field(default_factory=list)
    empty_preds: list[str] = field(default_factory=list)
    judge_failed: list[str] = field(default_factory=list)
    unknown: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)

    def score(self, name: str, ref: Record, pred: Record | None) -> OvSample | None:
        """One sample's set scores, or ``None`` when it cannot be scored (it is listed for a warning)."""
        ref_words, ref_source = _words(ref, "reference", self.extractor, self.judge, self.calls)
        self.sources[f"reference:{ref_source}"] += 1
        if ref_source == "judge_error":
            self.judge_failed.append(f"{name} (reference)")
            return None
        ref_group = group_words(ref_words, self.wheel)
        if not ref_group.groups:
            self.empty_refs.append(name)
            return None
        self.unknown.update(ref_group.unknown)
        found = self._prediction(name, pred)
        if found is None:
            return None
        status, pred_words = found
        pred_group = group_words(pred_words, self.wheel)
        self.unknown.update(pred_group.unknown)
        if status == "ok" and not pred_group.groups:
            status = "empty_prediction"
            self.empty_preds.append(name)
        return _sample(name, ref_words, pred_words, ref_group, pred_group, status)

    def _prediction(self, name: str, pred: Record | None) -> tuple[str, tuple[str, ...]] | None:
        """``(status, words)`` of the prediction; ``None`` when the judge failed to extract its words."""
        if pred is None:
            return "missing", ()
        if pred.status == "error":
            return "error", ()
        pred_words, pred_source = _words(pred, "candidate", self.extractor, self.judge, self.calls)
        self.sources[f"prediction:{pred_source}"] += 1
        if pred_source == "judge_error":
            # No words because the judge failed: not a prediction, so not a score either.
            self.judge_failed.append(f"{name} (prediction)")
            return None
        return "ok", pred_words

    def warnings(self) -> list[str]:
        """One warning per kind of excluded sample or unmatched word."""
        out: list[str] = []
        if self.empty_refs:
            out.append(
                f"{len(self.empty_refs)} reference(s) have no emotion words and are excluded: "
                f"{_list(self.empty_refs)}"
            )
        if self.empty_preds:
            out.append(
                f"{len(self.empty_preds)} prediction(s) name no emotion (scored 0): {_list(self.empty_preds)}"
            )
        if self.judge_failed:
            out.append(
                f"{len(self.judge_failed)} sample(s) not scored because the judge extraction failed: "
                f"{_list(self.judge_failed, 5)}"
            )
        if self.unknown:
            top = ", ".join(f"{w} ({c})" for w, c in self.unknown.most_common(15))
            out.append(
                f"{len(self.unknown)} word(s) are not on the emotion wheel and were matched only literally: {top}"
            )
        return out


def _sample(
    name: str,
    ref_words: tuple[str, ...],
    pred_words: tuple[str, ...],
    ref_group: GroupedSet,
    pred_group: GroupedSet,
    status: str,
) -> OvSample:
    """Set accuracy and recall on synonym groups, and on basic categories where the reference has any."""
    fine = set_scores(set(ref_group.groups), set(pred_group.groups))
    coarse = (
        set_scores(set(ref_group.categories), set(pred_group.categories)) if ref_group.categories else None
    )
    return OvSample(
        name=name,
        reference_words=tuple(ref_words),
        predicted_words=tuple(pred_words),
        reference_groups=tuple(sorted(ref_group.groups)),
        predicted_groups=tuple(sorted(pred_group.groups)),
        accuracy=fine.accuracy,
        recall=fine.recall,
        accuracy_l1=coarse.accuracy if coarse else None,
        recall_l1=coarse.recall if coarse else None,
        status=status,
    )


def _summary(samples: list[OvSample], n_references: int, tally: _Tally) -> dict[str, Any]:
    """Means over the scored samples at both levels, with where the words came from."""
    acc = float(np.mean([s.accuracy for s in samples]))
    rec = float(np.mean([s.recall for s in samples]))
    coarse_samples = [s for s in samples if s.accuracy_l1 is not None]
    acc1 = float(np.mean([s.accuracy_l1 for s in coarse_samples])) if coarse_samples else None
    rec1 = float(np.mean([s.recall_l1 for s in coarse_samples])) if coarse_samples else None
    status_counts = Counter(s.status for s in samples)
    return {
        "n_references": n_references,
        "n_scored": len(samples),
        "extractor": tally.extractor,
        "grouping": f"wheel-v{tally.wheel.version}",
        "emotion_wheel_version": tally.wheel.version,
        "word_sources": dict(sorted(tally.sources.items())),
        "status_counts": dict(sorted(status_counts.items())),
        "synonym_groups": {"accuracy": acc, "recall": rec, "mean": (acc + rec) / 2},
        "basic_categories": {
            "accuracy": acc1,
            "recall": rec1,
            "mean": (acc1 + rec1) / 2 if acc1 is not None and rec1 is not None else None,
            "n_scored": len(coarse_samples),
        },
        "unknown_words": dict(tally.unknown.most_common()),
    }
