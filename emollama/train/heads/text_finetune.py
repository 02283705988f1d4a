"""Fine-tune the top layers of all-MiniLM-L6-v2 for text emotion: one member of the shipped ensemble.

Data (:mod:`emollama.train.heads.text_data`): GoEmotions-Ekman train rows with one label + MELD train. The frozen
bottom layers are run once over every text and their outputs cached in memory (fp16), so each
epoch only runs and back-propagates the top ``--top`` layers. After every epoch the model is
scored on GoEmotions-Ekman dev (single-label rows, macro-F1) and MELD dev (weighted-F1); the epoch
with the best mean is kept. Then, on dev: the prior correction (0, 0.5 or 1 × log class frequency
subtracted from the logits) is chosen by the same mean, and the temperature is fitted (ECE
before/after reported). Checkpoints every epoch to ``--work/last_TAG.pt`` and resumes from it.
Writes ``minilm_top.*`` to ``--out`` (default ``--work/out_TAG``); :mod:`emollama.train.heads.text_ensemble`
combines such folders into what ``analyze`` loads (commands in the text MODEL_CARD).

    python -m emollama.train.heads.text_finetune --data ../shared/data/text --top 4 --epochs 2 --meld-repeat 3
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tqdm import tqdm

from emollama.heads.calibration import expected_calibration_error, fit_temperature, softmax
from emollama.heads.minilm import load_minilm
from emollama.heads.text_finetuned import MAX_TOKENS, MiniLMEmotionModel, normalize_punctuation
from emollama.train.checkpoints import resume_checkpoint, save_checkpoint
from emollama.train.heads.text_data import LABELS, dev_scores, read_corpora


def encode_bottom(model: MiniLMEmotionModel, tokenizer, texts: list[str], batch: int = 128
                  ) -> list[np.ndarray]:
    """Frozen-layer outputs per text (tokens × hidden, fp16), computed in length-sorted batches."""
    order = np.argsort([len(t) for t in texts])
    out: list[np.ndarray | None] = [None] * len(texts)
    for i in tqdm(range(0, len(texts), batch), desc="frozen layers", leave=False):
        idx = order[i:i + batch]
        enc = tokenizer([texts[j] for j in idx], padding=True, truncation=True, max_length=MAX_TOKENS,
                        return_tensors="pt")
        h = model.bottom(enc["input_ids"], enc["token_type_ids"], enc["attention_mask"]).half().numpy()
        lengths = enc["attention_mask"].sum(1).numpy()
        for k, j in enumerate(idx):
            out[j] = h[k, :lengths[k]]
    return out  # type: ignore[return-value]


def collate(states: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    t = max(len(s) for s in states)
    h = np.zeros((len(states), t, states[0].shape[1]), dtype=np.float32)
    mask = np.zeros((len(states), t), dtype=np.int64)
    for i, s in enumerate(states):
        h[i, :len(s)] = s
        mask[i, :len(s)] = 1
    return torch.from_numpy(h), torch.from_numpy(mask)


@torch.inference_mode()
def logits_of(model: MiniLMEmotionModel, states: list[np.ndarray], batch: int = 256) -> np.ndarray:
    model.eval()
    order = np.argsort([len(s) for s in states])
    out = np.zeros((len(states), len(LABELS)), dtype=np.float32)
    for i in range(0, len(states), batch):
        idx = order[i:i + batch]
        out[idx] = model.head(*collate([states[j] for j in idx])).numpy()
    return out


@dataclass
class TrainingTexts:
    """The training and dev texts of both corpora, punctuation already normalised as the shipped head sees it."""

    texts: list[str]  # GoEmotions train rows, then MELD train rows
    y: np.ndarray
    pool: np.ndarray  # indices into texts for one epoch: every GoEmotions row, each MELD row meld_repeat times
    dev_text: dict[str, tuple[list[str], np.ndarray]]
    n_goemotions: int
    n_meld: int


@dataclass
class FrozenCache:
    """Frozen-layer outputs, computed once so that every epoch only runs the top layers, with their targets."""

    train_states: list[np.ndarray]
    y: np.ndarray
    pool: np.ndarray
    dev_states: dict[str, list[np.ndarray]]
    dev_y: dict[str, np.ndarray]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; kept apart from :func:`main` so the options read as one block."""
    ap = argparse.ArgumentParser(prog="python -m emollama.train.heads.text_finetune",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/text"))
    ap.add_argument("--out", type=Path, default=None,
                    help="where minilm_top.* go (default WORK/out_TAG); emollama.train.heads.text_ensemble ships them")
    ap.add_argument("--work", type=Path, default=Path("/tmp/emollama_text_ft"))
    ap.add_argument("--top", type=int, default=2, help="how many top layers to fine-tune")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--head-lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--meld-repeat", type=int, default=3,
                    help="MELD train rows appear this many times per epoch (MELD is 1/4 of GoEmotions)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--raw-punctuation", action="store_true",
                    help="keep typographic quotes/dashes as they are (heads before 2026-11-22 were trained so)")
    ap.add_argument("--seed", type=int, default=0,
                    help="initialisation and batch-order seed; ensemble members differ by it (tag gets _sN when N > 0)")
    return ap.parse_args(argv)


def run_tag(args: argparse.Namespace) -> str:
    """Names the checkpoint and output files, so runs with different settings never resume each other."""
    return (f"top{args.top}_meld{args.meld_repeat}" + ("" if args.raw_punctuation else "_ascii")
            + (f"_s{args.seed}" if args.seed else ""))


def load_texts(data: Path, raw_punctuation: bool, meld_repeat: int) -> TrainingTexts:
    """Train + dev rows; MELD is repeated in the epoch pool because it is a quarter the size of GoEmotions."""
    corpora = read_corpora(data, "train", "dev")
    (go_x, go_y), (meld_x, meld_y) = corpora["goemotions"]["train"], corpora["meld"]["train"]
    dev_text = {k: v["dev"] for k, v in corpora.items()}
    texts, y = go_x + meld_x, np.concatenate([go_y, meld_y])
    if not raw_punctuation:
        texts = [normalize_punctuation(t) for t in texts]
        dev_text = {k: ([normalize_punctuation(t) for t in v[0]], v[1]) for k, v in dev_text.items()}
    pool = np.concatenate([np.arange(len(go_x))] + [len(go_x) + np.arange(len(meld_x))] * meld_repeat)
    return TrainingTexts(texts, y, pool, dev_text, len(go_x), len(meld_x))


def cache_frozen_layers(model: MiniLMEmotionModel, tokenizer, data: TrainingTexts, log: Callable[[str], None],
                        t0: float) -> FrozenCache:
    """Run the frozen bottom layers once over every text: the epochs then cost only the top layers."""
    train_states = encode_bottom(model, tokenizer, data.texts)
    dev_states = {k: encode_bottom(model, tokenizer, v[0]) for k, v in data.dev_text.items()}
    dev_y = {k: v[1] for k, v in data.dev_text.items()}
    log(f"cached frozen layers for {len(data.texts)} train + {sum(map(len, dev_states.values()))} dev texts "
        f"({time.perf_counter() - t0:.0f}s)")
    return FrozenCache(train_states, data.y, data.pool, dev_states, dev_y)


def make_optimizer(model: MiniLMEmotionModel, args: argparse.Namespace, steps: int
                   ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.OneCycleLR]:
    """AdamW with a smaller rate for the pretrained top layers than for the new classifier, one-cycle schedule."""
    params = [{"params": [p for p in model.top.parameters()], "lr": args.lr},
              {"params": list(model.classifier.parameters()), "lr": args.head_lr}]
    opt = torch.optim.AdamW(params, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[args.lr, args.head_lr], total_steps=args.epochs * steps,
                                                pct_start=0.06, anneal_strategy="linear")
    return opt, sched


def train_epoch(model: MiniLMEmotionModel, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.OneCycleLR,
                cache: FrozenCache, epoch: int, seed: int, batch: int, steps: int) -> float:
    """One pass over the pool in length-bucketed batches; returns the mean training loss.

    The batch order comes from a generator seeded by (seed, epoch), so it does not depend on how
    many epochs ran before: a resumed run visits the same batches as an uninterrupted one.
    """
    model.train()
    pool = cache.pool
    rng = np.random.default_rng([seed, epoch] if seed else epoch)
    # Batches of similar length (less padding), visited in random order.
    lengths = np.array([len(cache.train_states[j]) for j in pool])
    order = pool[np.argsort(lengths + rng.random(len(pool)) * 6)]
    batches = [order[i:i + batch] for i in range(0, steps * batch, batch)]
    total = 0.0
    for b in tqdm(rng.permutation(len(batches)), desc=f"epoch {epoch + 1}", leave=False):
        idx = batches[b]
        h, mask = collate([cache.train_states[j] for j in idx])
        loss = F.cross_entropy(model.head(h, mask), torch.from_numpy(cache.y[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        total += float(loss.detach())
    return total / len(batches)


def train(model: MiniLMEmotionModel, cache: FrozenCache, args: argparse.Namespace, tag: str,
          log: Callable[[str], None]) -> dict:
    """All epochs, resuming from ``last_TAG.pt``; keeps the best epoch by dev mean in ``best_TAG.pt``.

    Returns the run state (epoch, history, best, train_s), which the checkpoint also holds.
    """
    steps = len(cache.pool) // args.batch
    opt, sched = make_optimizer(model, args, steps)
    last = args.work / f"last_{tag}.pt"
    state = {"epoch": 0, "history": [], "best": None, "train_s": 0.0}
    if (ck := resume_checkpoint(last, model, opt, sched, log)) is not None:
        state = ck["state"]
    zero = np.zeros(len(LABELS))
    for epoch in range(state["epoch"], args.epochs):
        t1 = time.perf_counter()
        loss = train_epoch(model, opt, sched, cache, epoch, args.seed, args.batch, steps)
        dev_logits = {k: logits_of(model, v) for k, v in cache.dev_states.items()}
        scores = dev_scores(dev_logits, cache.dev_y, zero)
        state["train_s"] += time.perf_counter() - t1
        state["epoch"] = epoch + 1
        state["history"].append({"epoch": epoch + 1, "loss": round(loss, 4), **scores})
        log(f"{state['history'][-1]} ({time.perf_counter() - t1:.0f}s)")
        if state["best"] is None or scores["mean"] > state["best"]["mean"]:
            state["best"] = {"epoch": epoch + 1, **scores}
            torch.save(model.trainable_state(), args.work / f"best_{tag}.pt")
        save_checkpoint(last, model, opt, sched, state)
    return state


def calibrate(model: MiniLMEmotionModel, cache: FrozenCache, data: TrainingTexts, args: argparse.Namespace,
              tag: str, state: dict, t0: float) -> dict:
    """Reload the best epoch, pick the prior correction and fit the temperature on dev; the metadata to ship.

    Both are chosen on dev because they only reshape the trained logits: the correction undoes some
    of the pool's class imbalance (the dev measures weigh rare classes), the temperature makes the
    probabilities calibrated (ECE before/after in the report).
    """
    model.load_state_dict(torch.load(args.work / f"best_{tag}.pt"), strict=False)
    dev_logits = {k: logits_of(model, v) for k, v in cache.dev_states.items()}
    dev_y = cache.dev_y
    log_prior = np.log(np.bincount(cache.y[cache.pool], minlength=len(LABELS)) / len(cache.pool))
    corrections = {tau: dev_scores(dev_logits, dev_y, -tau * log_prior) for tau in (0.0, 0.5, 1.0)}
    tau = max(corrections, key=lambda t: corrections[t]["mean"])
    bias = -tau * log_prior
    all_logits = np.concatenate([dev_logits["goemotions"], dev_logits["meld"]]) + bias
    all_y = np.concatenate([dev_y["goemotions"], dev_y["meld"]])
    temperature = fit_temperature(all_logits, all_y)
    return {"n_top": args.top, "labels": list(LABELS), "normalize_punctuation": not args.raw_punctuation,
            "temperature": round(temperature, 4),
            "logit_bias": [round(float(b), 5) for b in bias], "prior_correction": tau,
            "dev": corrections[tau], "prior_correction_grid": {str(k): v for k, v in corrections.items()},
            "ece_before": round(expected_calibration_error(softmax(all_logits), all_y), 4),
            "ece_after": round(expected_calibration_error(softmax(all_logits / temperature), all_y), 4),
            "epochs": state["history"], "best_epoch": state["best"]["epoch"],
            "n_train": {"goemotions_single_label": data.n_goemotions, "meld": data.n_meld,
                        "meld_repeat": args.meld_repeat},
            "train_s": round(time.perf_counter() - t0, 1), "args": {k: str(v) for k, v in vars(args).items()}}


def write_outputs(model: MiniLMEmotionModel, report: dict, out: Path, log: Callable[[str], None]) -> None:
    """``minilm_top.safetensors`` (fp16, trainable part only) and ``minilm_top.json``: what text_ensemble reads."""
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.half().contiguous() for k, v in model.trainable_state().items()},
              str(out / "minilm_top.safetensors"))
    (out / "minilm_top.json").write_text(json.dumps(report, indent=2) + "\n")
    log(json.dumps({k: v for k, v in report.items() if k not in ("args",)}, indent=2))


def main(argv: list[str] | None = None) -> None:
    """Cache the frozen layers, fine-tune the top ones, calibrate on dev and write the member's folder."""
    args = parse_args(argv)
    log = functools.partial(print, flush=True)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = load_texts(args.data, args.raw_punctuation, args.meld_repeat)
    tokenizer, base = load_minilm()
    model = MiniLMEmotionModel(base, args.top, len(LABELS))
    cache = cache_frozen_layers(model, tokenizer, data, log, t0)
    tag = run_tag(args)
    state = train(model, cache, args, tag, log)
    report = calibrate(model, cache, data, args, tag, state, t0)
    write_outputs(model, report, args.out or args.work / f"out_{tag}", log)


if __name__ == "__main__":
    main()
