"""``emollama analyze``: one file, or a manifest of many with a resumable JSONL output."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from emollama.errors import EmollamaError, InputError, Interrupted
from emollama.files import atomic_write_text
from emollama.labels import DEFAULT_LABEL_SET, LABEL_SETS
from emollama.media.decode import DEFAULT_FPS, DEFAULT_MAX_DURATION_S
from emollama.settings import AnalysisSettings
from emollama.validate import check_output_file

console = Console()


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze_command)


def analyze_command(
    path: Path | None = typer.Argument(None, help="Video, audio or image file (a name that starts with '-' "
                                       "goes after '--': emollama analyze -- -clip.mp4)."),
    subtitle: str | None = typer.Option(None, "--subtitle", "-s",
                                        help="Transcript text, or a .srt/.vtt/.txt file (else speech recognition). "
                                        "A value ending in a subtitle suffix, starting with / ./ ../ ~, or naming "
                                        "an existing file is read as a file (an error if it cannot be)."),
    labels: str = typer.Option(DEFAULT_LABEL_SET, "--labels", "-l", help=f"Label set: {', '.join(LABEL_SETS)}."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the full result (versioned schema) here."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a PNG: AUs over time + per-modality scores."),
    fps: float = typer.Option(DEFAULT_FPS, "--fps", help="Frames sampled per second of video."),
    max_duration: float = typer.Option(DEFAULT_MAX_DURATION_S, "--max-duration",
                                       help="Refuse media longer than this many seconds."),
    manifest: Path | None = typer.Option(None, "--manifest", help="CSV with a 'path' column (+ optional 'subtitle')."),
    out: Path | None = typer.Option(None, "--out", help="JSONL output for --manifest (resumable)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="With --manifest: redo clips that failed before."),
    no_asr: bool = typer.Option(False, "--no-asr", help="Do not transcribe speech (use --subtitle only)."),
    tier: str = typer.Option("clues", "--tier", help="Recogniser: 'clues' (default, offline), 'llm' (the clues, "
                             "then a chat LLM names the label and says why) or 'emotion-llama'."),
    model: Path | None = typer.Option(None, "--model", help="With --tier emotion-llama: the model folder "
                                      "(default: the shipped emotion-llama-mini)."),
    fusion: str = typer.Option("learned", "--fusion",
                               help="With the clues tier: 'learned' (the Conv-Attention head, default) or "
                               "'handset' (the fixed log-linear pooling used before it)."),
    llm: str | None = typer.Option(None, "--llm", help="With --tier llm: an http(s):// OpenAI-compatible server, "
                                   "a .gguf file or a Hugging Face model folder (default: the packaged "
                                   "SmolLM2-135M-Instruct)."),
    llm_model: str | None = typer.Option(None, "--llm-model", help="With --tier llm and an http(s):// --llm: the "
                                         "model name the server expects."),
) -> None:
    """Recognise the emotion in a clip from face, voice and words, and explain why."""
    from emollama.cli.render import render_result

    settings = AnalysisSettings(fps=fps, max_duration_s=max_duration, label_set=labels, asr=not no_asr)
    if tier not in ("clues", "llm", "emotion-llama"):
        raise InputError(f"unknown --tier {tier!r}; choose 'clues', 'llm' or 'emotion-llama'")
    llm_options = _llm_options(tier, llm, llm_model)
    from emollama.recognize.clues import DEFAULT_FUSION, check_fusion

    check_fusion(fusion, "--fusion")
    if tier != "clues" and fusion != DEFAULT_FUSION:
        raise InputError("--fusion chooses how the clues tier combines the modalities; it has no effect with "
                         f"--tier {tier}")
    if manifest is not None:
        if path is not None:
            raise InputError("give either a PATH or --manifest, not both")
        if out is None:
            raise InputError("--manifest needs --out preds.jsonl")
        if json_out is not None or plot is not None:
            raise InputError("--json and --plot are for one file; with --manifest every result goes into --out")
        # The batch file's content is checked by read_done: only its own records (and a last line cut
        # by a crash) may be in it.
        check_output_file(out, what="--out", suffixes=(".jsonl",), inputs=[manifest], owned=lambda _p: True)
        _run_manifest(manifest, out, settings, retry_failed, tier, model, fusion, llm_options)
        return
    if path is None:
        raise InputError("give a media file to analyze (or --manifest clips.csv --out preds.jsonl)")
    from emollama.media.decode import MediaReader
    from emollama.media.subtitles import resolve_subtitle

    # Every input problem surfaces before any model loads (seconds saved on each typo).
    MediaReader(path, max_duration_s=settings.max_duration_s)
    resolve_subtitle(subtitle)
    _check_outputs(path, subtitle, json_out, plot)
    stream = _Stream() if tier == "emotion-llama" else None
    analyzer = _make_analyzer(settings, tier, model, fusion, {"on_text": stream} if stream else llm_options)
    result = _analyze_with_progress(analyzer, path, subtitle, stream)
    render_result(console, result)
    if json_out is not None:
        atomic_write_text(json_out, result.model_dump_json(indent=2))
        console.print(f"[dim]wrote {json_out}[/]")
    if plot is not None:
        from emollama.visualize import plot_result

        plot_result(result, plot)
        console.print(f"[dim]wrote {plot}[/]")


class _Stream:
    """Prints a model's answer as it is generated: the progress bar stops at the first piece."""

    def __init__(self) -> None:
        self.bar: Progress | None = None
        self.task: str | None = None

    def __call__(self, task: str, piece: str) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        if task != self.task:
            console.print(("\n" if self.task else "") + "[dim]" + escape(f"[{task}]") + "[/] ", end="")
            self.task = task
        console.print(piece, end="", markup=False, highlight=False, soft_wrap=True)

    def end(self) -> None:
        if self.task is not None:
            console.print()


def _analyze_with_progress(analyzer, path: Path, subtitle: str | None,  # noqa: ANN001, ANN202
                           stream: _Stream | None = None):
    """One file with a bar over media time (the face stage walks the video), then the stage names."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(),
               TextColumn("{task.fields[media]}"), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("analysing", total=None, media="")
        if stream is not None:
            stream.bar = bar

        def stage(name: str) -> None:
            bar.update(task, description=f"analysing: {name}")

        def media(done_s: float, total_s: float) -> None:
            bar.update(task, completed=min(done_s, total_s), total=max(total_s, 1e-3),
                       media=f"{min(done_s, total_s):.0f}/{total_s:.0f} s of media")

        try:
            return analyzer.analyze(path, subtitle=subtitle, progress=stage, media_progress=media)
        finally:
            if stream is not None:
                stream.end()


def _check_outputs(path: Path, subtitle: str | None, json_out: Path | None, plot: Path | None) -> None:
    """--json and --plot: the right suffix, never an input or each other, a file replaced only if it is ours."""
    from emollama.media.subtitles import names_a_file
    from emollama.visualize import is_emollama_plot

    inputs = [path] + ([Path(subtitle.strip()).expanduser()] if subtitle and names_a_file(subtitle) else [])
    if json_out is not None:
        check_output_file(json_out, what="--json", suffixes=(".json",), inputs=inputs,
                          others=[plot] if plot is not None else [], owned=is_emollama_result)
    if plot is not None:
        check_output_file(plot, what="--plot", suffixes=(".png",), inputs=inputs,
                          others=[json_out] if json_out is not None else [], owned=is_emollama_plot)


def is_emollama_result(path: Path) -> bool:
    """Whether ``path`` holds an AnalysisResult this command wrote before (so rewriting it loses nothing)."""
    try:
        if path.stat().st_size > 200_000_000:
            return False
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "schema_version" in data and "emollama_version" in data


def _llm_options(tier: str, llm: str | None, llm_model: str | None) -> dict[str, object]:
    """The ``llm`` tier's options, checked before any model loads (a bad --llm is one line, not a traceback)."""
    if tier != "llm":
        if llm is not None or llm_model is not None:
            raise InputError("--llm and --llm-model choose the LLM of --tier llm; they have no effect with "
                             f"--tier {tier}")
        return {}
    import os

    from emollama.recognize.llm_tier import check_llm_target

    check_llm_target(llm, llm_model)
    return {"llm": llm, "llm_model": llm_model,
            "api_key": os.environ.get("EMOLLAMA_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")}


def _make_analyzer(settings: AnalysisSettings, tier: str, model: Path | None, fusion: str,  # noqa: ANN202
                   llm_options: dict[str, object] | None = None):
    from emollama.api import Analyzer, load_recognizer

    options = {"fusion": fusion} if tier == "clues" else dict(llm_options or {})
    if tier == "emotion-llama":
        options = {k: v for k, v in options.items() if k == "on_text"}
    with console.status("loading models ..."):
        return Analyzer(settings, recognizer=load_recognizer(tier, model, **options))


def _run_manifest(manifest: Path, out: Path, settings: AnalysisSettings, retry_failed: bool, tier: str,
                  model: Path | None, fusion: str, llm_options: dict[str, object] | None = None) -> None:
    from emollama.batch import exclusive_output

    with exclusive_output(out):
        _run_manifest_locked(manifest, out, settings, retry_failed, tier, model, fusion, llm_options)


def _run_manifest_locked(manifest: Path, out: Path, settings: AnalysisSettings, retry_failed: bool, tier: str,
                         model: Path | None, fusion: str, llm_options: dict[str, object] | None = None) -> None:
    from emollama.batch import ok_record, read_done, read_manifest, run_batch

    rows = read_manifest(manifest)
    done = read_done(out, retry_failed)
    todo = [r for r in rows if r.key not in done]
    console.print(f"{len(rows)} clips in {manifest}; {len(rows) - len(todo)} already in {out}; {len(todo)} to do")
    if not todo:
        return
    analyzer = _make_analyzer(settings, tier, model, fusion, llm_options)

    def one(row):  # noqa: ANN001, ANN202
        result = analyzer.analyze(row.path, subtitle=row.subtitle)
        return ok_record(row, json.loads(result.model_dump_json()))

    failed = 0
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    done_now = 0
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("analysing", total=len(todo))
        try:
            for row, record in run_batch(one, rows, out, retry_failed=retry_failed):
                done_now += 1
                if record["status"] == "error":
                    failed += 1
                    progress.console.print(f"[red]failed[/] {row.key}: {escape(record['error'])}")
                progress.advance(task)
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted after {done_now} of {len(todo)} clips; they are saved in {out} - "
                              "run the same command again to resume") from None
    console.print(f"done: {len(todo) - failed} analysed, {failed} failed -> {out}")


__all__ = ["register", "EmollamaError"]
