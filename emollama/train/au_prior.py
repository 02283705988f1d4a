"""Rebuild POPULATION_NEUTRAL in emollama/perception/action_units.py (printed, to paste there).

The prior is the median geometric feature vector over FER2013 training faces labelled "neutral".
It is used only when a clip has too few confident face frames for its own baseline (still images).

    python -m emollama.train.au_prior --data ../shared/data/fer2013 --n 600
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

import numpy as np
from PIL import Image

from emollama.perception.action_units import FEATURE_NAMES, face_frame, geometric_features


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emollama.train.au_prior", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/fer2013"))
    parser.add_argument("--n", type=int, default=600, help="how many neutral training faces to sample")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from mediapipe.python.solutions import face_mesh

    with open(args.data / "labels.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["label"] == "neutral" and r["split"] == "train"]
    random.Random(args.seed).shuffle(rows)
    feats = []
    with face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True) as mesh:
        for row in rows[: args.n]:
            grey = Image.open(args.data / row["path"]).convert("RGB").resize((192, 192), Image.BICUBIC)
            rgb = np.asarray(grey)
            res = mesh.process(rgb)
            if not res.multi_face_landmarks:
                continue
            lm = np.array([(p.x * 192, p.y * 192, p.z * 192) for p in res.multi_face_landmarks[0].landmark])
            feats.append(geometric_features(face_frame(lm)[0])[0])
    arr = np.array(feats)
    median = np.median(arr, axis=0)
    median[FEATURE_NAMES.index("corner_asym")] = 0.0  # symmetric by definition
    print(f"# {len(arr)} of {min(args.n, len(rows))} neutral faces had a mesh")
    print("POPULATION_NEUTRAL: dict[str, float] = {")
    print("    " + ", ".join(f'"{n}": {v:.3f}' for n, v in zip(FEATURE_NAMES, median, strict=True)) + ",")
    print("}")


if __name__ == "__main__":
    main()
