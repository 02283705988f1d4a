"""EMER reasoning evaluation: judged clue/label overlap plus offline, clearly-named proxies.

Per reference sample (its reference account and, if the file has one, its label):

* ``judge_clue_overlap`` / ``judge_label_overlap`` (1–10) — only with a judge backend;
* ``proxy_emotion_words`` — emotion words of both accounts mapped to the shipped wheel's basic
  categories; Jaccard of the two category sets (0–1), plus whether the reference label's category
  is among the candidate's (label hit);
* ``proxy_minilm_cosine`` — cosine of the two accounts' MiniLM sentence embeddings (−1…1),
  skipped with a reason when the packaged model is absent.

Samples without a prediction (missing line or error status) get no score and are listed; every
mean says how many samples it covers. A sample whose reference account holds no wheel word has
no emotion-word proxy (nothing to compare against) and is listed too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emollama.errors import ModelUnavailableError, UnknownLabelError
from emollama.evaluate.embedding import SentenceEmbedder, cosine_rows
from emollama.evaluate.errors import EvaluationInputError
from emollama.evaluate.judge import PROMPT_VERSION, Judge, JudgeOutcome
from emollama.evaluate.lexicon import CANONICAL_TO_LEVEL1, extract_emotions, load_wheel
from emollama.evaluate.metrics import jaccard
from emollama.evaluate.readers import Alignment, Table, _list, align, alignment_warnings
from emollama.labels import normalize_label


@dataclass
class EmerSample:
    """Every per-sample number of an EMER run (one row of ``samples.csv``)."""

    name: str
    has_prediction: bool
    reference_label: str | None = None
    reference_categories: tuple[str, ...] = ()
    candidate_categories: tuple[str, ...] = ()
    emotion_word_jaccard: float | None = None
    label_hit: int | None = None
    minilm_cosine: float | None = None
    clue_overlap: int | None = None
    clue_status: str | None = None
    label_overlap: int | None = None
    label_status: str | None = None


@dataclass
class EmerResult:
    samples: list[EmerSample]
    alignment: Alignment
    warnings: list[str]
    summary: dict[str, Any]
    judge_outcomes: list[JudgeOutcome] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.summary,
            "alignment": {
                "missing": list(self.alignment.missing),
                "failed": list(self.alignment.failed),
                "extra": list(self.alignment.extra),
            },
            "warnings": self.warnings,
        }


def _mean_block(values: list[float | int | None], n_candidates: int, **extra: Any) -> dict[str, Any]:
    scored = [float(v) for v in values if v is not None]
    return {
        "mean": float(np.mean(scored)) if scored else None,
        "std": float(np.std(scored)) if scored else None,
        "n_scored": len(scored),
        "n_candidates": n_candidates,
        **extra,
    }


def _reference_category(label: str | None) -> str | None:
    if not label:
        return None
    try:
        return CANONICAL_TO_LEVEL1[normalize_label(label)]
    except (UnknownLabelError, KeyError):
        return None


def evaluate_emer(
    refs: Table,
    preds: Table,
    *,
    judge: Judge | None = None,
    embedder: SentenceEmbedder | None = None,
    embedder_error: str | None = None,
    lang: str = "en",
) -> EmerResult:
    """Score candidate accounts against reference accounts (see module docstring)."""
    no_text = [n for n, r in refs.records.items() if not r.text]
    if len(no_text) == len(refs.records):
        raise EvaluationInputError(
            f"{refs.path}: no reference account column (columns: {list(refs.columns)[:12]}); EMER needs a "
            "text column such as reasons / english / chinese / reason"
        )
    alignment = align(refs, preds)
    warnings = [*refs.warnings, *preds.warnings, *alignment_warnings(alignment, preds, "not scored")]
    if no_text:
        warnings.append(
            f"{len(no_text)} reference(s) have an empty account and are not scored: {_list(no_text)}"
        )
    wheel = load_wheel()
    samples: list[EmerSample] = []
    pairs: list[tuple[str, str, str]] = []
    unknown_ref_labels: list[str] = []
    no_ref_words: list[str] = []
    no_pred_text: list[str] = []
    for name in alignment.names:
        ref = refs.records[name]
        if not ref.text:
            continue
        pred = preds.records.get(name)
        candidate = None
        if pred is not None and pred.status == "ok":
            candidate = pred.text or pred.label
            if not candidate:
                no_pred_text.append(name)
        sample = EmerSample(name=name, has_prediction=candidate is not None, reference_label=ref.label)
        ref_ext = extract_emotions(ref.text, wheel)
        sample.reference_categories = ref_ext.categories
        ref_category = _reference_category(ref.label)
        if ref.label and ref_category is None:
            unknown_ref_labels.append(f"{name}={ref.label}")
        if candidate is not None:
            cand_ext = extract_emotions(candidate, wheel)
            sample.candidate_categories = cand_ext.categories
            if ref_ext.categories:
                sample.emotion_word_jaccard = jaccard(set(ref_ext.categories), set(cand_ext.categories))
            else:
                no_ref_words.append(name)
            if ref_category is not None:
                sample.label_hit = int(ref_category in cand_ext.categories)
            pairs.append((name, ref.text, candidate))
        samples.append(sample)
    if no_pred_text:
        warnings.append(f"{len(no_pred_text)} prediction(s) have no text to compare: {_list(no_pred_text)}")
    if no_ref_words:
        warnings.append(
            f"{len(no_ref_words)} reference account(s) contain no emotion word of the wheel, so the "
            f"emotion-word proxy skips them: {_list(no_ref_words)}"
        )
    if unknown_ref_labels:
        warnings.append(
            f"{len(unknown_ref_labels)} reference label(s) are not known emotion words (no label "
            f"hit): {_list(unknown_ref_labels)}"
        )
    by_name = {s.name: s for s in samples}
    n_candidates = len(pairs)

    summary: dict[str, Any] = {
        "n_references": len(refs.records),
        "n_with_prediction": n_candidates,
        "text_language": lang,
        "emotion_wheel_version": wheel.version,
        "proxy_emotion_words": _mean_block(
            [s.emotion_word_jaccard for s in samples if s.has_prediction],
            n_candidates,
            scale="0-1 (Jaccard of level-1 emotion categories)",
            label_hit_rate=_mean_block([s.label_hit for s in samples if s.has_prediction], n_candidates),
        ),
    }

    if embedder is not None and pairs:
        ref_vecs = embedder.embed([p[1] for p in pairs])
        cand_vecs = embedder.embed([p[2] for p in pairs])
        for (name, _, _), value in zip(pairs, cosine_rows(ref_vecs, cand_vecs), strict=True):
            by_name[name].minilm_cosine = float(value)
        summary["proxy_minilm_cosine"] = _mean_block(
            [s.minilm_cosine for s in samples if s.has_prediction],
            n_candidates,
            status="ok",
            model=embedder.name,
            scale="-1..1 (cosine of sentence embeddings)",
        )
        if lang == "zh":
            warnings.append("MiniLM is an English model: cosine on Chinese accounts is not meaningful")
    else:
        reason = embedder_error or ("no prediction to embed" if embedder is not None else "not requested")
        summary["proxy_minilm_cosine"] = {"status": "skipped", "reason": reason}

    outcomes: list[JudgeOutcome] = []
    if judge is not None and pairs:
        clue = judge.map(judge.clue_overlap, pairs)
        label = judge.map(judge.label_overlap, pairs)
        outcomes = [*clue, *label]
        for outcome in clue:
            by_name[outcome.name].clue_overlap = outcome.score
            by_name[outcome.name].clue_status = outcome.status
        for outcome in label:
            by_name[outcome.name].label_overlap = outcome.score
            by_name[outcome.name].label_status = outcome.status
        models = sorted({c.model for o in outcomes for c in o.calls if c.model})
        for metric, results in (("judge_clue_overlap", clue), ("judge_label_overlap", label)):
            failed = [f"{o.name} ({o.status}: {o.detail})" for o in results if o.status != "ok"]
            summary[metric] = _mean_block(
                [o.score for o in results],
                n_candidates,
                status="ok",
                scale="1-10",
                not_scored=len(failed),
            )
            if failed:
                warnings.append(
                    f"{metric}: {len(failed)} sample(s) got no score from the judge and are left "
                    f"out of the mean: {_list(failed, 5)}"
                )
        summary["judge"] = {
            "requested_model": judge.backend.model,
            "reported_models": models,
            "prompt_version": PROMPT_VERSION,
            "temperature": 0.0,
            "calls": sum(len(o.calls) for o in outcomes),
            "cached_calls": sum(1 for o in outcomes for c in o.calls if c.cached),
        }
    else:
        skipped = {
            "status": "skipped",
            "reason": "no judge given (--judge-url)" if judge is None else "no prediction to judge",
        }
        summary["judge_clue_overlap"] = skipped
        summary["judge_label_overlap"] = skipped
    return EmerResult(samples, alignment, warnings, summary, outcomes)


def load_embedder(requested: bool, model_dir: str | None) -> tuple[SentenceEmbedder | None, str | None]:
    """The MiniLM embedder, or ``(None, reason)`` when it is off or not installed."""
    if not requested:
        return None, "disabled (--no-embedding)"
    from emollama.evaluate.embedding import load_minilm

    try:
        return load_minilm(model_dir), None
    except ModelUnavailableError as exc:
        return None, str(exc)
