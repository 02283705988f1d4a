"""Checkpoint and resume for the training scripts: a crash or a kill costs at most one epoch.

Why a shared helper: every long training script (face CNN, mini-Xception, text members) saves the
same four things after each epoch and resumes from them when restarted with the same arguments.
The file is written next to its final name and then renamed, so a kill during the save leaves the
previous epoch's checkpoint intact instead of a truncated file that cannot be resumed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def save_checkpoint(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, sched: Any,
                    state: dict, **extra: Any) -> None:
    """Model, optimiser, schedule and the script's own ``state`` (epoch, history, best), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                "state": state, **extra}, tmp)
    os.replace(tmp, path)


def resume_checkpoint(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, sched: Any
                      ) -> dict | None:
    """Load ``path`` into model/optimiser/schedule and return the whole checkpoint; None if there is none."""
    if not path.is_file():
        return None
    ck = torch.load(path, weights_only=False)
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["opt"])
    sched.load_state_dict(ck["sched"])
    print(f"resumed after epoch {ck['state']['epoch']} from {path}", flush=True)
    return ck
