"""Training speed of the face CNN: images per second for one step, float32 against ``--bf16``.

Uses ``train_step`` from ``emollama.train.heads.face_step`` itself (augmentation, channels-last,
label smoothing, AdamW, one-cycle schedule) on random 48×48 faces, so the numbers are what an
epoch of the real recipe costs, minus data loading and the val pass. It decides how many epochs
and how wide a network fit the 90-minute CPU budget of issue 3.

    python benchmarks/bench_face_training.py                                  # 2 threads, two widths
    python benchmarks/bench_face_training.py --widths 32 64 128 256 --threads 1

bfloat16 only pays on CPUs with native BF16 dot products (AVX512-BF16 / AMX); elsewhere autocast
may be slower than float32, which this table shows before a long run is started.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from emollama.heads.face import FaceCNN
from emollama.train.heads.face_step import train_step

FER_TRAIN_IMAGES = 28_709


def images_per_second(widths: tuple[int, ...], bf16: bool, batch: int, steps: int) -> float:
    torch.manual_seed(0)
    net = FaceCNN(tuple(widths))  # channels-last by construction
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=steps + 5)
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (batch, 48, 48), dtype=np.uint8)
    labels = rng.integers(0, 7, batch)
    for i in range(steps + 5):
        if i == 5:  # the first steps pick kernels and allocate
            t0 = time.perf_counter()
        train_step(net, opt, sched, faces, labels, rng, bf16)
    return batch * steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", type=int, nargs=4, action="append",
                    help="network widths (repeatable); default: 32 64 128 256 and 40 80 160 320")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=25)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    widths = args.widths or [[32, 64, 128, 256], [40, 80, 160, 320]]
    print(f"{'widths':<18} {'params':>9} {'float32 img/s':>14} {'bf16 img/s':>11} {'speed-up':>9} "
          f"{'bf16 s/epoch':>13}")
    for w in widths:
        params = sum(p.numel() for p in FaceCNN(tuple(w)).parameters())
        fp32 = images_per_second(tuple(w), False, args.batch, args.steps)
        bf16 = images_per_second(tuple(w), True, args.batch, args.steps)
        print(f"{'-'.join(map(str, w)):<18} {params:>9,} {fp32:>14.0f} {bf16:>11.0f} {bf16 / fp32:>8.2f}x "
              f"{FER_TRAIN_IMAGES / bf16:>13.0f}")


if __name__ == "__main__":
    main()
