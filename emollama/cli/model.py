"""``emollama convert-official``: import the released Emotion-LLaMA weights."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console


def register(app: typer.Typer) -> None:
    @app.command("convert-official")
    def convert_official_cmd(
        checkpoint: Annotated[Path, typer.Argument(help="Official .pth (e.g. Emoation_LLaMA.pth).")],
        out: Annotated[Path, typer.Option("--out", help="Folder to write config.json + model.safetensors.")],
        config: Annotated[
            str | None,
            typer.Option("--config", help="Model YAML naming the backbone folders, or a packaged config name "
                         "(paths against the working directory); default: ./checkpoints/…"),
        ] = None,
        trust_pickle: Annotated[
            bool, typer.Option("--trust-pickle", help="Allow full unpickling (only for files you trust).")
        ] = False,
    ) -> None:
        """Map an official Emotion-LLaMA checkpoint onto emollama's strict safetensors format."""
        from emollama.model.checkpoint import convert_official
        from emollama.model.config import load_model_config, official_config

        cfg = load_model_config(config) if config is not None else official_config(Path.cwd())
        report = convert_official(checkpoint, out, cfg, trust_pickle=trust_pickle)
        console = Console()
        console.print(
            f"[green]wrote[/] {out}: {report.mapped} tensors, LoRA r={report.lora_r} on "
            f"{', '.join(report.lora_modules) or '—'} × {report.lora_layers} layers"
        )
        for note in report.notes:
            console.print(f"note: {note}", highlight=False)
