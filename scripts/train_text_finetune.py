"""Fine-tune the top layers of all-MiniLM-L6-v2 for text emotion: one member of the shipped ensemble.

Data as in ``train_text.py``: GoEmotions-Ekman train rows with one label + MELD train. The frozen
bottom layers are run once over every text and their outputs cached in memory (fp16), so each
epoch only runs and back-propagates the top ``--top`` layers. After every epoch the model is
scored on GoEmotions-Ekman dev (single-label rows, macro-F1) and MELD dev (weighted-F1); the epoch
with the best mean is kept. Then, on dev: the prior correction (0, 0.5 or 1 × log class frequency
subtracted from the logits) is chosen by the same mean, and the temperature is fitted (ECE
before/after reported). Checkpoints every epoch to ``--work/last_TAG.pt`` and resumes from it.
Writes ``minilm_top.*`` to ``--out`` (default ``--work/out_TAG``); ``build_text_ensemble.py``
combines such folders into what ``analyze`` loads (commands in the text MODEL_CARD).

    cd scripts && python train_text_finetune.py --data ../../shared/data/text --top 4 --epochs 2 --meld-repeat 3
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from checkpoints import resume_checkpoint, save_checkpoint
from safetensors.torch import save_file
from sklearn.metrics import f1_score
from tqdm import tqdm
from train_text import LABELS, read_goemotions, read_meld

from emollama.heads.calibration import expected_calibration_error, fit_temperature, softmax
from emollama.heads.text_finetuned import MAX_TOKENS, MiniLMEmotionModel, load_minilm_base, normalize_punctuation


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


def dev_scores(logits: dict[str, np.ndarray], ys: dict[str, np.ndarray], bias: np.ndarray) -> dict[str, float]:
    go = f1_score(ys["goemotions"], (logits["goemotions"] + bias).argmax(1), average="macro")
    meld = f1_score(ys["meld"], (logits["meld"] + bias).argmax(1), average="weighted")
    return {"goemotions_dev_macro_f1": round(float(go), 4), "meld_dev_weighted_f1": round(float(meld), 4),
            "mean": round(float(go + meld) / 2, 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../../shared/data/text"))
    ap.add_argument("--out", type=Path, default=None,
                    help="where minilm_top.* go (default WORK/out_TAG); build_text_ensemble.py ships them")
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
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    names = (args.data / "goemotions_ekman_labels.txt").read_text().split()
    go_x, go_y = read_goemotions(args.data / "goemotions_ekman_train.tsv", names)
    meld_x, meld_y = read_meld(args.data / "meld_train.csv")
    dev_text = {"goemotions": read_goemotions(args.data / "goemotions_ekman_dev.tsv", names),
                "meld": read_meld(args.data / "meld_dev.csv")}
    texts, y = go_x + meld_x, np.concatenate([go_y, meld_y])
    if not args.raw_punctuation:
        texts = [normalize_punctuation(t) for t in texts]
        dev_text = {k: ([normalize_punctuation(t) for t in v[0]], v[1]) for k, v in dev_text.items()}
    pool = np.concatenate([np.arange(len(go_x))] + [len(go_x) + np.arange(len(meld_x))] * args.meld_repeat)

    tokenizer, base = load_minilm_base()
    model = MiniLMEmotionModel(base, args.top, len(LABELS))
    train_states = encode_bottom(model, tokenizer, texts)
    dev_states = {k: encode_bottom(model, tokenizer, v[0]) for k, v in dev_text.items()}
    dev_y = {k: v[1] for k, v in dev_text.items()}
    print(f"cached frozen layers for {len(texts)} train + {sum(map(len, dev_states.values()))} dev texts "
          f"({time.perf_counter() - t0:.0f}s)", flush=True)

    params = [{"params": [p for p in model.top.parameters()], "lr": args.lr},
              {"params": list(model.classifier.parameters()), "lr": args.head_lr}]
    opt = torch.optim.AdamW(params, weight_decay=0.01)
    steps = len(pool) // args.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[args.lr, args.head_lr], total_steps=args.epochs * steps,
                                                pct_start=0.06, anneal_strategy="linear")
    tag = (f"top{args.top}_meld{args.meld_repeat}" + ("" if args.raw_punctuation else "_ascii")
           + (f"_s{args.seed}" if args.seed else ""))
    out = args.out or args.work / f"out_{tag}"
    last = args.work / f"last_{tag}.pt"
    state = {"epoch": 0, "history": [], "best": None, "train_s": 0.0}
    if (ck := resume_checkpoint(last, model, opt, sched)) is not None:
        state = ck["state"]
    zero = np.zeros(len(LABELS))
    for epoch in range(state["epoch"], args.epochs):
        t1 = time.perf_counter()
        model.train()
        rng = np.random.default_rng([args.seed, epoch] if args.seed else epoch)
        # Batches of similar length (less padding), visited in random order.
        lengths = np.array([len(train_states[j]) for j in pool])
        order = pool[np.argsort(lengths + rng.random(len(pool)) * 6)]
        batches = [order[i:i + args.batch] for i in range(0, steps * args.batch, args.batch)]
        total = 0.0
        for b in tqdm(rng.permutation(len(batches)), desc=f"epoch {epoch + 1}", leave=False):
            idx = batches[b]
            h, mask = collate([train_states[j] for j in idx])
            loss = F.cross_entropy(model.head(h, mask), torch.from_numpy(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        dev_logits = {k: logits_of(model, v) for k, v in dev_states.items()}
        scores = dev_scores(dev_logits, dev_y, zero)
        state["train_s"] += time.perf_counter() - t1
        state["epoch"] = epoch + 1
        state["history"].append({"epoch": epoch + 1, "loss": round(total / len(batches), 4), **scores})
        print(state["history"][-1], f"({time.perf_counter() - t1:.0f}s)", flush=True)
        if state["best"] is None or scores["mean"] > state["best"]["mean"]:
            state["best"] = {"epoch": epoch + 1, **scores}
            torch.save(model.trainable_state(), args.work / f"best_{tag}.pt")
        save_checkpoint(last, model, opt, sched, state)

    model.load_state_dict(torch.load(args.work / f"best_{tag}.pt"), strict=False)
    dev_logits = {k: logits_of(model, v) for k, v in dev_states.items()}
    log_prior = np.log(np.bincount(y[pool], minlength=len(LABELS)) / len(pool))
    corrections = {tau: dev_scores(dev_logits, dev_y, -tau * log_prior) for tau in (0.0, 0.5, 1.0)}
    tau = max(corrections, key=lambda t: corrections[t]["mean"])
    bias = -tau * log_prior
    all_logits = np.concatenate([dev_logits["goemotions"], dev_logits["meld"]]) + bias
    all_y = np.concatenate([dev_y["goemotions"], dev_y["meld"]])
    temperature = fit_temperature(all_logits, all_y)
    report = {"n_top": args.top, "labels": list(LABELS), "normalize_punctuation": not args.raw_punctuation,
              "temperature": round(temperature, 4),
              "logit_bias": [round(float(b), 5) for b in bias], "prior_correction": tau,
              "dev": corrections[tau], "prior_correction_grid": {str(k): v for k, v in corrections.items()},
              "ece_before": round(expected_calibration_error(softmax(all_logits), all_y), 4),
              "ece_after": round(expected_calibration_error(softmax(all_logits / temperature), all_y), 4),
              "epochs": state["history"], "best_epoch": state["best"]["epoch"],
              "n_train": {"goemotions_single_label": len(go_x), "meld": len(meld_x), "meld_repeat": args.meld_repeat},
              "train_s": round(time.perf_counter() - t0, 1), "args": {k: str(v) for k, v in vars(args).items()}}
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.half().contiguous() for k, v in model.trainable_state().items()},
              str(out / "minilm_top.safetensors"))
    (out / "minilm_top.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k not in ("args",)}, indent=2), flush=True)


if __name__ == "__main__":
    main()
