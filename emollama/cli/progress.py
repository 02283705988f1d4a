"""The progress bar of the batch commands (``annotate``, ``features``): one look, one place.

Why its own module: the batch commands show the same columns (done/total, items per second,
elapsed, ETA), and this module imports nothing but Rich, so a command that only fails on a bad
option still starts fast.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second (Rich's own speed column counts bytes)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        shown = f"{speed:.2f}" if speed else "–"
        return Text(f"{shown} {self.unit}/s", style="progress.data.speed")


def batch_progress(console: Console, unit: str = "clips") -> Progress:
    """Description, bar, done/total, ``unit``/s, elapsed time and ETA."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(unit),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console)
