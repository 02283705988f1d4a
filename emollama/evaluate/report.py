"""Write an evaluation run to disk: ``metrics.json``, ``report.md``, per-sample CSV, PNG plots.

The JSON carries a schema tag, the emollama version, and a SHA-256 of each input file so a number
in a paper can be traced back to the exact files that produced it.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from emollama.evaluate.classification import ClassificationResult
from emollama.evaluate.metrics import UNPARSED, ClassificationScores
from emollama.evaluate.plots import confusion_matrix_png, per_class_recall_png
from emollama.evaluate.readers import Table

SCHEMA = "emollama.evaluate/1"


def _version() -> str:
    try:
        return metadata.version("emollama")
    except metadata.PackageNotFoundError:
        return "unknown"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def input_info(table: Table) -> dict[str, Any]:
    return {
        "path": str(table.path),
        "format": table.format,
        "rows": len(table.records),
        "sha256": file_sha256(table.path),
    }


def header(task: str, preds: Table, refs: Table) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "task": task,
        "emollama_version": _version(),
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "predictions": input_info(preds),
        "references": input_info(refs),
    }


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    path.write_text(
        json.dumps(payload, ensure_ascii=False, indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    return path


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
    return path


def fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def md_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return lines


def md_inputs(preds: Table, refs: Table) -> list[str]:
    return [
        f"- predictions: `{preds.path.name}` ({preds.format}, {len(preds.records)} names)",
        f"- references: `{refs.path.name}` ({refs.format}, {len(refs.records)} names)",
    ]


def md_warnings(warnings: Sequence[str]) -> list[str]:
    if not warnings:
        return ["## Warnings", "", "None."]
    return ["## Warnings", "", *[f"- {w}" for w in warnings]]


def _confusion_md(scores: ClassificationScores) -> list[str]:
    columns = ["reference \\ predicted", *scores.labels, "no label"]
    rows = [[label, *row] for label, row in zip(scores.labels, scores.confusion, strict=True)]
    return md_table(columns, rows)


def write_classification(
    result: ClassificationResult, preds: Table, refs: Table, out_dir: str | Path
) -> dict[str, Path]:
    """Write every artefact of a classification run; returns their paths by role."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    payload = {**header("classification", preds, refs), **result.to_dict()}
    paths["metrics"] = write_json(out / "metrics.json", payload)
    paths["samples"] = write_csv(
        out / "samples.csv",
        ["name", "reference", "strict", "strict_status", "official", "source", "valence_ref", "valence_pred"],
        [
            [
                s.name,
                s.reference,
                s.strict,
                s.strict_status,
                s.official,
                s.source,
                s.valence_ref,
                s.valence_pred,
            ]
            for s in result.samples
        ],
    )
    paths["confusion_strict"] = confusion_matrix_png(
        result.strict, out / "confusion_strict.png", f"Confusion matrix, strict parsing ({result.label_set})"
    )
    paths["confusion_official"] = confusion_matrix_png(
        result.official,
        out / "confusion_official.png",
        f"Confusion matrix, official-compatible parsing ({result.label_set})",
    )
    paths["recall"] = per_class_recall_png(
        result.strict, result.official, out / "per_class_recall.png", f"Recall per class ({result.label_set})"
    )
    return _write_report(paths, out, _classification_md(result, preds, refs))


def _classification_md(result: ClassificationResult, preds: Table, refs: Table) -> list[str]:
    s, o = result.strict, result.official
    lines = [
        "# Classification evaluation",
        "",
        *md_inputs(preds, refs),
        f"- label set: `{result.label_set}` {list(s.labels)}"
        + (" (chosen automatically)" if result.label_set_auto else ""),
        f"- scored samples: {s.n} (every reference; a missing or unparseable prediction is wrong in strict "
        "mode and `neutral` in official-compatible mode)",
        "",
        "## Summary",
        "",
        *md_table(
            ["metric", "strict", "official-compatible"],
            [
                ["accuracy", fmt(s.accuracy), fmt(o.accuracy)],
                ["weighted F1 (MER2023/2024 headline)", fmt(s.weighted_f1), fmt(o.weighted_f1)],
                ["macro F1", fmt(s.macro_f1), fmt(o.macro_f1)],
                ["UAR (DFEW)", fmt(s.uar), fmt(o.uar)],
                ["WAR (DFEW)", fmt(s.war), fmt(o.war)],
                ["weighted precision", fmt(s.weighted_precision), fmt(o.weighted_precision)],
            ],
        ),
        "",
    ]
    v = result.valence
    if v is not None:
        lines += [
            "## Valence (MER2023 MULTI)",
            "",
            f"- pairs with both valences: {v['n_pairs']} of {v['n_reference']} references with a valence",
            f"- valence MSE: {fmt(v['mse'])}",
            f"- MULTI = weighted F1 − 0.25 × MSE: strict {fmt(v['multi_strict'])}, "
            f"official-compatible {fmt(v['multi_official'])}",
            "",
        ]
    counts: dict[str, int] = {}
    for sample in result.samples:
        counts[sample.strict_status] = counts.get(sample.strict_status, 0) + 1
    lines += [
        "## Per class (strict)",
        "",
        *md_table(
            ["label", "support", "predicted", "precision", "recall", "F1"],
            [
                [c.label, c.support, c.predicted, fmt(c.precision, 3), fmt(c.recall, 3), fmt(c.f1, 3)]
                for c in s.per_class
            ],
        ),
        "",
        "## Confusion matrix (strict)",
        "",
        *_confusion_md(s),
        "",
        "![confusion matrix, strict](confusion_strict.png)",
        "![recall per class](per_class_recall.png)",
        "",
        "## How predictions were read (strict)",
        "",
        *md_table(["status", "samples"], sorted(counts.items())),
        "",
    ]
    not_scored = [x for x in result.samples if x.strict == UNPARSED]
    if not_scored:
        lines += ["Samples with no usable label in strict mode (first 20):", ""]
        lines += [
            f"- `{x.name}`: {x.strict_status} (official-compatible read: {x.official})"
            for x in not_scored[:20]
        ]
        lines.append("")
    lines += md_warnings(result.warnings)
    return lines


def write_judge_calls(path: Path, calls: Iterable[Any]) -> Path:
    """Every judge request and raw reply, one JSON object per line, for audit and re-scoring."""
    with path.open("w", encoding="utf-8") as handle:
        for call in calls:
            handle.write(json.dumps(dict(call.__dict__), ensure_ascii=False) + "\n")
    return path


def _block_cell(block: dict[str, Any], digits: int = 3) -> tuple[str, str]:
    if block.get("status") == "skipped":
        return "skipped", block.get("reason", "")
    mean = fmt(block.get("mean"), digits)
    return mean, f"{block.get('n_scored', 0)} of {block.get('n_candidates', 0)}"


_EMER_COLUMNS = (
    "name",
    "has_prediction",
    "reference_label",
    "reference_categories",
    "candidate_categories",
    "emotion_word_jaccard",
    "label_hit",
    "minilm_cosine",
    "clue_overlap",
    "clue_status",
    "label_overlap",
    "label_status",
)
_OV_COLUMNS = (
    "name",
    "status",
    "reference_words",
    "predicted_words",
    "reference_groups",
    "predicted_groups",
    "accuracy",
    "recall",
    "accuracy_l1",
    "recall_l1",
)


def _start_run(
    task: str, result: Any, preds: Table, refs: Table, out_dir: str | Path, columns: Sequence[str]
) -> tuple[Path, dict[str, Path]]:
    """The folder, ``metrics.json`` and ``samples.csv`` (one column per sample attribute) of an EMER / OV run.

    Tuple attributes (word and category lists) are written ``|``-joined.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    paths["metrics"] = write_json(out / "metrics.json", {**header(task, preds, refs), **result.to_dict()})
    paths["samples"] = write_csv(
        out / "samples.csv",
        columns,
        [
            [("|".join(v) if isinstance(v, tuple) else v) for v in (getattr(s, c) for c in columns)]
            for s in result.samples
        ],
    )
    return out, paths


def _write_report(paths: dict[str, Path], out: Path, lines: list[str]) -> dict[str, Path]:
    """``report.md`` from its lines, added to ``paths``."""
    paths["report"] = out / "report.md"
    paths["report"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


def write_emer(result: Any, preds: Table, refs: Table, out_dir: str | Path) -> dict[str, Path]:
    """Artefacts of an EMER run: metrics.json, report.md, samples.csv, judge replies, histogram."""
    from emollama.evaluate.plots import score_histogram_png

    out, paths = _start_run("emer", result, preds, refs, out_dir, _EMER_COLUMNS)
    if result.judge_outcomes:
        paths["judge_replies"] = write_judge_calls(
            out / "judge_replies.jsonl", [c for o in result.judge_outcomes for c in o.calls]
        )
    paths["histogram"] = score_histogram_png(
        _emer_series(result.samples),
        out / "scores.png",
        "EMER per-sample scores",
        "score (0-10)",
        [i - 0.5 for i in range(12)],
    )
    return _write_report(paths, out, _emer_md(result, preds, refs))


def _emer_series(samples: Sequence[Any]) -> dict[str, list[float]]:
    """Histogram series on one 0-10 axis: the Jaccard proxy scaled ×10, the judge scores if any."""
    series = {
        "emotion-word Jaccard ×10 (proxy)": [
            s.emotion_word_jaccard * 10 for s in samples if s.emotion_word_jaccard is not None
        ]
    }
    if any(s.clue_overlap is not None for s in samples):
        series["judge clue overlap"] = [s.clue_overlap for s in samples if s.clue_overlap is not None]
        series["judge label overlap"] = [s.label_overlap for s in samples if s.label_overlap is not None]
    return series


def _emer_rows(summary: dict[str, Any]) -> list[list[str]]:
    """The summary table: judge scores first, then the clearly marked proxies."""
    rows = []
    for key, title in (
        ("judge_clue_overlap", "clue overlap (judge, 1-10)"),
        ("judge_label_overlap", "label overlap (judge, 1-10)"),
        ("proxy_emotion_words", "PROXY emotion-word category Jaccard (0-1)"),
        ("proxy_minilm_cosine", "PROXY MiniLM cosine (-1..1)"),
    ):
        mean, detail = _block_cell(summary[key], 2 if key.startswith("judge") else 3)
        rows.append([title, mean, detail])
    hit = summary["proxy_emotion_words"]["label_hit_rate"]
    rows.append(
        [
            "PROXY reference-label category hit rate",
            fmt(hit["mean"], 3),
            f"{hit['n_scored']} of {hit['n_candidates']}",
        ]
    )
    return rows


def _emer_md(result: Any, preds: Table, refs: Table) -> list[str]:
    """``report.md`` of an EMER run; says plainly which rows are proxies and not EMER numbers."""
    summary = result.summary
    lines = [
        "# EMER reasoning evaluation",
        "",
        *md_inputs(preds, refs),
        f"- accounts compared: {summary['n_with_prediction']} of {summary['n_references']} references "
        f"(language column: {summary['text_language']}); emotion wheel v{summary['emotion_wheel_version']}",
        "",
        "Judge scores follow the EMER protocol (an LLM rates overlap 1–10 at temperature 0). Rows marked "
        "PROXY need no LLM and are **not** comparable with published EMER numbers; they are for "
        "regression tracking between your own runs.",
        "",
        *md_table(["metric", "mean", "samples scored / detail"], _emer_rows(summary)),
        "",
    ]
    judge = summary.get("judge")
    if judge:
        lines += [
            f"Judge: requested `{judge['requested_model']}`, server reported {judge['reported_models']}; "
            f"prompts {judge['prompt_version']}; {judge['calls']} calls "
            f"({judge['cached_calls']} from cache); "
            "every raw reply is in `judge_replies.jsonl`.",
            "",
        ]
    lines += ["![per-sample scores](scores.png)", "", *md_warnings(result.warnings)]
    return lines


def _ov_grouping(summary: dict[str, Any]) -> str:
    """How the words were grouped, in a few words for the report header."""
    if summary.get("grouping") == "mer2024-cache":
        cache = summary["synonym_cache"]
        return f"MER2024 synonym cache {cache['path']} ({cache['entries']} entries, sha256 {cache['sha256'][:12]}…)"
    return f"emotion wheel v{summary['emotion_wheel_version']}"


def _ov_comparability(summary: dict[str, Any]) -> str:
    """What the headline number may be compared with (docs/evaluate.md has the full table)."""
    if summary.get("grouping") == "mer2024-cache":
        return (
            "Words are grouped with a frozen per-sample GPT synonym cache and scored exactly as the MER2024 "
            "scorer does: with the cache made for these very predictions, the mean is the official MER-OV number. "
            "Words the cache does not list are matched literally."
        )
    return (
        "Synonyms are grouped with emollama's fixed emotion wheel (deterministic), not per-sample GPT "
        "grouping as in MER2024, so numbers are not the challenge's; use `--synonyms` with a synonym cache "
        "to reproduce those."
    )


def write_ov(result: Any, preds: Table, refs: Table, out_dir: str | Path) -> dict[str, Path]:
    """Artefacts of a MER-OV run: metrics.json, report.md, samples.csv, histogram (and judge calls)."""
    from emollama.evaluate.plots import score_histogram_png

    out, paths = _start_run("ov", result, preds, refs, out_dir, _OV_COLUMNS)
    if result.judge_calls:
        paths["judge_replies"] = write_judge_calls(out / "judge_replies.jsonl", result.judge_calls)
    paths["histogram"] = score_histogram_png(
        {
            "set accuracy": [s.accuracy for s in result.samples],
            "set recall": [s.recall for s in result.samples],
        },
        out / "scores.png",
        "MER-OV per-sample set scores (synonym groups)",
        "score",
        [i / 10 - 0.05 for i in range(12)],
    )
    s = result.summary
    g, c = s["synonym_groups"], s["basic_categories"]
    lines = [
        "# MER-OV open-vocabulary evaluation",
        "",
        *md_inputs(preds, refs),
        f"- samples scored: {s['n_scored']} of {s['n_references']}; words from: {s['word_sources']}; "
        f"extractor for free text: {s['extractor']}; grouping: {_ov_grouping(s)}",
        f"- per-sample status: {s['status_counts']}",
        "",
        _ov_comparability(s),
        "",
        *md_table(
            ["level", "set accuracy #(G∩P)/#P", "set recall #(G∩P)/#G", "mean"],
            [
                ["synonym groups (MER-OV score)", fmt(g["accuracy"]), fmt(g["recall"]), fmt(g["mean"])],
                ["basic categories (coarse)", fmt(c["accuracy"]), fmt(c["recall"]), fmt(c["mean"])],
            ],
        ),
        "",
        "![per-sample scores](scores.png)",
        "",
        *md_warnings(result.warnings),
    ]
    return _write_report(paths, out, lines)
