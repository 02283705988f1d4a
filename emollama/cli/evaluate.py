"""``emollama evaluate classification|emer|ov|grounding``: thin wrappers over :mod:`emollama.evaluate`.

Each command reads the two files, runs the task, writes the artefacts to ``--out`` and prints a
short summary table; all numbers and wording of the report come from the library.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table as RichTable

from emollama.validate import check_output_dir

console = Console()

PredOpt = Annotated[
    Path, typer.Option("--pred", "-p", help="Predictions: emollama analyze JSONL, or CSV/JSON(L).")
]
RefOpt = Annotated[
    Path, typer.Option("--ref", "-r", help="References: CSV/TSV/JSON(L) or Emotion-LLaMA list.")
]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Folder for metrics.json, report.md, plots.")]
JudgeUrl = Annotated[
    str | None,
    typer.Option(
        "--judge-url", help="OpenAI-compatible base URL of the judge, e.g. http://127.0.0.1:11434/v1"
    ),
]
JudgeModel = Annotated[str | None, typer.Option("--judge-model", help="Judge model name sent to the server.")]
JudgeKeyEnv = Annotated[
    str, typer.Option("--judge-api-key-env", help="Environment variable holding the judge's API key, if any.")
]
JudgeTimeout = Annotated[float, typer.Option("--judge-timeout", help="Seconds per judge request.")]
JudgeRetries = Annotated[
    int, typer.Option("--judge-retries", help="Retries per judge request (with backoff).")
]
JudgeConcurrency = Annotated[int, typer.Option("--judge-concurrency", help="Parallel judge requests.")]
CacheDir = Annotated[
    Path | None, typer.Option("--cache-dir", help="Judge reply cache (default: OUT/judge_cache).")
]
Offline = Annotated[
    bool, typer.Option("--judge-offline", help="Use only cached judge replies (re-score a finished run).")
]


def _judge(url, model, key_env, timeout, retries, concurrency, cache_dir, offline, out):
    """Build the cached judge, or ``None`` when no URL was given."""
    from emollama.evaluate.judge import Judge
    from emollama.llm import CachedBackend, OpenAICompatibleBackend

    if not url and not offline:
        return None
    if not model:
        raise typer.BadParameter("--judge-model is required with --judge-url / --judge-offline")
    backend = OpenAICompatibleBackend(
        url or "http://127.0.0.1:1/v1",
        model,
        api_key=os.environ.get(key_env) if key_env else None,
        timeout_s=timeout,
        max_retries=retries,
        max_concurrency=concurrency,
    )
    cached = CachedBackend(backend, cache_dir or (out / "judge_cache"), offline=offline)
    return Judge(cached, max_workers=concurrency)


def _read(pred: Path, ref: Path, out: Path, lang: str = "en"):
    """The two input tables, once ``--out`` is known to be usable (a file named like the folder fails first)."""
    from emollama.evaluate.readers import read_table

    check_output_dir(out, what="--out")
    refs = read_table(ref, lang=lang, role="references")
    preds = read_table(pred, lang=lang, role="predictions")
    return preds, refs


def _print_warnings(warnings: list[str] | tuple[str, ...]) -> None:
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)


def _done(paths: dict[str, Path]) -> None:
    console.print(f"report: {paths['report']}\nmetrics: {paths['metrics']}", highlight=False)


def _table(title: str, *columns: str) -> RichTable:
    """An empty summary table with these column headers."""
    table = RichTable(title=title)
    for column in columns:
        table.add_column(column)
    return table


def _finish(table: RichTable, warnings: list[str] | tuple[str, ...], paths: dict[str, Path]) -> None:
    """What every command ends with: its summary table, the warnings, where the artefacts are."""
    console.print(table)
    _print_warnings(warnings)
    _done(paths)


def register(app: typer.Typer) -> None:
    """Add the ``evaluate`` command group to the main app."""
    group = typer.Typer(
        help="Benchmarks: closed-set classification, EMER reasoning, MER-OV open vocabulary, reasoning grounding.",
        no_args_is_help=True,
        rich_markup_mode=None,  # as the main app (see emollama.cli)
    )
    group.command("classification")(classification_command)
    group.command("emer")(emer_command)
    group.command("ov")(ov_command)
    group.command("grounding")(grounding_command)
    app.add_typer(group, name="evaluate")


# ------------------------------------------------------------------------------------ classification
def classification_command(
    pred: PredOpt,
    ref: RefOpt,
    out: OutOpt,
    label_set: Annotated[
        str | None,
        typer.Option("--label-set", help="mer6, merr9, dfew7, ekman7 (default: from references)."),
    ] = None,
) -> None:
    """Accuracy, weighted/macro F1, UAR/WAR, confusion matrix, MULTI; strict and official parsing."""
    from emollama.evaluate.classification import evaluate_classification
    from emollama.evaluate.report import write_classification

    preds, refs = _read(pred, ref, out)
    result = evaluate_classification(refs, preds, label_set)
    paths = write_classification(result, preds, refs, out)
    _finish(_classification_table(result), result.warnings, paths)


def _classification_table(result: Any) -> RichTable:
    """The headline metrics side by side, strict vs official-compatible parsing."""
    from emollama.evaluate.report import fmt

    table = _table(f"classification ({result.label_set}, n={result.strict.n})", "metric", "strict",
                   "official-compatible")
    s, o = result.strict, result.official
    for name, a, b in (
        ("accuracy", s.accuracy, o.accuracy),
        ("weighted F1", s.weighted_f1, o.weighted_f1),
        ("macro F1", s.macro_f1, o.macro_f1),
        ("UAR", s.uar, o.uar),
        ("WAR", s.war, o.war),
    ):
        table.add_row(name, fmt(a), fmt(b))
    if result.valence and result.valence.get("mse") is not None:
        v = result.valence
        table.add_row("MULTI (F1 − 0.25·MSE)", fmt(v["multi_strict"]), fmt(v["multi_official"]))
    return table


# ------------------------------------------------------------------------------------ emer
def emer_command(
    pred: PredOpt,
    ref: RefOpt,
    out: OutOpt,
    lang: Annotated[str, typer.Option("--lang", help="Which reference text column: en or zh.")] = "en",
    judge_url: JudgeUrl = None,
    judge_model: JudgeModel = None,
    judge_api_key_env: JudgeKeyEnv = "OPENAI_API_KEY",
    judge_timeout: JudgeTimeout = 60.0,
    judge_retries: JudgeRetries = 3,
    judge_concurrency: JudgeConcurrency = 4,
    cache_dir: CacheDir = None,
    judge_offline: Offline = False,
    embedding: Annotated[
        bool, typer.Option("--embedding/--no-embedding", help="MiniLM cosine proxy (if installed).")
    ] = True,
    embedding_model: Annotated[
        Path | None,
        typer.Option("--embedding-model", help="all-MiniLM-L6-v2 folder (default: packaged)."),
    ] = None,
) -> None:
    """EMER clue/label overlap by a judge LLM, plus offline proxies (emotion words, MiniLM)."""
    from emollama.evaluate.emer import evaluate_emer, load_embedder
    from emollama.evaluate.report import write_emer

    if lang not in ("en", "zh"):
        raise typer.BadParameter("--lang must be en or zh")
    preds, refs = _read(pred, ref, out, lang)
    judge = _judge(judge_url, judge_model, judge_api_key_env, judge_timeout, judge_retries, judge_concurrency,
                   cache_dir, judge_offline, out)
    embedder, reason = load_embedder(embedding, str(embedding_model) if embedding_model else None)
    if reason and embedding:
        console.print(f"[yellow]MiniLM proxy skipped:[/] {reason}", highlight=False, soft_wrap=True)
    with console.status("scoring…"):
        result = evaluate_emer(refs, preds, judge=judge, embedder=embedder, embedder_error=reason, lang=lang)
    paths = write_emer(result, preds, refs, out)
    _finish(_emer_table(result), result.warnings, paths)


def _emer_table(result: Any) -> RichTable:
    """One row per score block: its mean and how many samples it covers, or why it was skipped."""
    table = _table(f"EMER ({result.summary['n_with_prediction']} accounts)", "metric", "mean", "scored")
    for key in (
        "judge_clue_overlap",
        "judge_label_overlap",
        "proxy_emotion_words",
        "proxy_minilm_cosine",
    ):
        block = result.summary[key]
        if block.get("status") == "skipped":
            table.add_row(key, "skipped", block["reason"][:60])
        else:
            mean = "—" if block["mean"] is None else f"{block['mean']:.3f}"
            table.add_row(key, mean, f"{block['n_scored']}/{block['n_candidates']}")
    return table


# ------------------------------------------------------------------------------------ ov
def ov_command(
    pred: PredOpt,
    ref: RefOpt,
    out: OutOpt,
    extractor: Annotated[
        str,
        typer.Option(
            "--extractor", help="For free text: lexicon (offline) or judge (needs --judge-url)."
        ),
    ] = "lexicon",
    lang: Annotated[
        str, typer.Option("--lang", help="Which text column when text is used: en or zh.")
    ] = "en",
    judge_url: JudgeUrl = None,
    judge_model: JudgeModel = None,
    judge_api_key_env: JudgeKeyEnv = "OPENAI_API_KEY",
    judge_timeout: JudgeTimeout = 60.0,
    judge_retries: JudgeRetries = 3,
    judge_concurrency: JudgeConcurrency = 4,
    cache_dir: CacheDir = None,
    judge_offline: Offline = False,
    grouping: Annotated[
        str,
        typer.Option(
            "--grouping",
            help="Synonym table: wheel-v2 (word forms and hedges matched) or wheel-v1 (the earlier, strict table); "
            "not used with --synonyms.",
        ),
    ] = "wheel-v2",
    synonyms: Annotated[
        Path | None,
        typer.Option(
            "--synonyms",
            help="MER2024 synonym cache (folder or .zip of NAME.npy, e.g. MERTools openset-synonym.zip): "
            "score exactly as the official MER-OV scorer.",
        ),
    ] = None,
) -> None:
    """MER-OV set accuracy, recall and their mean: deterministic wheel grouping, or the official cache."""
    from emollama.evaluate.ov import evaluate_ov
    from emollama.evaluate.report import fmt, write_ov

    if extractor not in ("lexicon", "judge"):
        raise typer.BadParameter("--extractor must be lexicon or judge")
    if grouping not in ("wheel-v2", "wheel-v1"):
        raise typer.BadParameter("--grouping must be wheel-v2 or wheel-v1")
    if synonyms is not None and (extractor != "lexicon" or judge_url or judge_offline):
        raise typer.BadParameter("--synonyms scores openset lists as they are; it takes no --extractor or judge")
    preds, refs = _read(pred, ref, out, lang)
    if synonyms is not None:
        from emollama.evaluate.ov_official import evaluate_ov_official, load_synonym_cache

        result = evaluate_ov_official(refs, preds, load_synonym_cache(synonyms))
    else:
        judge = _judge(judge_url, judge_model, judge_api_key_env, judge_timeout, judge_retries,
                       judge_concurrency, cache_dir, judge_offline, out)
        result = evaluate_ov(refs, preds, extractor=extractor, judge=judge,  # type: ignore[arg-type]
                             wheel_version=int(grouping[-1]))
    paths = write_ov(result, preds, refs, out)
    g = result.summary["synonym_groups"]
    table = _table(f"MER-OV ({result.summary['n_scored']} samples)", "set accuracy", "set recall", "mean")
    table.add_row(fmt(g["accuracy"]), fmt(g["recall"]), fmt(g["mean"]))
    _finish(table, result.warnings, paths)


# ------------------------------------------------------------------------------------ grounding
def _is_grounding_json(path: Path) -> bool:
    """An existing --json file may be replaced only when it is an earlier grounding report."""
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8")).get("schema") == "emollama.grounding/1"
    except (OSError, ValueError, AttributeError):
        return False


def grounding_command(
    results: Annotated[
        Path, typer.Argument(help="emollama analyze results: a --manifest --out JSONL, a --json file, or a folder.")
    ],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the summary and every paragraph's cue checks here.")
    ] = None,
) -> None:
    """Share of reasoning paragraphs whose cited cues (AUs, voice, quotes) match the measured clues."""
    from emollama.evaluate.grounding import CUE_TYPES, evaluate_grounding
    from emollama.files import atomic_write_text
    from emollama.validate import check_output_file

    if json_out is not None:
        check_output_file(json_out, what="--json", suffixes=(".json",), inputs=[results], owned=_is_grounding_json)
    report = evaluate_grounding(results)
    table = _table(f"grounding ({report['summary']['n']} paragraphs)", "tier", "n", "grounded", "contradicted",
                   "unverified", "uncited")
    rows = [*report["by_tier"].items(), ("all", report["summary"])] if len(report["by_tier"]) > 1 else \
        list(report["by_tier"].items())
    for tier, s in rows:
        table.add_row(tier, str(s["n"]), f"{s['share_grounded']:.3f}", f"{s['share_contradicted']:.3f}",
                      f"{s['share_unverified']:.3f}", f"{s['share_uncited']:.3f}")
    cues = _table("cues (all tiers)", "type", "matched", "contradicted", "unverifiable")
    for kind in CUE_TYPES:
        c = report["summary"]["by_type"][kind]
        cues.add_row(kind, str(c["matched"]), str(c["contradicted"]), str(c["unverifiable"]))
    console.print(table)
    console.print(cues)
    top = list(report["summary"]["contradicted_keys"].items())[:8]
    if top:
        console.print("most contradicted: " + ", ".join(f"{k} {n}" for k, n in top), highlight=False, soft_wrap=True)
    _print_warnings(report["warnings"])
    if json_out is not None:
        import json

        atomic_write_text(json_out, json.dumps(report, indent=2, ensure_ascii=False))
        console.print(f"report: {json_out}", highlight=False)


__all__ = ["register"]
