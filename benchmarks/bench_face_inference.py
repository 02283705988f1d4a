"""Face-expression inference latency: milliseconds per face, default memory layout against channels-last.

Times the whole ``ExpressionModel.predict`` on one 112×112 RGB crop (what ``analyze`` passes:
grey conversion, resize to 48×48, network, softmax) on one CPU thread, with and without flip
averaging, for the shipped widths and a wider variant. The "default layout" column runs the same
weights with contiguous (NCHW) tensors, which is how ``FaceCNN`` ran before it switched to
channels-last. Issue 3's budget is 5 ms per face.

    python benchmarks/bench_face_inference.py
    python benchmarks/bench_face_inference.py --widths 32 64 128 256 --threads 2
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from emollama.heads.face import ExpressionModel, FaceCNN
from emollama.train.heads.face_select import ms_per_face  # the same timing the head's selection uses


class ContiguousFaceCNN(torch.nn.Module):
    """The same network run in the default NCHW layout (the baseline column)."""

    def __init__(self, net: FaceCNN) -> None:
        super().__init__()
        net.to(memory_format=torch.contiguous_format)
        self.features, self.head = net.features, net.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.contiguous()).mean(dim=(2, 3)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", type=int, nargs=4, action="append",
                    help="network widths (repeatable); default: 32 64 128 256 and 40 80 160 320")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=300)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    widths = args.widths or [[32, 64, 128, 256], [40, 80, 160, 320]]
    crop = np.random.default_rng(0).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    labels = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt")
    print(f"{'widths':<18} {'flip':>5} {'default ms':>11} {'channels-last ms':>17} {'speed-up':>9}")
    for w in widths:
        torch.manual_seed(0)
        for flip in (False, True):
            fast = ExpressionModel(FaceCNN(tuple(w), n_classes=8).eval(), 1.0, flip, "bench", labels)
            torch.manual_seed(0)
            slow_net = ContiguousFaceCNN(FaceCNN(tuple(w), n_classes=8).eval()).eval()
            slow = ExpressionModel(slow_net, 1.0, flip, "bench", labels)
            t_slow = ms_per_face(slow.predict, [crop], args.repeats)
            t_fast = ms_per_face(fast.predict, [crop], args.repeats)
            print(f"{'-'.join(map(str, w)):<18} {'yes' if flip else 'no':>5} {t_slow:>11.2f} {t_fast:>17.2f} "
                  f"{t_slow / t_fast:>8.2f}x", flush=True)


if __name__ == "__main__":
    main()
