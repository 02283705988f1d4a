"""Run folders: atomic checkpoint directories, the pointer to the latest one, best-model folders.

Why not :mod:`emollama.train.checkpoints` (the heads' helper): that writes the whole model's
state dict into one file; here the frozen backbone can be 7B parameters, so a checkpoint holds only
the trainable tensors — as a model folder (``config.json`` + ``model.safetensors``) that
``EmotionLlama.from_pretrained`` loads directly — plus the optimizer, the RNG states of every
process and the data position (``state.json``).

Atomicity: a checkpoint is written into a hidden temporary folder and renamed into place; then
``state.json`` at the run root, which names the latest complete checkpoint, is replaced
atomically. A kill or a full disk at any moment leaves the previous checkpoint and pointer intact.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emollama.errors import EmollamaError
from emollama.files import atomic_path, atomic_write_text

STATE = "state.json"
OPTIMIZER = "optimizer.pt"


class RunStateError(EmollamaError):
    """A run folder cannot be resumed or a checkpoint cannot be written."""


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def temp_dir(final: Path) -> Path:
    """The hidden folder a checkpoint is written into before it is renamed to ``final``."""
    return final.with_name(f".{final.name}.tmp")


def begin(final: Path) -> Path:
    tmp = temp_dir(final)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def commit(tmp: Path, final: Path) -> None:
    """Move a finished temporary folder into place, replacing an older folder of the same name."""
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def copy_folder(src: Path, final: Path, names: tuple[str, ...] | None = None) -> None:
    """Copy ``src``'s files (only ``names``, when given) into ``final`` with the same atomic replace."""
    tmp = begin(final)
    for f in src.iterdir():
        if f.is_file() and (names is None or f.name in names):
            shutil.copyfile(f, tmp / f.name)
    commit(tmp, final)


def recover(final: Path) -> None:
    """After a kill between the two renames of :func:`commit`, put the older folder back."""
    old = final.with_name(f".{final.name}.old")
    if not final.exists() and old.exists():
        os.replace(old, final)


def save_optimizer(tmp: Path, optimizer: torch.optim.Optimizer) -> None:
    with atomic_path(tmp / OPTIMIZER) as path:
        torch.save(optimizer.state_dict(), path)


def save_rng(tmp: Path, rank: int) -> None:
    with atomic_path(tmp / f"rng-rank{rank}.pt") as path:
        torch.save(rng_state(), path)


def write_state(folder: Path, state: dict[str, Any]) -> None:
    atomic_write_text(folder / STATE, json.dumps(state, indent=1) + "\n")


def read_state(folder: Path) -> dict[str, Any] | None:
    path = folder / STATE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunStateError(f"{path} is corrupt ({exc}); the run cannot be resumed from it.") from None


def load_optimizer(folder: Path, optimizer: torch.optim.Optimizer) -> None:
    optimizer.load_state_dict(torch.load(folder / OPTIMIZER, weights_only=False))


def load_rng(folder: Path, rank: int) -> None:
    path = folder / f"rng-rank{rank}.pt"
    if not path.is_file():
        raise RunStateError(f"{folder} has no RNG state for process {rank}: resume with the same number of processes.")
    set_rng_state(torch.load(path, weights_only=False))


def prune(folder: Path, keep: int) -> None:
    """Keep the ``keep`` newest ``step-*`` checkpoints (by step number) in ``folder``."""
    steps = sorted((p for p in folder.glob("step-*") if p.is_dir()), key=lambda p: int(p.name.split("-")[1]))
    for old in steps[: max(0, len(steps) - max(1, keep))]:
        shutil.rmtree(old, ignore_errors=True)
