"""How much emotion do the geometric AUs carry? AU-prototype rules alone on CK+ peak frames.

Each CK+ dev image (48x48 posed peak expression) is upscaled, meshed with MediaPipe, turned into
AU intensities against the population neutral prior (single images have no own baseline), and
classified by :func:`emollama.recognize.au_rules.au_emotion_scores` restricted to CK+'s seven
classes. Prints accuracy, UAR and the confusion matrix. This checks the AU geometry and the rule
table; it is not a trained classifier.

    python benchmarks/au_rules_ckplus.py --data ../shared/data/ckplus48
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from emollama.labels import normalize_label
from emollama.perception.action_units import still_image_aus
from emollama.recognize.au_rules import au_emotion_scores

CLASSES = ("angry", "contempt", "disgust", "fear", "happy", "sad", "surprise")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/ckplus48")
    args = parser.parse_args()
    from mediapipe.python.solutions import face_mesh

    with open(args.data / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    truth, pred, missed = [], [], 0
    with face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True) as mesh:
        for row in rows:
            rgb = np.asarray(Image.open(args.data / row["path"]).convert("RGB").resize((192, 192), Image.BICUBIC))
            res = mesh.process(rgb)
            if not res.multi_face_landmarks:
                missed += 1
                continue
            lm = np.array([(p.x * 192, p.y * 192, p.z * 192) for p in res.multi_face_landmarks[0].landmark])
            au, asymmetry = still_image_aus(lm)
            scores = au_emotion_scores(au, asymmetry)
            truth.append(normalize_label(row["label"]))
            pred.append(max(CLASSES, key=lambda c: scores.get(c, 0.0)))
    t, p = np.array(truth), np.array(pred)
    recalls = {c: float(np.mean(p[t == c] == c)) for c in CLASSES if np.any(t == c)}
    print(f"CK+ dev: {len(rows)} images, {missed} without a face mesh, {len(t)} scored")
    print(f"accuracy {np.mean(t == p):.3f}   UAR {np.mean(list(recalls.values())):.3f}   "
          f"chance (majority) {Counter(truth).most_common(1)[0][1] / len(t):.3f}")
    print("recall: " + ", ".join(f"{c} {r:.2f}" for c, r in recalls.items()))
    print("confusion (rows = truth, columns = predicted):")
    print("          " + " ".join(f"{c[:7]:>8}" for c in CLASSES))
    for c in CLASSES:
        print(f"{c:>9} " + " ".join(f"{int(np.sum((t == c) & (p == d))):>8}" for d in CLASSES))


if __name__ == "__main__":
    main()
