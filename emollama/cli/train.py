"""``emollama train``: run an instruction-tuning recipe (coarse-to-fine by default) with progress."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from emollama.errors import InputError

console = Console()


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train(
        config: str = typer.Option(None, "--config", "-c",
                                   help="A packaged recipe name (coarse-to-fine) or a train-config YAML."),
        sets: list[str] = typer.Option([], "--set", help="Override one config value: KEY=VALUE, e.g. optim.lr=1e-5 "
                                       "or stages.fine.epochs=3 (repeatable)."),
        out: Path = typer.Option(None, "--out", "-o", help="Run folder to create (default: runs/NAME)."),
        resume: Path = typer.Option(None, "--resume", help="Continue the run in this folder where it stopped."),
    ) -> None:
        """Instruction-tune Emotion-LLaMA on extracted features (stage by stage, resumable).

        Launch on several processes or GPUs with `accelerate launch [--config_file F] -m emollama train …`.
        """
        from emollama.train.instruct.config import load_train_config
        from emollama.train.instruct.recipe import RUN_CONFIG, CoarseToFineRecipe

        if resume is not None:
            if not (resume / RUN_CONFIG).is_file():
                raise InputError(f"--resume {resume}: not a run folder (no {RUN_CONFIG} in it)")
            cfg = load_train_config(config if config is not None else resume / RUN_CONFIG, sets)
            if config is None:
                cfg.base_dir = None  # the saved config holds absolute paths
            run_dir = resume
        else:
            if config is None:
                raise InputError("give --config (a recipe name or YAML) or --resume RUN_DIR")
            cfg = load_train_config(config, sets)
            run_dir = out if out is not None else Path("runs") / cfg.name
        cfg = absolute(cfg)
        progress = _progress()
        with progress:
            state: dict[str, Any] = {}
            recipe = CoarseToFineRecipe(cfg, run_dir, resume=resume is not None,
                                        on_event=lambda e: _on_event(progress, state, e))
            if recipe.main:
                console.print(f"run folder: {run_dir}" + (" (resumed)" if resume is not None else ""))
            best = recipe.train()
        if recipe.main:
            console.print(f"done: best model -> {best}  (emollama analyze CLIP --tier emotion-llama --model {best})")
            console.print(f"[dim]metrics: {run_dir / 'metrics.jsonl'}, curves: {run_dir / 'curves.png'}[/]")


def absolute(cfg: Any) -> Any:
    """The config with every path absolute, so the copy saved in the run folder resumes from anywhere."""
    from emollama.train.instruct.config import TrainConfig

    data = cfg.to_dict()

    def fix(value: str | None) -> str | None:
        p = cfg.resolve(value)
        return str(p.resolve()) if p is not None else None

    model_path = cfg.resolve(cfg.model)
    if model_path is not None and model_path.exists():
        data["model"] = str(model_path.resolve())
    data["data"]["features"] = fix(cfg.data.features)
    data["data"]["subtitles"] = fix(cfg.data.subtitles)
    for key in ("names_file", "table"):
        data["validation"][key] = fix(data["validation"][key])
    for st in data["stages"]:
        st["annotations"] = fix(st["annotations"])
        if st["init"] not in ("previous_best", "previous_last", "none"):
            st["init"] = fix(st["init"])
    return TrainConfig.from_dict(data, base_dir=None)


def _progress() -> Progress:
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn())
    return Progress(*columns, console=console)


def _on_event(progress: Progress, state: dict[str, Any], e: dict[str, Any]) -> None:
    kind = e.get("kind")
    if kind == "stage":
        state["task"] = progress.add_task(f"stage {e['stage']}", total=e["steps"], completed=e["start_step"],
                                          info=f"{e['train']} train / {e['val']} val clips")
    elif kind == "train" and "task" in state:
        progress.update(state["task"], completed=e["step"],
                        info=f"loss {e['loss']:.4f}  lr {e['lr']:.2e}  {e['samples_per_s']:.1f} samples/s")
    elif kind == "val":
        progress.console.print(f"[bold]{e['stage']} epoch {e['epoch']}[/]: val loss {e['loss']:.4f}, "
                               f"accuracy {e['accuracy']:.3f}, weighted F1 {e['weighted_f1']:.3f}, UAR {e['uar']:.3f} "
                               f"({e['n']} clips, {e['unparsed']} unparsed)")
    elif kind in ("warning", "stopping"):
        progress.console.print(f"[yellow]{e['message']}[/]")
    elif kind == "skipped":
        n_feat, n_task = len(e["no_features"]), len(e["no_target"])
        progress.console.print(f"[yellow]stage {e['stage']}: skipped {n_feat} clip(s) without features and "
                               f"{n_task} without a target for its tasks[/] (listed in metrics.jsonl)")
