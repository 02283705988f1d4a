"""Train the Conv-Attention fusion head: cross-validate on the dev clips, then fit on everything.

The recipe, top to bottom:

1. samples — the labelled dev clips through the ``analyze`` perception (cached per clip) and
   the cross-corpus pairs (:mod:`emollama.train.fusion.data`);
2. cross-validation — for every group of clips (RAVDESS: one sentence × repetition, so no
   scored take shares its sentence and repetition with a training take) a head is trained on the
   pairs plus the other groups' clips and scores the held-out group; the same is done with pairs
   only (no clip of the dev actor in training: the closest this data gets to a new person);
3. the shipped head — trained the same way on the pairs plus every clip, saved with its
   cross-validated numbers in the checkpoint's metadata and the model card.

Training: AdamW, class-balanced cross-entropy, the clips weighted so that together they count
as much as all pairs (:data:`CLIP_SHARE`), modality dropout :data:`MODALITY_DROPOUT` (each present
modality dropped independently, never all of them). CPU, about a minute per head.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from emollama.recognize.conv_attention import ConvAttentionConfig, ConvAttentionFusion, collate
from emollama.recognize.fusion_inputs import MODALITIES
from emollama.train.fusion.data import Log, Sample
from emollama.train.fusion.pseudo import threshold_tradeoff

MODALITY_DROPOUT = 0.3
CLIP_SHARE = 0.5


@dataclass
class TrainSettings:
    """Optimisation of one fusion head."""

    epochs: int = 40
    """Passes over the training samples."""
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-2
    modality_dropout: float = MODALITY_DROPOUT
    """Chance that each present modality of a training sample is hidden from the head."""
    clip_share: float = CLIP_SHARE
    """Share of the loss that the real clips carry, however few they are next to the pairs."""
    seed: int = 0


def _drop_modalities(present: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Hide each present modality with probability ``p``; a sample always keeps at least one."""
    keep = present & (torch.rand(present.shape, generator=gen) >= p)
    empty = ~keep.any(dim=1)
    if empty.any():  # give back one of the modalities that sample had
        scores = torch.rand(present.shape, generator=gen) * present.float()
        first = scores.argmax(dim=1)
        keep[empty, first[empty]] = True
    return keep


def train_head(samples: list[Sample], config: ConvAttentionConfig, settings: TrainSettings,
               log: Log | None = None) -> ConvAttentionFusion:
    """One fusion head trained on ``samples`` (clips, and pairs / pseudo-labelled clips by their ``group``)."""
    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    labels = list(config.labels)
    batch = collate([s.inputs for s in samples])
    y = torch.tensor([labels.index(s.label) for s in samples])
    # Real labelled clips carry CLIP_SHARE of the loss; pairs and pseudo-labelled clips the rest, 1 each.
    is_clip = torch.tensor([s.group not in ("pairs", "pseudo") for s in samples])
    n_clip, n_pair = int(is_clip.sum()), int((~is_clip).sum())
    weight = torch.ones(len(samples))
    if n_clip and n_pair:
        weight[is_clip] = settings.clip_share * n_pair / ((1 - settings.clip_share) * n_clip)
    counts = Counter(y.tolist())
    class_weight = torch.tensor([len(y) / (len(labels) * counts.get(i, 1)) for i in range(len(labels))])
    net = ConvAttentionFusion(config)
    net.fit_standardisation(batch)
    opt = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    steps = settings.epochs * int(np.ceil(len(samples) / settings.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings.lr, total_steps=steps)
    loss_fn = torch.nn.CrossEntropyLoss(weight=class_weight, reduction="none")
    net.train()
    for epoch in range(settings.epochs):
        order = torch.randperm(len(samples), generator=gen)
        total = 0.0
        for start in range(0, len(samples), settings.batch_size):
            idx = order[start:start + settings.batch_size]
            part = {k: v[idx] for k, v in batch.items()}
            part["present"] = _drop_modalities(part["present"], settings.modality_dropout, gen)
            loss = (loss_fn(net(part), y[idx]) * weight[idx]).sum() / weight[idx].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        if log and (epoch + 1) % 10 == 0:
            log(f"  epoch {epoch + 1}/{settings.epochs} loss {total / len(samples):.4f}")
    return net.eval()


@torch.inference_mode()
def predict_proba(net: ConvAttentionFusion, samples: list[Sample]) -> np.ndarray:
    """(N, labels) probabilities."""
    return torch.softmax(net(collate([s.inputs for s in samples])), dim=-1).numpy()


def predict(net: ConvAttentionFusion, samples: list[Sample]) -> list[str]:
    return [net.config.labels[i] for i in predict_proba(net, samples).argmax(-1).tolist()]


def summary(refs: list[str], preds: list[str], labels: tuple[str, ...]) -> dict:
    per_class = {y: round(float(np.mean([p == y for r, p in zip(refs, preds, strict=True) if r == y])), 3)
                 for y in labels if y in refs}
    return {"n": len(refs), "accuracy": round(float(np.mean([r == p for r, p in zip(refs, preds, strict=True)])), 4),
            "per_class_recall": per_class, "predicted": dict(Counter(preds))}


def as_analyze(probs: np.ndarray, clip: Sample, labels: tuple[str, ...]) -> np.ndarray:
    """A scored clip's head probabilities as ``analyze`` turns them: pooled with its words' evidence.

    The words term (:func:`~emollama.recognize.conv_attention.with_words`) uses the hand-set
    words evidence cached with the clip, so the cross-validated number is the number of what
    ``analyze`` does, not of the head alone.
    """
    from emollama.recognize.conv_attention import with_words

    words = next((e for e in clip.replay.evidence if e["modality"] == "words"), None) if clip.replay else None
    learned = dict(zip(labels, (float(v) for v in probs), strict=True))
    if words is None or not clip.inputs.present.get("words", False):
        return probs
    out = with_words(learned, words["probs"], words["reliability"])
    return np.array([out[y] for y in labels])


def cross_validate(clips: list[Sample], pairs: list[Sample], config: ConvAttentionConfig,
                   settings: TrainSettings, log: Log | None = None, extra: list[Sample] | None = None) -> dict:
    """Held-out-group accuracy on the clips, with and without the dev clips in training.

    ``extra`` (pseudo-labelled clips) joins the training set of every fold and is never scored.
    """
    say = log or (lambda _m: None)
    groups = sorted({s.group for s in clips})
    refs = [s.label for s in clips]
    probs = np.zeros((len(clips), len(config.labels)))
    for g in groups:
        say(f"cross-validation: holding out {g}")
        train = pairs + (extra or []) + [s for s in clips if s.group != g]
        net = train_head(train, config, settings, log)
        held = [i for i, s in enumerate(clips) if s.group == g]
        probs[held] = predict_proba(net, [clips[i] for i in held])
    head_only = [config.labels[i] for i in probs.argmax(1)]
    probs = np.stack([as_analyze(p, s, config.labels) for p, s in zip(probs, clips, strict=True)])
    preds = [config.labels[i] for i in probs.argmax(1)]
    confidence = probs.max(1)
    say("pairs only (no dev clip in training)")
    pairs_only = []
    if pairs:
        alone = predict_proba(train_head(pairs, config, settings, log), clips)
        pairs_only = [config.labels[int(np.argmax(as_analyze(p, s, config.labels)))]
                      for p, s in zip(alone, clips, strict=True)]
    out = {"protocol": f"leave one group out over {len(groups)} groups ({', '.join(groups)})",
           "pairs_and_other_groups": summary(refs, preds, config.labels),
           "pairs_and_other_groups_head_alone": summary(refs, head_only, config.labels),
           "pseudo_label_tradeoff": threshold_tradeoff(confidence.tolist(),
                                                       [r == p for r, p in zip(refs, preds, strict=True)]),
           "per_clip": [{"clip": s.source, "label": s.label, "predicted": p, "confidence": round(float(c), 4)}
                        for s, p, c in zip(clips, preds, confidence, strict=True)]}
    if pairs_only:
        out["pairs_only"] = summary(refs, pairs_only, config.labels)
    return out


def run(clips: list[Sample], pairs: list[Sample], out: Path | None, config: ConvAttentionConfig,
        settings: TrainSettings, *, cv: bool, data_note: dict, log: Log | None = None,
        extra: list[Sample] | None = None) -> dict:
    """Cross-validate (when asked), then train and save the shipped head with its numbers."""
    say = log or (lambda _m: None)
    t0 = time.perf_counter()
    report: dict = {"data": data_note, "settings": asdict(settings), "config": asdict(config),
                    "modalities": data_note.get("modalities", list(MODALITIES))}
    if cv:
        report["cross_validation"] = cross_validate(clips, pairs, config, settings, log, extra)
        say(json.dumps({k: v for k, v in report["cross_validation"].items() if k != "per_clip"}, indent=1))
    if out is not None:
        say("training the shipped head on the pairs and every clip")
        net = train_head(pairs + (extra or []) + clips, config, settings, log)
        out.mkdir(parents=True, exist_ok=True)
        meta = {k: v for k, v in report.items() if k != "cross_validation"}
        if cv:
            meta["cross_validation"] = {k: v for k, v in report["cross_validation"].items() if k != "per_clip"}
        net.save_pretrained(out / "conv_attention.pt", meta)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    return report
