"""Train the face-expression CNN (``emollama.heads.face.FaceCNN``) from scratch on FER2013 train.

Selection is on FER2013 val only: flip-averaged accuracy after each epoch, the way the head is
used (until 2026-11-30 it was single-pass accuracy, which with seed 1 picked epoch 59 of 85 although
the last epoch was 0.015 better flip-averaged, see the face model card). CK+ is never seen here.
Checkpoints every epoch to ``--work/last.pt`` and resumes from it, so the run can be killed and
restarted with the same arguments. The best-on-val weights go to ``--export``;
:mod:`emollama.train.heads.face_ckplus` fine-tunes them on CK+ and
``python -m emollama.train.heads.face_select --cnn`` then compares, calibrates and ships.

    python -m emollama.train.heads.face_cnn --data ../shared/data/fer2013 --threads 2

The defaults are the shipped recipe (widths 40-80-160-320, 85 epochs, seed 1, bfloat16 autocast:
about 70 min on 2 AVX512-BF16 cores). On a CPU without native BF16 pass ``--no-bf16`` (float32; about
1.9x slower per step, see ``benchmarks/bench_face_training.py``).
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import numpy as np
import torch

from emollama.heads.face import CNN_INPUT_SIZE, FER_LABELS, FaceCNN, to_network_input
from emollama.train.checkpoints import resume_checkpoint, save_checkpoint
from emollama.train.heads.face_step import train_step
from emollama.train.heads.fer2013 import load_split


@torch.inference_mode()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 on one split, single pass and with flip averaging.

    Batches of 64: on CPU a forward pass over 512 faces at once runs at half the images per second
    (the activations fall out of cache), which made the per-epoch val pass a quarter of an epoch.
    """
    from sklearn.metrics import f1_score

    model.eval()
    plain, flipped = [], []
    for i in range(0, len(x), 64):
        plain.append(model(x[i:i + 64]))
        flipped.append(model(x[i:i + 64].flip(-1)))
    plain_logits, flip_logits = torch.cat(plain), torch.cat(flipped)
    out = {}
    for name, logits in (("", plain_logits), ("flip_", (plain_logits + flip_logits) / 2)):
        preds = logits.argmax(-1).numpy()
        out[f"{name}accuracy"] = float((preds == y).mean())
        out[f"{name}macro_f1"] = float(f1_score(y, preds, average="macro"))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m emollama.train.heads.face_cnn", description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/fer2013"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/emollama_face_cnn"))
    ap.add_argument("--export", type=Path, default=None, help="default: WORK/best.pt")
    ap.add_argument("--epochs", type=int, default=85)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weight-decay", type=float, default=0.02)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--widths", type=int, nargs=4, default=[40, 80, 160, 320])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1, help="the shipped network is seed 1 (seed 0: see the model card)")
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True,
                    help="bfloat16 autocast for the training forward pass (about 2x faster on CPUs with "
                    "AVX512-BF16; evaluation stays float32); --no-bf16 on CPUs without it")
    args = ap.parse_args(argv)
    log = functools.partial(print, flush=True)
    export = args.export or args.work / "best.pt"
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    xtr, ytr = load_split(args.data, "train", CNN_INPUT_SIZE, args.work)
    xva, yva = load_split(args.data, "val", CNN_INPUT_SIZE, args.work)
    xva_t = to_network_input(xva)
    model = FaceCNN(tuple(args.widths))
    log(f"parameters: {sum(p.numel() for p in model.parameters())}")
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = len(xtr) // args.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch,
                                                pct_start=0.15)
    last = args.work / "last.pt"
    state = {"epoch": 0, "best": {"accuracy": 0.0}, "history": [], "train_s": 0.0, "args": {
        k: str(v) for k, v in vars(args).items()}}
    if (ck := resume_checkpoint(last, model, opt, sched, log)) is not None:
        state = ck["state"]
        torch.set_rng_state(ck["torch_rng"])

    for epoch in range(state["epoch"], args.epochs):
        t0 = time.perf_counter()
        model.train()
        rng = np.random.default_rng(args.seed * 1000 + epoch)
        order = rng.permutation(len(xtr))
        total = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * args.batch:(step + 1) * args.batch]
            total += train_step(model, opt, sched, xtr[idx], ytr[idx], rng, args.bf16)
            if step % 150 == 0:
                log(f"epoch {epoch + 1} step {step}/{steps_per_epoch} loss {total / (step + 1):.4f}")
        val = evaluate(model, xva_t, yva)
        state["train_s"] += time.perf_counter() - t0
        state["history"].append({"epoch": epoch + 1, "loss": total / steps_per_epoch, **val})
        state["epoch"] = epoch + 1
        log(f"epoch {epoch + 1}: val {val} ({time.perf_counter() - t0:.0f}s, total {state['train_s']:.0f}s)")
        if val["flip_accuracy"] > state["best"].get("flip_accuracy", 0.0):
            state["best"] = {**val, "epoch": epoch + 1}
            export.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": model.state_dict(), "widths": list(args.widths), "labels": list(FER_LABELS),
                        "val": val, "epoch": epoch + 1}, export)
        save_checkpoint(last, model, opt, sched, state, torch_rng=torch.get_rng_state())
    (args.work / "summary.json").write_text(json.dumps(state, indent=2))
    log(json.dumps(state["best"], indent=2))


if __name__ == "__main__":
    main()
