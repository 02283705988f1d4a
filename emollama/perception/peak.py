"""Peak-frame selection (the MERR rule, made robust).

MERR picks the frame with the largest summed AU intensity. MER-Factory applies that to every
OpenFace row, including frames where tracking failed, so a garbage landmark fit can become the
"peak". Here only confident-face frames are candidates, the summed curve is lightly smoothed so a
single jittery frame cannot win, and blinks (AU45) are left out of the sum: a blink is not an
expression.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def smoothed_total(intensity: np.ndarray, confident: np.ndarray, au_names: Sequence[str],
                   exclude: Sequence[str] = ("AU45",), window: int = 3) -> np.ndarray:
    """Summed AU intensity per frame, moving-averaged over neighbouring *confident* frames.

    Non-confident frames get NaN and do not contribute to their neighbours' averages.
    """
    keep = [i for i, name in enumerate(au_names) if name not in set(exclude)]
    inten = np.asarray(intensity, dtype=np.float64)
    conf = np.asarray(confident, dtype=bool) & np.all(np.isfinite(inten), axis=1)
    total = np.where(conf, np.nansum(inten[:, keep], axis=1), np.nan)
    if window <= 1:
        return total
    half = window // 2
    out = np.full(total.shape, np.nan)
    for i in np.flatnonzero(conf):
        lo, hi = max(0, i - half), min(len(total), i + half + 1)
        out[i] = np.nanmean(total[lo:hi])
    return out


def select_peak(intensity: np.ndarray, confident: np.ndarray, au_names: Sequence[str],
                window: int = 3) -> int | None:
    """Index of the peak frame among confident frames, or None when there is none."""
    curve = smoothed_total(intensity, confident, au_names, window=window)
    if curve.size == 0 or not np.any(np.isfinite(curve)):
        return None
    # The smoothed curve says *where* the expression peaks; the peak frame itself is the
    # strongest confident frame inside that window (never a weak frame between two strong ones).
    centre = int(np.nanargmax(curve))
    raw = smoothed_total(intensity, confident, au_names, window=1)
    half = window // 2
    lo, hi = max(0, centre - half), min(len(raw), centre + half + 1)
    return lo + int(np.nanargmax(raw[lo:hi]))
