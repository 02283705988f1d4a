"""``emollama eval-model``: run one perception head (or the whole pipeline) over a labelled manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table


def register(app: typer.Typer) -> None:
    @app.command("eval-model")
    def eval_model_cmd(
        kind: Annotated[str, typer.Argument(help="face | voice | text | clip")],
        manifest: Annotated[Path, typer.Option("--manifest", help="CSV with path (or text) and label columns.")],
        out: Annotated[Path, typer.Option("--out", help="Folder for metrics.json and confusion.png.")],
        labels: Annotated[
            str | None, typer.Option("--labels", help="Score on this label set (default: the model's own classes).")
        ] = None,
        fusion: Annotated[
            str, typer.Option("--fusion", help="With clip: 'learned' (default) or 'handset', as in analyze.")
        ] = "learned",
        corrupt: Annotated[
            list[str] | None, typer.Option("--corrupt", help="With clip: damage the decoded media first, e.g. "
                                           "audio-noise:snr=5..10 (babble) or blur:levels=1,2,4 (repeatable).")
        ] = None,
        seed: Annotated[int, typer.Option("--seed", help="Seed of the --corrupt draws.")] = 0,
        tier: Annotated[str, typer.Option("--tier", help="clues (the heads / analyze's default) or emotion-llama "
                                          "(any kind: images, speech, clips, text).")] = "clues",
        model: Annotated[Path | None, typer.Option("--model", help="With --tier emotion-llama: the model folder "
                                                   "(default: the shipped emotion-llama-mini).")] = None,
    ) -> None:
        """Measure a head on labelled data: accuracy, macro/weighted F1, UAR, confusion; failures listed."""
        from emollama.evaluate.errors import EvaluationInputError
        from emollama.evaluate.eval_model import KINDS, evaluate_model, write_outputs

        if kind not in KINDS:
            raise EvaluationInputError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
        from emollama.recognize.clues import FUSION_METHODS
        from emollama.validate import check_output_dir

        if fusion not in FUSION_METHODS:
            raise EvaluationInputError(f"unknown --fusion {fusion!r}; choose one of: {', '.join(FUSION_METHODS)}")
        if kind != "clip" and fusion != "learned":
            raise EvaluationInputError("--fusion is for eval-model clip (the whole analyze pipeline)")
        if tier not in ("clues", "emotion-llama"):
            raise EvaluationInputError(f"unknown --tier {tier!r}; choose 'clues' or 'emotion-llama'")
        if tier != "emotion-llama" and model is not None:
            raise EvaluationInputError("--model is for --tier emotion-llama")
        if model is not None and not (model / "config.json").is_file():
            raise EvaluationInputError(f"--model {model}: no config.json there (a folder saved by emollama train, "
                                       "save_pretrained or convert-official)")
        check_output_dir(out, what="--out")
        outcome = evaluate_model(kind, manifest, labels, fusion=fusion, corrupt=corrupt, seed=seed, tier=tier,
                                 model_dir=model)
        paths = write_outputs(outcome, out)
        console = Console()
        data = outcome.to_json()
        table = Table(title=f"{kind}: {outcome.model}")
        for col in ("n", "failed", "accuracy", "macro-F1", "weighted-F1", "UAR"):
            table.add_column(col, justify="right")
        table.add_row(str(data["n"]), str(data["n_failed"]),
                      *(f"{data[k]:.3f}" if k in data else "—" for k in ("accuracy", "macro_f1", "weighted_f1", "uar")))
        console.print(table)
        if data.get("per_class_recall"):
            console.print("recall per class: " + ", ".join(f"{k} {v:.2f}" for k, v in data["per_class_recall"].items()),
                          highlight=False)
        if outcome.not_covered:
            console.print(f"[yellow]not covered by the model's classes[/] (scored as wrong): {outcome.not_covered}",
                          highlight=False)
        for f in outcome.failed[:20]:
            console.print(f"[red]failed[/] row {f['row']} {f['item']}: {f['reason']}", highlight=False)
        if len(outcome.failed) > 20:
            console.print(f"… and {len(outcome.failed) - 20} more failures in metrics.json", highlight=False)
        console.print(f"wrote {', '.join(str(p) for p in paths.values())}", highlight=False)
