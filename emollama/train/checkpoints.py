"""Checkpoint and resume for long training runs: a crash or a kill costs at most one epoch.

Why a shared helper: every long recipe (the face CNN, the fine-tuned text members) saves the same
four things after each epoch and resumes from them when restarted with the same arguments. The
file is written through :func:`emollama.files.atomic_path`, so a kill during the save leaves the
previous epoch's checkpoint intact instead of a truncated file that cannot be resumed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from emollama.files import atomic_path


def save_checkpoint(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, sched: Any,
                    state: dict, **extra: Any) -> None:
    """Model, optimiser, schedule and the recipe's own ``state`` (epoch, history, best), atomically."""
    with atomic_path(path) as tmp:
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "state": state, **extra}, tmp)


def resume_checkpoint(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, sched: Any,
                      log: Callable[[str], None] | None = None) -> dict | None:
    """Load ``path`` into model/optimiser/schedule and return the whole checkpoint; None if there is none.

    ``log`` (e.g. ``print``) receives one "resumed after epoch N from PATH" line when it resumes.
    """
    if not path.is_file():
        return None
    ck = torch.load(path, weights_only=False)
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["opt"])
    sched.load_state_dict(ck["sched"])
    if log is not None:
        log(f"resumed after epoch {ck['state']['epoch']} from {path}")
    return ck
