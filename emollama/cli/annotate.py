"""``emollama annotate`` (MERR construction) and ``emollama export`` (training formats)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from emollama.errors import InputError
from emollama.labels import DEFAULT_LABEL_SET, get_label_set
from emollama.merr.consistency import DEFAULT_FACE_RANK

if TYPE_CHECKING:
    from emollama.llm.factory import LLMSpec
    from emollama.merr.inputs import ClipItem
    from emollama.merr.record import MerrRecord
    from emollama.merr.runner import RunConfig

console = Console()


def register(app: typer.Typer) -> None:
    app.command("annotate")(annotate_command)
    app.command("export")(export_command)


#: Under this share of kept clips annotate warns (the exports would hold few or no clips).
LOW_KEEP_RATE = 0.2


def annotate_command(
    source: Path = typer.Argument(..., help="Folder of clips, a CSV manifest (path[,subtitle][,label]) or one file."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (one JSON per clip; rerun to resume)."),
    labels: Path | None = typer.Option(None, "--label-file", help="CSV name,label of ground-truth labels."),
    old_labels: Path | None = typer.Option(None, "--labels", hidden=True,
                                           help="Renamed --label-file (in analyze, --labels names a label set)."),
    subtitles: Path | None = typer.Option(None, "--subtitles", help="CSV name,sentence (or subtitle/transcript_en)."),
    llm: str | None = typer.Option(None, "--llm", help="Fine annotations by an LLM: http(s):// URL of an "
                                   "OpenAI-compatible server, a .gguf file, or a local HF model folder."),
    llm_model: str | None = typer.Option(None, "--llm-model", help="Model name sent to an http:// server."),
    llm_timeout: float = typer.Option(60.0, "--llm-timeout", help="Seconds per LLM request."),
    llm_retries: int = typer.Option(2, "--llm-retries", help="Retries (with backoff) per LLM request."),
    llm_vision: bool = typer.Option(False, "--llm-vision", help="Also send each peak frame (JPEG) to the --llm "
                                    "server for a scene description; needs an http(s):// server whose model "
                                    "reads images."),
    workers: int = typer.Option(1, "--workers", "-j", help="Worker processes (each loads the models once)."),
    ray_address: str | None = typer.Option(None, "--ray-address",
                                           help="Run on Ray: 'auto', ray://host:port, or 'local'."),
    label_set: str = typer.Option(DEFAULT_LABEL_SET, "--label-set", help="Label set for pseudo-labels."),
    au_threshold: float = typer.Option(1.0, "--au-threshold", help="AU intensity (0-5) that counts as present."),
    face_rank: int = typer.Option(DEFAULT_FACE_RANK, "--face-rank",
                                  help="Also keep a clip when the facial-expression model ranks its label in its top N "
                                  "(0: the AU rule alone, as in MERR)."),
    fine_dropped: bool = typer.Option(False, "--fine-dropped", help="Also write fine annotations for dropped clips."),
    no_asr: bool = typer.Option(False, "--no-asr", help="Do not transcribe speech (subtitles only)."),
) -> None:
    """Build MERR coarse and fine annotations for a set of clips, with a run report."""
    from emollama.merr.annotate import AnnotateOptions
    from emollama.merr.runner import RunConfig, plan_run

    if old_labels is not None:
        raise InputError("annotate --labels is now --label-file (a CSV of name,label ground truth): in analyze "
                         "--labels names a label set, which here is --label-set")
    get_label_set(label_set)
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if not 0 <= face_rank <= 3:
        raise InputError(f"--face-rank must be 0 (AU rule alone) to 3 (a larger rank would keep almost any "
                         f"label), got {face_rank}")
    from emollama.validate import check_output_dir

    check_output_dir(out, what="--out")
    items = _read_items(source, labels, subtitles)
    spec = _llm_spec(out, llm, llm_model, llm_timeout, llm_retries)
    config = RunConfig(options=AnnotateOptions(label_set=label_set, au_threshold=au_threshold,
                                               fine_for_dropped=fine_dropped, face_rank=face_rank), llm=spec,
                       asr=not no_asr,
                       vision=llm_vision)
    _check_config(config)
    plan = plan_run(items, out, config)
    console.print(f"{len(items)} clips; {len(plan.finished)} already annotated in {out}; {len(plan.todo)} to do"
                  + (f"; {len(plan.fine_retry)} with a failed LLM step to retry" if plan.fine_retry else ""))
    stats = _run_with_progress(items, out, config, len(plan.todo) + len(plan.fine_retry), workers, ray_address)
    _report(out, stats)


def _read_items(source: Path, labels: Path | None, subtitles: Path | None) -> list[ClipItem]:
    """The clips to annotate, with subtitles and ground-truth labels attached where given."""
    from emollama.merr.inputs import apply_labels, apply_subtitles, discover, read_labels, read_subtitles

    items = discover(source)
    if subtitles is not None:
        items = apply_subtitles(items, read_subtitles(subtitles))
    if labels is not None:
        given = read_labels(labels)
        items = apply_labels(items, given, str(labels))
        unmatched = sorted(set(given) - {it.name for it in items})
        if unmatched:
            console.print(f"[yellow]{len(unmatched)} label(s) name no clip[/] (e.g. {', '.join(unmatched[:3])})")
    return items


def _llm_spec(out: Path, llm: str | None, llm_model: str | None, llm_timeout: float,
              llm_retries: int) -> LLMSpec | None:
    """The fine-annotation LLM, if one was given; its replies are cached in the output folder."""
    from emollama.llm.factory import LLMSpec

    if llm is None:
        return None
    return LLMSpec(llm, llm_model, os.environ.get("EMOLLAMA_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY"),
                   timeout_s=llm_timeout, max_retries=llm_retries, cache_dir=str(out / ".llm_cache"))


def _check_config(config: RunConfig) -> None:
    """Fail on a bad vision or LLM setting before any perception model loads."""
    from emollama.merr.runner import check_vision

    check_vision(config)
    if config.llm is not None:
        from emollama.llm.factory import make_backend

        make_backend(config.llm)  # fail on a bad spec before any perception model loads


def _run_with_progress(items: list[ClipItem], out: Path, config: RunConfig, total: int, workers: int,
                       ray_address: str | None) -> dict[str, Any]:
    """Annotate with a progress bar; failures and filtered LLM steps are printed as they happen."""
    from emollama.cli.progress import batch_progress
    from emollama.merr.runner import run_annotation

    with batch_progress(console) as progress:
        task = progress.add_task("annotating (loading models)", total=total)

        def on_event(event: tuple) -> None:
            kind, name, payload = event
            if kind == "error":
                progress.console.print(f"[red]failed[/] {name}: {payload}")
            elif kind == "done":
                if payload.fine.status in ("filtered", "llm_error"):
                    progress.console.print(f"[yellow]fine {payload.fine.status}[/] {name}: {payload.fine.reason}")
                vd = payload.coarse.visual_description
                if vd is not None and vd.status in ("filtered", "llm_error"):
                    progress.console.print(f"[yellow]vision {vd.status}[/] {name}: {vd.reason}")
            progress.update(task, description="annotating")
            progress.advance(task)

        return run_annotation(items, out, config, workers=workers, ray_address=ray_address, on_event=on_event)


def _report(out: Path, stats: dict[str, Any]) -> None:
    """Write the run report from what is on disk and print the one-line outcome."""
    from emollama.merr.record import read_errors, read_records
    from emollama.merr.report import write_report

    records, errors = read_records(out), read_errors(out)
    md, png = write_report(out, records, errors, stats)
    kept = sum(r.filter.kept for r in records)
    rate = f", {60 * stats['annotated'] / stats['wall_s']:.1f} clips/min" if stats["annotated"] else ""
    console.print(f"done: {stats['annotated']} annotated, {stats['failed']} failed in {stats['wall_s']:.1f} s{rate}; "
                  f"{kept}/{len(records)} kept by the MERR filter -> {out}")
    console.print(f"[dim]report: {md}, {png}[/]")
    if warning := low_keep_warning(records):
        console.print(f"[bold red]warning:[/] {warning}", highlight=False)


def low_keep_warning(records: list[MerrRecord]) -> str | None:
    """A loud word when the filter keeps under :data:`LOW_KEEP_RATE` of the clips (exports would be thin or empty)."""
    if not records:
        return None
    kept = sum(r.filter.kept for r in records)
    if kept >= LOW_KEEP_RATE * len(records):
        return None
    reasons = Counter(r.filter.code for r in records if not r.filter.kept).most_common(3)
    why = ", ".join(f"{code} {n}" for code, n in reasons)
    return (f"the filter kept only {kept} of {len(records)} clips ({kept / len(records):.0%}; most dropped for: "
            f"{why}). "
            "Exports hold kept clips only: see report.md for each reason, loosen --au-threshold or --face-rank, or "
            "export with --keep-dropped to include the dropped clips and their reasons.")


def export_command(
    out: Path = typer.Argument(..., help="An annotate output folder."),
    fmt: str = typer.Option(..., "--format", "-f", help="emotion-llama, sharegpt or hf."),
    dest: Path | None = typer.Option(None, "--to", help="Where to write (default OUT/export/FORMAT)."),
    include_dropped: bool = typer.Option(False, "--keep-dropped", "--include-dropped",
                                         help="Also export the clips the MERR filter dropped, each with its "
                                         "filter decision and reason."),
    label_set: str = typer.Option("merr9", "--label-set", help="emotion-llama format: the labels kept (merr9, "
                                  "what the original code reads; e.g. dfew7 keeps disgust for `emollama train`)."),
) -> None:
    """Export finished annotations for training (ground-truth labels preserved in every format)."""
    from emollama.merr.exports import FORMATS, export
    from emollama.merr.record import read_records

    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    from emollama.labels import get_label_set

    get_label_set(label_set)  # an unknown set is a one-line error before any reading
    if fmt != "emotion-llama" and label_set != "merr9":
        raise InputError(f"--label-set chooses the labels of the emotion-llama format; {fmt} keeps every label")
    records = read_records(out)
    if not records:
        raise InputError(f"{out}: no finished annotations (run `emollama annotate ... -o {out}` first)")
    from emollama.validate import check_output_dir

    target = check_output_dir(dest or out / "export" / fmt, what="--to")
    info = export(records, fmt, target, include_dropped, label_set)
    extra = info.get("skipped_label_not_in_emotion_llama")
    console.print(f"exported {fmt} -> {target}: " + ", ".join(f"{k} {v}" for k, v in info.items()
                                                                if isinstance(v, int)))
    if extra:
        console.print(f"[yellow]{len(extra)} clip(s) skipped: label outside {label_set} (--label-set)[/]")
