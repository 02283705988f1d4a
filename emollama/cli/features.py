"""``emollama features``: clips (or the original project's feature folders) → a feature store for training."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from emollama.errors import InputError, Interrupted

if TYPE_CHECKING:
    from emollama.features.store import FeatureStore

console = Console()
#: Failures listed in the summary; the rest are in FEATURES/failed.jsonl.
SHOWN_FAILURES = 20


def register(app: typer.Typer) -> None:
    app.command("features")(features_command)


def features_command(
    source: Path | None = typer.Argument(None, help="Folder of clips, a CSV manifest (path column), one file, or "
                                         "an `emollama annotate` output folder. Left out with --official."),
    out: Path = typer.Option(..., "--out", "-o", help="Feature folder: one safetensors file per clip and a "
                             "manifest of the encoders (rerun to resume)."),
    config: Path = typer.Option(..., "--config", help="Model config (YAML/JSON, or a model folder with "
                                "config.json): its encoders make the features."),
    workers: int = typer.Option(1, "--workers", "-j", help="Worker processes (each loads the models once)."),
    ray_address: str | None = typer.Option(None, "--ray-address",
                                           help="Run on Ray: 'auto', ray://host:port, or 'local'."),
    official: Path | None = typer.Option(None, "--official", help="Read the original project's feature folders "
                                         "(HL-UTT/, mae_340_UTT/, maeV_399_UTT/ or the MER2024 names, plus "
                                         "first_frames/) instead of extracting; give no SOURCE with it."),
    patch_dtype: str = typer.Option("float16", "--patch-dtype", help="Storage of the global patch tokens: "
                                    "float16 (half the disk) or float32; the vectors are always float32."),
    device: str = typer.Option("cpu", "--device", help="Where the encoders run: cpu, cuda, cuda:1 …"),
    batch_size: int = typer.Option(1, "--batch-size", help="Clips encoded together by each worker (a kill "
                                   "loses at most this many per worker)."),
) -> None:
    """Run the model's encoders on clips exactly as `analyze --tier emotion-llama` does, and store the features."""
    from emollama.features.extract import (
        ExtractConfig,
        check_device,
        check_patch_dtype,
        clip_items,
        extract_features,
        extraction_settings,
        load_model_config,
    )
    from emollama.validate import check_output_dir

    # Every input problem surfaces before torch and the models load.
    check_patch_dtype(patch_dtype)
    check_device(device)
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {batch_size}")
    if official is not None and source is not None:
        raise InputError("give either SOURCE (clips to extract) or --official DIR (features to read), not both")
    if official is not None and (workers > 1 or ray_address):
        raise InputError("--official reads .npy files and runs only the global encoder, in this process; "
                         "--workers and --ray-address do not apply")
    if official is None and source is None:
        raise InputError("give the clips to extract (a folder, a CSV manifest or an annotate output), "
                         "or --official DIR")
    check_output_dir(out, what="--out")
    cfg = load_model_config(config)

    if official is not None:
        from emollama.features.official import OfficialSource

        reader = OfficialSource(official, cfg)
        store = reader.create_store(out, patch_dtype)
        stats = _with_progress(store, _announce(store, reader.names), lambda notify: reader.convert(
            store, device=device, batch_size=batch_size, on_event=notify))
    else:
        from emollama.features.store import FeatureStore

        assert source is not None
        items = clip_items(source)
        # An absolute path (or a packaged config's name): worker processes and Ray actors on other
        # nodes read the config themselves.
        where = config.expanduser()
        spec = str(where.resolve()) if where.exists() else str(config)
        run = ExtractConfig(model_config=spec, device=device, batch_size=batch_size)
        store = FeatureStore.create(out, cfg, source="extracted", settings=extraction_settings(run, patch_dtype))
        stats = _with_progress(store, _announce(store, [it.name for it in items]), lambda notify: extract_features(
            items, store, run, workers=workers, ray_address=ray_address, on_event=notify))
    _summary(store, stats)


def _announce(store: FeatureStore, names: list[str]) -> int:
    """Say what is done and what is left; returns the number of clips to do."""
    done = sum(store.has(n) for n in names)
    retried = len(set(store.failures()) & set(names))
    console.print(f"{len(names)} clips; {done} already in {store.root}; {len(names) - done} to do"
                  + (f", {retried} of them failed last time and are retried" if retried else ""), highlight=False)
    return len(names) - done


def _with_progress(store: FeatureStore, todo: int, run: Any) -> dict[str, Any]:
    """``run(on_event)`` under a progress bar; failures are printed as they happen; Ctrl-C keeps what is done."""
    from emollama.cli.progress import batch_progress

    done_now = 0
    with batch_progress(console) as progress:
        task = progress.add_task("features (loading models)", total=todo)
        # A first sample now: results come a batch at a time, and Rich's rate over one burst would be absurd.
        progress.advance(task, 0)

        def on_event(event: tuple[str, str, Any]) -> None:
            nonlocal done_now
            kind, name, payload = event
            done_now += 1
            if kind == "error":
                progress.console.print(f"[red]failed[/] {escape(name)}: {escape(str(payload))}", highlight=False)
            progress.update(task, description="features")
            progress.advance(task)

        try:
            return run(on_event)
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted after {done_now} clips; their features are saved in {store.root} - "
                              "run the same command again to resume") from None


def _summary(store: FeatureStore, stats: dict[str, Any]) -> None:
    """Counts (done / skipped / failed) and the failed clips with their reasons."""
    from emollama.features.store import FAILED

    table = Table(title=f"features -> {store.root}", show_header=False, title_justify="left")
    rate = f" ({stats['done'] / stats['wall_s']:.2f} clips/s)" if stats["done"] and stats["wall_s"] else ""
    table.add_row("extracted now", f"{stats['done']}{rate}")
    table.add_row("skipped (already done)", str(stats["skipped"]))
    table.add_row("failed", f"[red]{stats['failed']}[/]" if stats["failed"] else "0")
    table.add_row("clips in the store", str(len(store.names())))
    console.print(table)
    failures = stats["failures"]
    if failures:
        bad = Table(title="failed clips (retried on the next run)", title_justify="left")
        bad.add_column("clip")
        bad.add_column("reason")
        for name, reason in sorted(failures.items())[:SHOWN_FAILURES]:
            bad.add_row(escape(name), escape(reason))
        console.print(bad)
        if len(failures) > SHOWN_FAILURES:
            console.print(f"… and {len(failures) - SHOWN_FAILURES} more in {store.root / FAILED}",
                          highlight=False)
