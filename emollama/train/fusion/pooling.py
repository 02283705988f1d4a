"""Replays on the dev clips: each face pooling method, alone and inside the hand-set fusion.

Issue 20 asks which clip-level aggregation of the face wins on real talking-face video. Every
method of :func:`~emollama.perception.face_clues.pool_expression` is applied to the cached
per-frame face-head probabilities of each clip (:class:`~emollama.train.fusion.data.ClipReplay`),
then scored two ways: the face alone (its pooled probabilities on the label set), and the whole
hand-set fusion with that face evidence in place of the shipped one (the other modalities exactly
as ``analyze`` measured them). No training is involved, so every clip is scored honestly; the
learned temporal pooling (the Conv-Attention head's attention over frames, trained with the face
alone) is cross-validated by the recipe itself (``--modalities face``).
"""

from __future__ import annotations

from emollama.labels import get_label_set
from emollama.perception.face_clues import POOLING_METHODS, pool_expression
from emollama.recognize.fusion import ModalityEvidence, fuse
from emollama.train.fusion.data import ClipReplay, Sample


def _face_probs(r: ClipReplay, method: str) -> dict[str, float] | None:
    if len(r.frame_probs) == 0:
        return None
    pooled = pool_expression(r.frame_probs, r.confident, r.times, r.peak if r.peak >= 0 else None, method,
                             r.frame_labels)
    return dict(zip(r.frame_labels, (float(v) for v in pooled), strict=True))


def _label(evidence: list[ModalityEvidence], label_set: str) -> str:
    if not evidence:
        return "none"
    scores, per_modality = fuse(evidence, label_set)
    if sum(m.weight for m in per_modality) <= 0:
        return "none"
    return max(scores, key=scores.__getitem__)


def replay(r: ClipReplay, method: str, label_set: str, *, face_only: bool) -> str:
    """The label the hand-set fusion gives this clip with the face pooled by ``method``."""
    face = _face_probs(r, method)
    evidence = []
    for e in r.evidence:
        if e["modality"] == "face":
            if face is None:
                continue
            evidence.append(ModalityEvidence("face", face, 1.0 if face_only else e["reliability"], e["source"]))
        elif not face_only:
            evidence.append(ModalityEvidence(e["modality"], e["probs"], e["reliability"], e["source"]))
    return _label(evidence, label_set)


def compare_pooling(clips: list[Sample], label_set: str = "dfew7") -> dict:
    """Accuracy per pooling method, face alone and in the hand-set fusion, on ``label_set``."""
    from emollama.train.fusion.recipe import summary

    labels = get_label_set(label_set).labels
    scored = [s for s in clips if s.replay is not None]
    refs = [s.label for s in scored]
    out: dict = {"n": len(scored), "label_set": label_set}
    for method in POOLING_METHODS:
        out[method] = {kind: summary(refs, [replay(s.replay, method, label_set, face_only=kind == "face_only")
                                            for s in scored], labels)
                       for kind in ("face_only", "handset_fusion")}
    return out
