"""Speed of the Emotion-LLaMA model: prefill and decode tokens/s, and one training step.

Random weights from a config in ``emollama/model/configs/`` (nothing downloaded); media features are random
tensors of the configured shapes, so the numbers cover projector + splice + LM, not the encoders.

    python benchmarks/bench_model.py                                  # tiny and 100m-random on CPU
    python benchmarks/bench_model.py --config 7b-random --device cuda  # LLaMA-2-7B shapes, bf16, SDPA

Prefill = prompt tokens / time of the first forward (with the 256 media tokens in the prompt for
the official shapes); decode = generated tokens / time of the following steps (KV cache, greedy);
train step = forward + backward + AdamW on projector + LoRA for a right-padded batch.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported (through emollama.model)

from emollama.model.config import EmotionLlamaConfig  # noqa: E402
from emollama.model.emotion_llama import EmotionLlama, MediaFeatures  # noqa: E402
from emollama.model.processor import EmotionLlamaProcessor  # noqa: E402

#: The configs live in the repository (``emollama/model/configs``, package data).
CONFIGS = Path(__file__).resolve().parents[1] / "emollama" / "model" / "configs"
SUBTITLE = "I waited for you the whole evening and you did not even call, so what am I supposed to think now"
ANSWER = (
    "the person frowns with lowered brows and tight lips while the voice is loud and fast, and the words "
    "blame the listener, so the emotion is angry"
)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn: Callable[[], object], device: str) -> float:
    _sync(device)
    t = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t


def _features(cfg: EmotionLlamaConfig, batch: int, device: str) -> MediaFeatures:
    z = MediaFeatures.zeros(cfg.projector, batch, device)
    return MediaFeatures(
        *(torch.randn_like(t) for t in (z.global_patches, z.global_cls, z.local, z.temporal, z.audio))
    )


def bench(name: str, device: str, dtype: str | None, new_tokens: int, train_batch: int, repeats: int) -> dict:
    cfg = EmotionLlamaConfig.from_file(CONFIGS / f"{name}.yaml")
    if dtype:
        cfg.llm.dtype = dtype  # type: ignore[assignment]
    torch.manual_seed(0)
    model = EmotionLlama.from_config(cfg, device=device)
    proc = EmotionLlamaProcessor.from_config(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    user = proc.user_prompt("reason", SUBTITLE)
    gen = proc.collate([proc.encode(user)], padding_side="left")
    ids, mask = gen["input_ids"].to(device), gen["attention_mask"].to(device)
    feats = _features(cfg, 1, device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    model.eval()
    prefill_s, decode_s = [], []
    for _ in range(repeats + 1):  # first round warms up
        it = model.iter_generate(ids, mask, feats, stop_ids=[-1], max_new_tokens=new_tokens)
        _sync(device)
        t0 = time.perf_counter()
        next(it)
        _sync(device)
        t1 = time.perf_counter()
        for _tok in it:
            pass
        _sync(device)
        prefill_s.append(t1 - t0)
        decode_s.append(time.perf_counter() - t1)
    prefill = statistics.median(prefill_s[1:])
    decode = statistics.median(decode_s[1:])
    infer_peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None

    model.train()
    batch = proc.collate([proc.encode(user, ANSWER)] * train_batch)
    batch = {k: v.to(device) for k, v in batch.items()}
    tfeats = _features(cfg, train_batch, device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)

    def step() -> None:
        _, loss = model(batch["input_ids"], batch["attention_mask"], tfeats, batch["labels"])
        assert loss is not None
        opt.zero_grad()
        loss.backward()
        opt.step()

    train = statistics.median([_timed(step, device) for _ in range(repeats + 1)][1:])
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    return {
        "config": name,
        "device": device,
        "dtype": cfg.llm.dtype,
        "params_M": n_params / 1e6,
        "trainable_M": model.num_parameters(trainable_only=True) / 1e6,
        "prompt_tokens": ids.shape[1],
        "prefill_tok_s": ids.shape[1] / prefill,
        "decode_tok_s": (new_tokens - 1) / decode,
        "train_batch": train_batch,
        "train_seq": batch["input_ids"].shape[1],
        "train_step_s": train,
        "infer_peak_GiB": infer_peak,
        "train_peak_GiB": peak,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", action="append", help="config name in emollama/model/configs (repeatable)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default=None, help="override llm.dtype (float32|bfloat16|float16)")
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--train-batch", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rows = [
        bench(c, args.device, args.dtype, args.new_tokens, args.train_batch, args.repeats)
        for c in (args.config or ["tiny", "100m-random"])
    ]
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}"
        + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else "")
    )
    head = (
        "| config | params (M) | trainable (M) | dtype | prompt tok | prefill tok/s | decode tok/s "
        "| train step (batch×seq) | peak GiB (infer/train) |"
    )
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for r in rows:
        peak = (
            f"{r['infer_peak_GiB']:.1f} / {r['train_peak_GiB']:.1f}"
            if r["infer_peak_GiB"] is not None
            else "n/a (CPU)"
        )
        print(
            f"| {r['config']} | {r['params_M']:.1f} | {r['trainable_M']:.2f} | {r['dtype']} "
            f"| {r['prompt_tokens']} "
            f"| {r['prefill_tok_s']:.0f} | {r['decode_tok_s']:.1f} "
            f"| {r['train_step_s'] * 1000:.0f} ms ({r['train_batch']}×{r['train_seq']}) | {peak} |"
        )


if __name__ == "__main__":
    main()
