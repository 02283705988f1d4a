"""The ``--plot`` figure: AU intensities over time with the peak marked, and per-modality scores.

Drawn from the :class:`~emollama.schema.AnalysisResult` alone, so a saved ``--json`` can be
plotted again later without re-running the models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emollama.files import atomic_path
from emollama.schema import AnalysisResult


def plot_result(result: AnalysisResult, path: str | Path, top_aus: int = 6) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, (ax_au, ax_sc) = plt.subplots(1, 2, figsize=(13, 4.6), gridspec_kw={"width_ratios": [1.6, 1]})
    face = result.clues.face
    name = Path(result.media.path).name
    if face.au_intensity and face.au_names:
        t = np.array(face.times)
        data = np.array([[np.nan if v is None else v for v in row] for row in face.au_intensity], dtype=float)
        strength = np.nanmax(np.nan_to_num(data, nan=0.0), axis=0)
        order = [i for i in np.argsort(-strength)[:top_aus] if strength[i] > 0]
        for i in order:
            ax_au.plot(t, data[:, i], marker=".", ms=3, lw=1.4, label=face.au_names[i])
        if face.peak is not None:
            ax_au.axvline(face.peak.time_s, color="k", ls="--", lw=1)
            ax_au.annotate(f"peak {face.peak.time_s:.2f} s", (face.peak.time_s, 4.8), ha="left",
                           xytext=(4, 0), textcoords="offset points", fontsize=9)
        low = ~np.array(face.confident, dtype=bool)
        for ti in t[low]:
            ax_au.axvspan(ti - 0.05, ti + 0.05, color="0.85", lw=0)
        ax_au.set_ylim(0, 5.2)
        ax_au.set_xlabel("time (s)")
        ax_au.set_ylabel("AU intensity (0-5)")
        ax_au.set_title(f"Action units - {name} (grey: no confident face)", fontsize=10)
        if order:
            ax_au.legend(fontsize=8, ncol=2, loc="upper left")
    else:
        ax_au.text(0.5, 0.5, f"no face track ({face.status})", ha="center", va="center")
        ax_au.set_axis_off()

    labels = list(result.scores)
    rows = [("fused", result.scores)] + [(f"{m.modality} (w={m.weight:.2f})", m.scores)
                                         for m in result.modality_scores]
    width = 0.8 / max(1, len(rows))
    x = np.arange(len(labels))
    for k, (title, scores) in enumerate(rows):
        ax_sc.bar(x + (k - (len(rows) - 1) / 2) * width, [scores.get(y, 0.0) for y in labels], width,
                  label=title, color="k" if k == 0 else None, alpha=1.0 if k == 0 else 0.75)
    ax_sc.set_xticks(x, labels, rotation=45, ha="right", fontsize=9)
    ax_sc.set_ylim(0, 1)
    ax_sc.set_ylabel("score")
    ax_sc.set_title(f"Label scores - predicted: {result.label}", fontsize=10)
    ax_sc.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    from emollama import __version__

    with atomic_path(path) as tmp:  # a crash mid-write leaves the previous plot, never a torn PNG
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": f"emollama {__version__}"})
    plt.close(fig)
    return path


def is_emollama_plot(path: Path) -> bool:
    """Whether ``path`` is a PNG :func:`plot_result` wrote (its ``Software`` text chunk says emollama)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.format == "PNG" and str(im.info.get("Software", "")).startswith("emollama")
    except (OSError, ValueError):
        return False
