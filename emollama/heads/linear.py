"""Softmax regression over frozen features, stored as ``.npz`` weights + ``.json`` metadata.

Why its own module: the voice head (Whisper layers) and the multilingual text head (e5) are both
this read-out, with the standardisation folded into the weights and the dev-fitted temperature
kept beside them, so their probabilities can be fused as log-probabilities.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emollama.errors import ModelUnavailableError
from emollama.files import atomic_write_bytes, atomic_write_text
from emollama.heads.calibration import softmax
from emollama.labels import normalize_label


@dataclass
class LinearHead:
    """``softmax((x·W + b) / T)`` over canonical labels."""

    weight: np.ndarray  # (d, k)
    bias: np.ndarray  # (k,)
    labels: tuple[str, ...]  # canonical label words
    temperature: float
    meta: dict

    def logits(self, x: np.ndarray) -> np.ndarray:
        return np.atleast_2d(x) @ self.weight + self.bias

    def predict_proba(self, x: np.ndarray, calibrated: bool = True) -> np.ndarray:
        return softmax(self.logits(x) / (self.temperature if calibrated else 1.0))

    def save(self, stem: Path) -> None:
        import io

        buf = io.BytesIO()
        np.savez_compressed(buf, weight=self.weight.astype(np.float32), bias=self.bias.astype(np.float32))
        atomic_write_bytes(stem.with_suffix(".npz"), buf.getvalue())
        atomic_write_text(stem.with_suffix(".json"), json.dumps(
            {"labels": list(self.labels), "temperature": self.temperature, **self.meta}, indent=2) + "\n")

    @classmethod
    def load(cls, stem: Path) -> LinearHead:
        """Load strictly: exactly ``weight`` (d, k) and ``bias`` (k,), finite, k labels, a positive temperature.

        Why strict: a head rebuilt with another label set, encoder width or a stray array would
        otherwise load and give wrong probabilities without a word.
        """
        npz, meta_path = stem.with_suffix(".npz"), stem.with_suffix(".json")
        if not npz.is_file() or not meta_path.is_file():
            raise ModelUnavailableError(f"head weights missing at {npz}; rebuild with the command in its MODEL_CARD")
        meta = json.loads(meta_path.read_text())
        labels = tuple(normalize_label(y) for y in meta.pop("labels"))
        temperature = float(meta.pop("temperature"))
        with np.load(npz) as z:
            arrays = {k: z[k] for k in z.files}
        problem = None
        if set(arrays) != {"weight", "bias"}:
            problem = f"arrays {sorted(arrays)}, expected ['bias', 'weight']"
        elif arrays["weight"].ndim != 2 or arrays["bias"].shape != (arrays["weight"].shape[1],):
            problem = f"weight {arrays['weight'].shape} and bias {arrays['bias'].shape} do not fit"
        elif arrays["weight"].shape[1] != len(labels):
            problem = f"{arrays['weight'].shape[1]} outputs but {len(labels)} labels"
        elif not all(np.isfinite(a).all() for a in arrays.values()) or not temperature > 0:
            problem = "non-finite weights or a non-positive temperature"
        if problem is not None:
            raise ModelUnavailableError(f"head weights at {npz} are inconsistent ({problem}); rebuild with the "
                                        "command in its MODEL_CARD")
        return cls(arrays["weight"], arrays["bias"], labels, temperature, meta)
