"""The ``emollama`` command line: a thin Typer app.

Each sub-command lives in its own module exposing ``register(app)``; the modules parse options,
call the Python API and render with Rich. Errors of type :class:`~emollama.errors.EmollamaError`
become one red line and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

from emollama.errors import EmollamaError

app = typer.Typer(
    name="emollama",
    help="Multimodal emotion recognition and reasoning (Emotion-LLaMA / MERR), offline on CPU.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: Typer 0.29's Rich help printed "<bool>" after every flag, as if it took a value.
    rich_markup_mode=None,
)



def _show_version(value: bool) -> None:
    if value:
        from emollama import __version__

        typer.echo(f"emollama {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Multimodal emotion recognition and reasoning (Emotion-LLaMA / MERR), offline on CPU.

    A file name that starts with '-' is read as an option: put '--' before it (emollama analyze -- -clip.mp4).
    """


#: Sub-command modules under ``emollama.cli``; each defines ``register(app: typer.Typer)``.
_COMMAND_MODULES: tuple[str, ...] = ("analyze", "model", "evaluate", "annotate", "eval_model", "pseudo_label", "train",
                                     "features", "serve")

for _name in _COMMAND_MODULES:
    importlib.import_module(f"emollama.cli.{_name}").register(app)

err_console = Console(stderr=True)


def main() -> None:
    """Console-script entry point: run the app, turning user errors into one line."""
    try:
        app()
    except EmollamaError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:  # outside a command's own Ctrl-C handling (e.g. while models load)
        err_console.print("[bold red]interrupted[/]", highlight=False)
        sys.exit(130)
