"""Learned Conv-Attention fusion (after the SZTU-CMU MER2024 recipe), readable top to bottom.

Each modality's feature vector (:mod:`emollama.recognize.fusion_inputs`) is standardised with
statistics stored in the checkpoint and encoded by a small MLP to ``width`` numbers; the face,
which has a time axis, is first encoded per frame, passed through residual 1-D convolutions over
time and pooled by learned attention over its frames (so an expressive stretch can outweigh the
neutral and talking frames around it). The modality vectors then go two ways whose results are
added: an **attention branch** (modality weights from the concatenated vectors, softmax over the
modalities present) and a **convolutional branch** (residual 1-D conv blocks with Swish over the
modality axis, masked mean). A linear classifier reads the sum.

A missing modality is masked out everywhere (attention, convolution, mean): the head is trained
with modality dropout, so "no voice" or "no face" is a case it has seen, not a zero vector it
misreads. Small on purpose (73 k parameters at width 64): the multimodal training data are the
52 non-calm dev takes of one actor plus cross-corpus pairs, see :mod:`emollama.train.fusion`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emollama.errors import ModelUnavailableError
from emollama.heads import HEADS_DIR
from emollama.labels import LabelSet, get_label_set, project_scores
from emollama.recognize.fusion_inputs import DIMS, FACE_FRAMES, MODALITIES, FusionInputs

FUSION_DIR = HEADS_DIR / "fusion"
FUSION_WEIGHTS = FUSION_DIR / "conv_attention.pt"


@dataclass
class ConvAttentionConfig:
    """Shape of the fusion head; stored in its checkpoint, so loading needs nothing else."""

    labels: tuple[str, ...] = ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear")
    """Output classes (canonical words), the dfew7 set: what every training corpus can label."""
    width: int = 64
    """Size of each modality's encoded vector."""
    conv_blocks: int = 2
    """Residual conv blocks in the modality branch and in the face's time encoder."""
    kernel: int = 3
    """Kernel size of every 1-D convolution (over frames, and over the modality axis)."""
    dropout: float = 0.2
    """Dropout on the encoded vectors during training."""
    dims: dict[str, int] = field(default_factory=lambda: dict(DIMS))
    """Input size per modality (checked against :data:`emollama.recognize.fusion_inputs.DIMS` on load)."""


class ResidualConv(nn.Module):
    """x + Swish(BN-free conv(x)): a 1-D conv block that keeps the length (masked positions re-zeroed)."""

    def __init__(self, width: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(width, width, kernel, padding=kernel // 2)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # x (B, C, L), mask (B, L)
        return (x + self.act(self.conv(x))) * mask[:, None, :]


def _mlp(d_in: int, width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU())


def _masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return torch.nan_to_num(weights, nan=0.0)  # a row with nothing present gets all-zero weights


class ConvAttentionFusion(nn.Module):
    def __init__(self, config: ConvAttentionConfig = ConvAttentionConfig()) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.modalities = MODALITIES
        for m in self.modalities:  # standardisation, fitted on the training data (see fit_standardisation)
            self.register_buffer(f"mean_{m}", torch.zeros(config.dims[m]))
            self.register_buffer(f"std_{m}", torch.ones(config.dims[m]))
        self.encoders = nn.ModuleDict({m: _mlp(config.dims[m], w) for m in self.modalities})
        self.face_time = nn.ModuleList([ResidualConv(w, config.kernel) for _ in range(config.conv_blocks)])
        self.face_pool = nn.Linear(w, 1)
        self.attention = nn.Linear(len(self.modalities) * w, len(self.modalities))
        self.modality_conv = nn.ModuleList([ResidualConv(w, config.kernel) for _ in range(config.conv_blocks)])
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(w, len(config.labels))

    def _standardise(self, m: str, x: torch.Tensor) -> torch.Tensor:
        return (x - getattr(self, f"mean_{m}")) / getattr(self, f"std_{m}")

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits (B, labels). ``batch``: one tensor per modality, ``face_frames`` (B,), ``present`` (B, M) bool."""
        return self.logits_and_weights(batch)[0]

    def logits_and_weights(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, labels) and the attention branch's weight per modality (B, M), which the result reports."""
        present = batch["present"]
        # Face: per-frame encoding, convolutions over time, attention pooling over the valid frames.
        frames = torch.arange(FACE_FRAMES, device=present.device)[None, :] < batch["face_frames"][:, None]
        h = self.encoders["face"](self._standardise("face", batch["face"]))  # (B, T, w)
        h = h.transpose(1, 2) * frames[:, None, :].float()
        for block in self.face_time:
            h = block(h, frames.float())
        h = h.transpose(1, 2)  # (B, T, w)
        pool = _masked_softmax(self.face_pool(h).squeeze(-1), frames)
        encoded = [torch.einsum("bt,btw->bw", pool, h)]
        encoded += [self.encoders[m](self._standardise(m, batch[m])) for m in self.modalities[1:]]
        stack = torch.stack(encoded, dim=1) * present[..., None].float()  # (B, M, w)
        stack = self.dropout(stack)
        # Attention branch: modality weights from everything present.
        weights = _masked_softmax(self.attention(stack.flatten(1)), present)
        z_attention = torch.einsum("bm,bmw->bw", weights, stack)
        # Convolutional branch over the modality axis.
        c = stack.transpose(1, 2)
        for block in self.modality_conv:
            c = block(c, present.float())
        z_conv = c.sum(-1) / present.float().sum(-1, keepdim=True).clamp(min=1.0)
        return self.classifier(z_attention + z_conv), weights

    @torch.no_grad()
    def fit_standardisation(self, batch: dict[str, torch.Tensor]) -> None:
        """Per-modality mean and spread over the samples (and valid frames) where the modality is present."""
        for i, m in enumerate(self.modalities):
            x = batch[m]
            if m == "face":
                valid = torch.arange(FACE_FRAMES)[None, :] < batch["face_frames"][:, None]
                rows = x[valid & batch["present"][:, i:i + 1]]
            else:
                rows = x[batch["present"][:, i]]
            if len(rows) > 1:
                getattr(self, f"mean_{m}").copy_(rows.mean(0))
                getattr(self, f"std_{m}").copy_(rows.std(0).clamp(min=1e-3))

    def save_pretrained(self, path: Path, meta: dict | None = None) -> None:
        import io

        from emollama.files import atomic_write_bytes

        buf = io.BytesIO()
        torch.save({"config": asdict(self.config), "model": self.state_dict(), "meta": meta or {}}, buf)
        atomic_write_bytes(Path(path), buf.getvalue())

    @classmethod
    def from_pretrained(cls, path: Path = FUSION_WEIGHTS) -> ConvAttentionFusion:
        """Strict load: a checkpoint whose inputs differ from this version's feature layout is refused."""
        path = Path(path)
        if not path.is_file():
            raise ModelUnavailableError(f"fusion head weights missing at {path}; rebuild them with the command in "
                                        f"{FUSION_DIR / 'MODEL_CARD.md'}, or choose the hand-set fusion "
                                        "(--fusion handset; CluesRecognizer('handset') in Python)")
        try:
            ck = torch.load(path, map_location="cpu", weights_only=True)
            raw = dict(ck["config"])
            raw["labels"] = tuple(raw["labels"])
            config = ConvAttentionConfig(**raw)
        except Exception as exc:  # noqa: BLE001 - any unreadable file or config gets the same one-line answer
            raise ModelUnavailableError(f"{path}: not a readable fusion head checkpoint ({type(exc).__name__}: "
                                        f"{exc}); retrain it with python -m emollama.train.fusion") from None
        if config.dims != DIMS:
            raise ModelUnavailableError(f"{path}: fusion head built for inputs {config.dims}, this version makes "
                                        f"{DIMS}; retrain it with python -m emollama.train.fusion")
        net = cls(config)
        try:
            net.load_state_dict(ck["model"], strict=True)
        except RuntimeError as exc:  # missing / unexpected / misshapen tensors: name them, no traceback
            raise ModelUnavailableError(f"{path}: not a fusion head of this version ({exc}); retrain it with "
                                        "python -m emollama.train.fusion") from None
        net.meta = ck.get("meta", {})
        return net.eval()


def collate(items: list[FusionInputs]) -> dict[str, torch.Tensor]:
    """Stack clips' inputs into the batch :meth:`ConvAttentionFusion.forward` reads."""
    batch = {m: torch.from_numpy(np.stack([getattr(x, m) for x in items])).float() for m in MODALITIES}
    batch["face_frames"] = torch.tensor([x.face_frames for x in items], dtype=torch.long)
    batch["present"] = torch.tensor([[x.present[m] for m in MODALITIES] for x in items], dtype=torch.bool)
    return batch


class LearnedFusion:
    """The shipped fusion head, ready for one clip: probabilities over its labels and modality weights."""

    def __init__(self, path: Path = FUSION_WEIGHTS) -> None:
        self.net = ConvAttentionFusion.from_pretrained(path)
        self.labels = self.net.config.labels
        self.name = "Conv-Attention fusion head (emollama, RAVDESS dev + cross-corpus pairs)"

    @classmethod
    @functools.cache
    def shipped(cls) -> LearnedFusion:
        """The packaged head, loaded once per process (it is read-only: every recogniser may share it)."""
        return cls()

    @torch.inference_mode()
    def predict(self, x: FusionInputs) -> tuple[dict[str, float], dict[str, float]]:
        logits, weights = self.net.logits_and_weights(collate([x]))
        probs = torch.softmax(logits, dim=-1)[0].numpy()
        weights = weights[0].numpy()
        return ({y: float(v) for y, v in zip(self.labels, probs, strict=True)},
                {m: float(w) for m, w in zip(MODALITIES, weights, strict=True)})


def with_words(learned: Mapping[str, float], words_probs: Mapping[str, float] | None,
               words_reliability: float) -> dict[str, float]:
    """The head's probabilities pooled log-linearly with what the words say, as the hand-set fusion weighs them.

    Why: the head learned from takes whose words carry no emotion (one actor, two sentences for
    every feeling) and from sitcom lines the text head reads weakly, so it gives words almost no
    attention: a subtitle "I am terrified" on a calm face moved its fear score by nothing. Here
    the words come back in as one more log-linear term, with the hand-set words weight (prior ×
    reliability, the reliability already scaled by the words' emotional content, so lexically
    neutral words add next to nothing). Both sides are ε-smoothed as in
    :func:`~emollama.recognize.fusion.fuse`, so words can raise a label the head put at zero but do
    not overturn a confident face without strong, explicit wording.
    """
    from emollama.recognize.fusion import BASE_WEIGHTS, EPSILON

    labels = list(learned)
    p = np.array([max(float(learned[y]), 0.0) for y in labels])
    log_s = np.log((1 - EPSILON) * p / max(p.sum(), 1e-12) + EPSILON / len(labels))
    weight = BASE_WEIGHTS["words"] * float(np.clip(words_reliability, 0.0, 1.0))
    if words_probs and weight > 0:
        w = project_scores(words_probs, get_label_set("dfew7"))
        q = np.array([w.get(y, 0.0) for y in labels])
        log_s += weight * np.log((1 - EPSILON) * q / max(q.sum(), 1e-12) + EPSILON / len(labels))
    s = np.exp(log_s - log_s.max())
    return {y: float(v) for y, v in zip(labels, s / s.sum(), strict=True)}


def onto_label_set(learned: Mapping[str, float], handset: Mapping[str, float], labels: LabelSet) -> dict[str, float]:
    """The learned head's scores on ``labels``, with the hand-set fusion's say on labels the head lacks.

    The head decides among its basic labels (dfew7). A result label set may hold labels it has no
    class for (merr9's worried, doubt and contempt, which only the emotion words, the AU rules or
    the face head's contempt class can speak to). Those labels get the mass the hand-set fusion
    gave them, m; the head's scores, projected onto the set by the cross-set table, share the
    rest, 1 - m. The projection may itself route some of the head's mass onto such a label (its
    fear reaches mer6's worried, its disgust merr9's contempt): then that label holds both, which
    is where the two fusions agree. On dfew7 and ekman7 this is the head's answer unchanged.
    """
    extra = [y for y in labels.labels if y not in set(learned)]
    projected = project_scores(learned, labels)
    m = float(sum(handset.get(y, 0.0) for y in extra))
    out = {y: (1.0 - m) * projected[y] + (handset.get(y, 0.0) if y in extra else 0.0) for y in labels.labels}
    total = sum(out.values())
    return {y: v / total for y, v in out.items()}
