"""``emollama pseudo-label``: keep the confident answers of an ``analyze --manifest`` run as training labels."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from emollama.train.fusion.pseudo import DEFAULT_MIN_CONFIDENCE  # torch-free: the CLI starts quickly


def register(app: typer.Typer) -> None:
    app.command("pseudo-label")(pseudo_label_command)


def pseudo_label_command(
    predictions: Path = typer.Argument(..., help="JSONL written by `emollama analyze --manifest M --out P.jsonl`."),
    out: Path = typer.Option(..., "--out", "-o", help="The pseudo-label manifest to write (.csv: path,label,..)."),
    min_confidence: float = typer.Option(DEFAULT_MIN_CONFIDENCE, "--min-confidence",
                                         help="Keep a clip when its top score reaches this (see docs/heads.md for "
                                         "the keep-rate / accuracy trade-off)."),
) -> None:
    """Turn confident predictions on unlabelled clips into a training manifest for the fusion head."""
    from emollama.train.fusion.pseudo import is_pseudo_label_manifest, read_answers, select, write_manifest
    from emollama.validate import check_input_file, check_output_file

    check_input_file(predictions, what="PREDICTIONS")
    check_output_file(out, what="--out", suffixes=(".csv",), inputs=[predictions], owned=is_pseudo_label_manifest)
    answers, skipped = read_answers(predictions)
    kept, why = select(answers, min_confidence)
    write_manifest(kept, out)
    console = Console()
    console.print(f"{len(kept)} of {len(answers)} answered clips kept (top score >= {min_confidence:g}); "
                  f"left out: {why['below_min_confidence']} below the threshold, "
                  f"{why['label_not_in_fusion_classes']} with a label the fusion head lacks; "
                  f"{len(skipped)} lines without an answer -> {out}", highlight=False, soft_wrap=True)
    for line in skipped[:10]:
        console.print(f"[dim]{line}[/]", highlight=False, soft_wrap=True)
