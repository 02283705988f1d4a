"""How many truly labelled clips does the MERR filter keep, and how many wrong labels does it drop?

Each labelled item is checked twice over: with its own label (it should be kept) and with every
other label of the set (each should be dropped), for ``--face-rank`` 0 (the AU rule alone, as in
MERR) and 1-3 (the AU rule, else the facial-expression model's top N). Two dev sets:

* ``--ravdess labels.csv``: the RAVDESS dev takes through the ``analyze`` perception (peak-frame
  AUs against the take's own resting frames; the face model pooled over the take);
* ``--ckplus DIR``: CK+ dev peak frames, upscaled and meshed as in ``au_rules_ckplus.py`` (AUs
  against the population prior: one image has no resting frame). The face head was fine-tuned on
  these very images (stage 2), so its half of the rule is optimistic here.

    python benchmarks/merr_filter_keep_rate.py --ravdess ../shared/data/clips_ravdess/labels.csv \\
        --ckplus ../shared/data/ckplus48
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from emollama.labels import normalize_label
from emollama.merr.consistency import check_consistency

RAVDESS_LABELS = ("neutral", "happy", "sad", "angry", "fear", "disgust", "surprise")
CKPLUS_LABELS = ("angry", "contempt", "disgust", "fear", "happy", "sad", "surprise")
RANKS = (0, 1, 2, 3)

#: label, peak AUs, lip-corner asymmetry, the face model's scores for judging each label, face status
Item = tuple[str, Mapping[str, float] | None, float, dict[str, Mapping[str, float] | None], str]


def ravdess_items(manifest: Path) -> Iterator[Item]:
    from emollama.merr.annotate import face_scores_for
    from emollama.perception.pipeline import Perceiver

    perceiver = Perceiver()
    with open(manifest, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if normalize_label(r["label"]) in RAVDESS_LABELS]
    for row in rows:
        p = perceiver.perceive(manifest.parent / row["path"])
        peak = p.face.clues.peak
        # The face model's reading for every label (face_scores_for picks the label set per label).
        scores = {y: face_scores_for(p, y) for y in RAVDESS_LABELS}
        yield normalize_label(row["label"]), peak.au if peak else None, p.face.corner_asymmetry, scores, \
            p.face.clues.status


def ckplus_items(root: Path) -> Iterator[Item]:
    from mediapipe.python.solutions import face_mesh

    from emollama.heads.face import load_expression_model
    from emollama.perception.action_units import still_image_aus

    model = load_expression_model()
    names = [normalize_label(k) for k in model.labels]
    with open(root / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True) as mesh:
        for row in rows:
            grey = Image.open(root / row["path"]).convert("RGB")
            big = np.asarray(grey.resize((192, 192), Image.BICUBIC))
            res = mesh.process(big)
            label = normalize_label(row["label"])
            if not res.multi_face_landmarks:
                yield label, None, 0.0, {}, "no_face"
                continue
            lm = np.array([(q.x * 192, q.y * 192, q.z * 192) for q in res.multi_face_landmarks[0].landmark])
            au, asymmetry = still_image_aus(lm)
            face = dict(zip(names, (float(v) for v in model.predict([np.asarray(grey)])[0]), strict=True))
            yield label, au, asymmetry, dict.fromkeys(CKPLUS_LABELS, face), "ok"


def _kept(item: Item, label: str, rank: int) -> bool:
    _truth, au, asym, face, status = item
    return check_consistency(label, au, face_status=status, corner_asymmetry=asym, face_scores=face.get(label),
                             face_rank=rank).kept


def measure(items: list[Item], labels: tuple[str, ...]) -> dict[int, dict]:
    out = {}
    for rank in RANKS:
        kept_true: dict[str, list[bool]] = defaultdict(list)
        kept_wrong: list[bool] = []
        for item in items:
            kept_true[item[0]].append(_kept(item, item[0], rank))
            kept_wrong += [_kept(item, y, rank) for y in labels if y != item[0]]
        every = [k for v in kept_true.values() for k in v]
        out[rank] = {"kept_true": round(float(np.mean(every)), 3),
                     "dropped_wrong": round(1 - float(np.mean(kept_wrong)), 3),
                     "per_label": {y: f"{sum(v)}/{len(v)}" for y, v in kept_true.items()}}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ravdess", type=Path, default=None)
    ap.add_argument("--ckplus", type=Path, default=None)
    args = ap.parse_args()
    for name, items, labels in (("RAVDESS dev takes", args.ravdess and ravdess_items(args.ravdess), RAVDESS_LABELS),
                                ("CK+ dev", args.ckplus and ckplus_items(args.ckplus), CKPLUS_LABELS)):
        if not items:
            continue
        result = measure(list(items), labels)
        print(f"{name}:")
        for rank, r in result.items():
            rule = "AU rule alone" if rank == 0 else f"AU rule, else face model top {rank}"
            print(f"  {rule:34s} kept (true label) {r['kept_true']:.2f}   dropped (wrong labels) "
                  f"{r['dropped_wrong']:.2f}   {r['per_label']}")


if __name__ == "__main__":
    main()
