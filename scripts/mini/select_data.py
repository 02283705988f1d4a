"""Pick the clips emotion-llama-mini is trained and validated on, from ``../shared/data`` (dev parts only).

Writes, under ``--out``:

* ``media.csv`` — ``path,label`` of every chosen clip (train and validation), the input of
  ``emollama annotate`` (labels are the ground truth it annotates with);
* ``subtitles.csv`` — ``name,sentence``: the RAVDESS transcripts (the only English speech here);
* ``validation.txt`` — the held-out clip names (``validation.by: names`` of the train config);
* ``selection.json`` — counts per corpus, split and label, for the model card.

Splits (never train on a validation item):

* FER2013: ``--fer-per-class`` train images per class from ``train``; ``--fer-val-per-class`` per
  class from ``val`` (PublicTest) for validation;
* CK+: every 5th subject (sorted ids) is the validation fold, the rest train;
* EmoDB: speaker ``--emodb-val-speaker`` held out, the other dev speakers train;
* RAVDESS (one actor): in each label, every 4th take (sorted by name, starting at the second) held out.

Labels are mapped onto ``dfew7`` (angry, disgust, fear, happy, neutral, sad, surprise); items whose
label has no place there (CK+ contempt, EmoDB bored, RAVDESS calm) are left out. The choice is a
pure function of the arguments (seeded), so the data can be rebuilt exactly.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from collections import Counter, defaultdict
from pathlib import Path

from emollama.errors import UnknownLabelError
from emollama.labels import get_label_set, normalize_label

LABELS = get_label_set("dfew7").labels


def _dfew7(raw: str) -> str | None:
    try:
        label = normalize_label(raw)
    except UnknownLabelError:
        return None
    return label if label in LABELS else None


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def select(data: Path, fer_per_class: int, fer_val_per_class: int, emodb_val_speaker: str, seed: int
           ) -> tuple[list[tuple[str, str, str, str]], dict[str, str]]:
    """→ ([(corpus, split, path, label)], {name: subtitle})."""
    rng = random.Random(seed)
    chosen: list[tuple[str, str, str, str]] = []
    fer = defaultdict(list)
    for r in _rows(data / "fer2013" / "labels.csv"):
        label = _dfew7(r["label"])
        if label:
            fer[(r["split"], label)].append(str(data / "fer2013" / r["path"]))
    for (split, label), paths in sorted(fer.items()):
        k = fer_per_class if split == "train" else fer_val_per_class
        for p in rng.sample(sorted(paths), min(k, len(paths))):
            chosen.append(("fer2013", "train" if split == "train" else "val", p, label))
    ck = _rows(data / "ckplus48" / "labels.csv")
    subjects = sorted({r["speaker_id"] for r in ck})
    val_subjects = set(subjects[::5])
    for r in ck:
        label = _dfew7(r["label"])
        if label:
            chosen.append(("ckplus", "val" if r["speaker_id"] in val_subjects else "train",
                           str(data / "ckplus48" / r["path"]), label))
    for r in _rows(data / "emodb" / "labels.csv"):
        label = _dfew7(r["label"])
        if label:
            chosen.append(("emodb", "val" if r["speaker_id"] == emodb_val_speaker else "train",
                           str(data / "emodb" / r["path"]), label))
    subtitles: dict[str, str] = {}
    by_label = defaultdict(list)
    for r in _rows(data / "clips_ravdess" / "labels.csv"):
        label = _dfew7(r["label"])
        if label:
            by_label[label].append(r)
    for label, rows in sorted(by_label.items()):
        for i, r in enumerate(sorted(rows, key=lambda r: r["path"])):
            chosen.append(("ravdess", "val" if i % 4 == 1 else "train", str(data / "clips_ravdess" / r["path"]), label))
            subtitles[Path(r["path"]).stem] = r["transcript"]
    return chosen, subtitles


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--fer-per-class", type=int, default=120)
    ap.add_argument("--fer-val-per-class", type=int, default=20)
    ap.add_argument("--emodb-val-speaker", default="16")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    chosen, subtitles = select(args.data.resolve(), args.fer_per_class, args.fer_val_per_class,
                               args.emodb_val_speaker, args.seed)
    names = [Path(p).stem for _, _, p, _ in chosen]
    dupes = [n for n, k in Counter(names).items() if k > 1]
    if dupes:
        raise SystemExit(f"clip names must be unique across corpora; repeated: {dupes[:5]}")
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "media.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label"])
        w.writerows((p, label) for _, _, p, label in chosen)
    with open(args.out / "subtitles.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "sentence"])
        w.writerows(sorted(subtitles.items()))
    (args.out / "validation.txt").write_text(
        "".join(f"{Path(p).stem}\n" for _, split, p, _ in chosen if split == "val"), encoding="utf-8")
    counts: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for (corpus, split, label), k in sorted(Counter((c, s, y) for c, s, _, y in chosen).items()):
        counts[corpus][split][label] = k
    summary = {"arguments": {k: str(v) for k, v in vars(args).items()}, "counts": counts,
               "totals": dict(Counter(s for _, s, _, _ in chosen))}
    (args.out / "selection.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary["totals"]))


if __name__ == "__main__":
    main()
