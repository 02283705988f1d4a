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
from emollama.evaluate.lexicon import CANONICAL_TO_LEVEL1, EmotionWheel, extract_emotions, load_wheel
from emollama.evaluate.metrics import jaccard
from emollama.evaluate.readers import Alignment, Record, Table, _list, align, alignment_warnings
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
            "alignment": self.alignment.to_dict(),
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
    """Score candidate accounts against reference accounts (see module docstring).

    Three passes, each adding its block to the summary in this order: the emotion-word proxy,
    the MiniLM proxy, the judge. Warnings keep the same order as the passes.
    """
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
    scan = _WordScan()
    for name in alignment.names:
        if refs.records[name].text:
            scan.add(name, refs.records[name], preds.records.get(name), wheel)
    warnings += scan.warnings()
    n_candidates = len(scan.pairs)
    summary: dict[str, Any] = {
        "n_references": len(refs.records),
        "n_with_prediction": n_candidates,
        "text_language": lang,
        "emotion_wheel_version": wheel.version,
        "proxy_emotion_words": _mean_block(
            [s.emotion_word_jaccard for s in scan.samples if s.has_prediction],
            n_candidates,
            scale="0-1 (Jaccard of level-1 emotion categories)",
            label_hit_rate=_mean_block([s.label_hit for s in scan.samples if s.has_prediction], n_candidates),
        ),
    }
    summary["proxy_minilm_cosine"] = _minilm_proxy(scan, embedder, embedder_error, lang, warnings)
    outcomes = _judge_scores(scan, judge, summary, warnings)
    return EmerResult(scan.samples, alignment, warnings, summary, outcomes)


@dataclass
class _WordScan:
    """The emotion-word pass over the scorable samples, and every sample it had to skip.

    ``pairs`` holds ``(name, reference account, candidate account)`` for each sample with a
    prediction: the input of the MiniLM and judge passes.
    """

    samples: list[EmerSample] = field(default_factory=list)
    pairs: list[tuple[str, str, str]] = field(default_factory=list)
    unknown_ref_labels: list[str] = field(default_factory=list)
    no_ref_words: list[str] = field(default_factory=list)
    no_pred_text: list[str] = field(default_factory=list)

    def add(self, name: str, ref: Record, pred: Record | None, wheel: EmotionWheel) -> None:
        """Score one sample whose reference has an account."""
        candidate = None
        if pred is not None and pred.status == "ok":
            candidate = pred.text or pred.label
            if not candidate:
                self.no_pred_text.append(name)
        sample = EmerSample(name=name, has_prediction=candidate is not None, reference_label=ref.label)
        ref_ext = extract_emotions(ref.text, wheel)
        sample.reference_categories = ref_ext.categories
        ref_category = _reference_category(ref.label)
        if ref.label and ref_category is None:
            self.unknown_ref_labels.append(f"{name}={ref.label}")
        if candidate is not None:
            cand_ext = extract_emotions(candidate, wheel)
            sample.candidate_categories = cand_ext.categories
            if ref_ext.categories:
                sample.emotion_word_jaccard = jaccard(set(ref_ext.categories), set(cand_ext.categories))
            else:
                self.no_ref_words.append(name)
            if ref_category is not None:
                sample.label_hit = int(ref_category in cand_ext.categories)
            self.pairs.append((name, ref.text, candidate))
        self.samples.append(sample)

    def warnings(self) -> list[str]:
        """One warning per kind of skipped sample, naming them."""
        out: list[str] = []
        if self.no_pred_text:
            out.append(
                f"{len(self.no_pred_text)} prediction(s) have no text to compare: {_list(self.no_pred_text)}"
            )
        if self.no_ref_words:
            out.append(
                f"{len(self.no_ref_words)} reference account(s) contain no emotion word of the wheel, so the "
                f"emotion-word proxy skips them: {_list(self.no_ref_words)}"
            )
        if self.unknown_ref_labels:
            out.append(
                f"{len(self.unknown_ref_labels)} reference label(s) are not known emotion words (no label "
                f"hit): {_list(self.unknown_ref_labels)}"
            )
        return out

    def by_name(self) -> dict[str, EmerSample]:
        """The samples by name, for the later passes to fill in their scores."""
        return {s.name: s for s in self.samples}


def _minilm_proxy(
    scan: _WordScan,
    embedder: SentenceEmbedder | None,
    embedder_error: str | None,
    lang: str,
    warnings: list[str],
) -> dict[str, Any]:
    """Cosine of the two accounts' embeddings per sample, and its summary block (or why it was skipped)."""
    pairs = scan.pairs
    if embedder is None or not pairs:
        reason = embedder_error or ("no prediction to embed" if embedder is not None else "not requested")
        return {"status": "skipped", "reason": reason}
    by_name = scan.by_name()
    ref_vecs = embedder.embed([p[1] for p in pairs])
    cand_vecs = embedder.embed([p[2] for p in pairs])
    for (name, _, _), value in zip(pairs, cosine_rows(ref_vecs, cand_vecs), strict=True):
        by_name[name].minilm_cosine = float(value)
    if lang == "zh":
        warnings.append("MiniLM is an English model: cosine on Chinese accounts is not meaningful")
    return _mean_block(
        [s.minilm_cosine for s in scan.samples if s.has_prediction],
        len(pairs),
        status="ok",
        model=embedder.name,
        scale="-1..1 (cosine of sentence embeddings)",
    )


def _judge_scores(
    scan: _WordScan, judge: Judge | None, summary: dict[str, Any], warnings: list[str]
) -> list[JudgeOutcome]:
    """Clue and label overlap by the judge: per-sample scores, summary blocks, every outcome."""
    pairs = scan.pairs
    if judge is None or not pairs:
        skipped = {
            "status": "skipped",
            "reason": "no judge given (--judge-url)" if judge is None else "no prediction to judge",
        }
        summary["judge_clue_overlap"] = skipped
        summary["judge_label_overlap"] = skipped
        return []
    by_name = scan.by_name()
    clue = judge.map(judge.clue_overlap, pairs)
    label = judge.map(judge.label_overlap, pairs)
    outcomes = [*clue, *label]
    for outcome in clue:
        by_name[outcome.name].clue_overlap = outcome.score
        by_name[outcome.name].clue_status = outcome.status
    for outcome in label:
        by_name[outcome.name].label_overlap = outcome.score
        by_name[outcome.name].label_status = outcome.status
    for metric, results in (("judge_clue_overlap", clue), ("judge_label_overlap", label)):
        failed = [f"{o.name} ({o.status}: {o.detail})" for o in results if o.status != "ok"]
        summary[metric] = _mean_block(
            [o.score for o in results], len(pairs), status="ok", scale="1-10", not_scored=len(failed)
        )
        if failed:
            warnings.append(
                f"{metric}: {len(failed)} sample(s) got no score from the judge and are left "
                f"out of the mean: {_list(failed, 5)}"
            )
    summary["judge"] = {
        "requested_model": judge.backend.model,
        "reported_models": sorted({c.model for o in outcomes for c in o.calls if c.model}),
        "prompt_version": PROMPT_VERSION,
        "temperature": 0.0,
        "calls": sum(len(o.calls) for o in outcomes),
        "cached_calls": sum(1 for o in outcomes for c in o.calls if c.cached),
    }
    return outcomes


def load_embedder(requested: bool, model_dir: str | None) -> tuple[SentenceEmbedder | None, str | None]:
    """The MiniLM embedder, or ``(None, reason)`` when it is off or not installed."""
    if not requested:
        return None, "disabled (--no-embedding)"
    from emollama.evaluate.embedding import minilm_embedder

    try:
        return minilm_embedder(model_dir), None
    except ModelUnavailableError as exc:
        return None, str(exc)
