"""PNG plots for the reports.

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas directly, never through
``pyplot``, so evaluating inside a server or a notebook neither opens windows nor changes the
caller's global backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from emollama.evaluate.metrics import ClassificationScores


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def confusion_matrix_png(scores: ClassificationScores, path: str | Path, title: str) -> Path:
    """Row-normalised colours (recall per reference class) with raw counts written in each cell.

    Colour by row share so a rare class (surprise: 14 of 834 in MER2023) is as readable as a
    frequent one; the counts keep the absolute picture. The last column collects predictions that
    gave no label in the set.
    """
    counts = np.asarray(scores.confusion, dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    labels = list(scores.labels)
    columns = [*labels, "no label"]
    size = max(4.5, 0.75 * len(columns) + 2.0)
    fig = Figure(figsize=(size, size * 0.85))
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            value = int(counts[i, j])
            if value == 0:
                continue
            ax.text(
                j,
                i,
                str(value),
                ha="center",
                va="center",
                fontsize=9,
                color="white" if share[i, j] > 0.55 else "black",
            )
    ax.set_xticks(range(len(columns)), columns, rotation=40, ha="right")
    ax.set_yticks(range(len(labels)), [f"{lab} ({int(rows[i, 0])})" for i, lab in enumerate(labels)])
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference (support)")
    ax.set_title(title)
    ax.axvline(len(labels) - 0.5, color="grey", linewidth=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of reference row")
    return _save(fig, path)


def per_class_recall_png(
    strict: ClassificationScores, official: ClassificationScores, path: str | Path, title: str
) -> Path:
    """Grouped bars of recall per class in both parsing modes, with UAR as dashed lines."""
    labels = [c.label for c in strict.per_class]
    x = np.arange(len(labels))
    width = 0.38
    fig = Figure(figsize=(max(5.0, 0.9 * len(labels) + 2.0), 4.0))
    ax = fig.add_subplot()
    strict_r = [c.recall for c in strict.per_class]
    official_r = [c.recall for c in official.per_class]
    ax.bar(x - width / 2, strict_r, width, label=f"strict (UAR {strict.uar:.3f})", color="#2b6cb0")
    ax.bar(
        x + width / 2,
        official_r,
        width,
        label=f"official-compatible (UAR {official.uar:.3f})",
        color="#ed8936",
    )
    ax.axhline(strict.uar, color="#2b6cb0", linestyle="--", linewidth=1.0)
    ax.axhline(official.uar, color="#ed8936", linestyle=":", linewidth=1.0)
    supports = [c.support for c in strict.per_class]
    ax.set_xticks(x, [f"{lab}\nn={n}" for lab, n in zip(labels, supports, strict=True)])
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("recall")
    ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def score_histogram_png(
    series: dict[str, Sequence[float]], path: str | Path, title: str, xlabel: str, bins: Sequence[float]
) -> Path:
    """Overlaid histograms of per-sample scores (EMER proxies/judge, MER-OV) for a quick read of spread."""
    fig = Figure(figsize=(6.0, 3.6))
    ax = fig.add_subplot()
    for name, values in series.items():
        if len(values):
            ax.hist(list(values), bins=list(bins), alpha=0.55, label=f"{name} (mean {np.mean(values):.2f})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("samples")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def training_curves_png(records: list[dict], path: str | Path, title: str = "") -> Path:
    """Training loss, learning rate and validation weighted F1 over optimizer steps, one panel each.

    ``records`` are the lines of a run's ``metrics.jsonl``; stages are drawn one after the other
    (their steps offset) so a two-stage run reads left to right. Written atomically: the plot is
    redrawn after every validation while a run goes on.
    """
    from emollama.files import atomic_path

    fig = Figure(figsize=(11, 3.4))
    axes = fig.subplots(1, 3)
    records = [dict(r) for r in records]
    seen: dict[str, int] = {}
    last_step = 0
    for rec in records:
        if rec.get("kind") not in ("train", "val"):
            continue
        stage = rec.get("stage", "")
        if stage not in seen:
            seen[stage] = last_step
        x = seen[stage] + int(rec.get("step", 0))
        last_step = max(last_step, x)
        rec["_x"] = x
    for stage, start in seen.items():
        tr = [r for r in records if r.get("kind") == "train" and r.get("stage") == stage]
        va = [r for r in records if r.get("kind") == "val" and r.get("stage") == stage]
        if tr:
            axes[0].plot([r["_x"] for r in tr], [r["loss"] for r in tr], label=stage, lw=1)
            axes[1].plot([r["_x"] for r in tr], [r["lr"] for r in tr], label=stage, lw=1)
        if va:
            axes[2].plot([r["_x"] for r in va], [r["weighted_f1"] for r in va], marker="o", label=stage)
        if start:
            for ax in axes:
                ax.axvline(start, color="grey", lw=0.6, ls="--")
    for ax, name in zip(axes, ("train loss", "learning rate", "validation weighted F1"), strict=True):
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("optimizer step")
        if ax.lines:
            ax.legend(fontsize=7)
    axes[2].set_ylim(0, 1)
    if title:
        fig.suptitle(title, fontsize=11, y=1.03)
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    return Path(path)
