"""Speed and memory of the real instruction-tuning loop (`emollama train`): samples/s, step time, peak RSS.

Each row runs the real command line — ``emollama train`` in one process, or under
``python -m torch.distributed.run --nproc-per-node N`` (DDP, gloo on CPU) — on a synthetic
workspace of the chosen model config's shapes: a feature store of random features (global patch
tokens stored float16), an annotation list with captions and subtitles, and a one-stage recipe
(stage 1 of the packaged coarse-to-fine recipe: tasks ``[emotion, reason]``, its AdamW settings)
with ``validation.by: none`` and no mid-run checkpoints. Random weights from ``emollama/model/configs/``;
nothing is downloaded.

    python benchmarks/bench_train.py               # tiny + 100m-random, 1 and 2 CPU processes (~4 min, 2 idle cores)
    python benchmarks/bench_train.py --config tiny --processes 1 --precision bf16   # CPU bf16 autocast
    python benchmarks/bench_train.py --config 7b-random --device cuda --precision bf16 \\
        --processes 1 --global-batch 1 --warmup 2 --steps 8  # LLaMA-2-7B shapes (benchmarks/gpu_train_7b.sh)

What is measured: the recipe logs every optimizer step's wall time in ``metrics.jsonl`` (encode
the global batch, read its features from the store, forward + backward per micro-batch, DDP
all-reduce, AdamW, the loss all-reduce; the loss is read back with ``float()``, which also
synchronises a GPU). The first ``--warmup`` steps are dropped; "step ms" is the mean of the rest,
samples/s = global batch / mean step time, tokens/s = real (unpadded) tokens of the timed steps,
media placeholders included, / their time. The epoch-end checkpoint (written after the last step)
and the start-up (imports, tokenizer, model build) are outside the step times; they are in
"wall s" and in the peak memory. Peak RSS is ``ru_maxrss`` of each training process (the max over
processes is shown); peak GPU memory is ``torch.cuda.max_memory_allocated`` (max over processes).

Each process uses ``cores // processes`` threads (``OMP_NUM_THREADS``), so 1 and 2 processes use
the same cores; on a 2-core machine 2 processes compete for the same 2 cores with each other and
with the gloo all-reduce, so the 2-process rows measure DDP overhead, not a speed-up. CPU timings
are only meaningful on an otherwise idle machine: a 2-thread process on 2 cores slowed from ~55 ms
to 1-2.5 s per tiny step while one other process kept a core busy. The "other load" column says how
many cores other processes used during each row (from ``/proc/stat``); rerun rows where it is not ~0.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported (through emollama)

#: The configs live in the repository (``emollama/model/configs``, package data).
ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "emollama" / "model" / "configs"
STAGE = "coarse"
TASKS = ["emotion", "reason"]
LABELS = ("neutral", "happy", "angry", "worried", "sad", "surprise")
#: Per config: (global batch, warm-up steps, timed steps) for the default CPU run.
DEFAULTS = {"tiny": (4, 3, 40), "100m-random": (2, 2, 10), "7b-random": (1, 2, 8)}
_TEXT = ("the person frowns with lowered brows and tight lips while the voice is loud and fast and the words "
         "blame the listener she smiles with raised cheeks his eyes widen the tone is flat and slow a sigh "
         "follows the sentence shoulders drop the gaze avoids the camera laughter softens the reply")
WORDS = tuple(_TEXT.split(" "))


# ------------------------------------------------------------------------------------------ worker
def _worker(argv: list[str]) -> None:
    """``bench_train.py --worker STATS_DIR emollama-args…``: the ``emollama`` command, then this process's peaks.

    The same code as ``python -m emollama …`` (``emollama.cli.main``); the wrapper only records
    ``ru_maxrss`` and the CUDA peak of this process into ``STATS_DIR/rank<RANK>.json`` when it ends.
    """
    stats_dir, args = Path(argv[0]), argv[1:]
    sys.argv = ["emollama", *args]
    from emollama.cli import main

    try:
        main()
    finally:
        import torch

        stats: dict[str, Any] = {"rank": int(os.environ.get("RANK", "0")),
                                 "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                                 "threads": torch.get_num_threads()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            stats["cuda_max_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
            stats["cuda_max_reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
            stats["gpu"] = torch.cuda.get_device_name()
        stats_dir.mkdir(parents=True, exist_ok=True)
        (stats_dir / f"rank{stats['rank']}.json").write_text(json.dumps(stats), encoding="utf-8")


# ------------------------------------------------------------------------------------------ workspace
def make_workspace(root: Path, config: str, clips: int) -> Path:
    """Features (random, global patches float16), annotations with captions + subtitles, under ``root``."""
    import torch

    from emollama.features.store import FeatureStore
    from emollama.model.config import EmotionLlamaConfig
    from emollama.model.emotion_llama import MediaFeatures

    cfg = EmotionLlamaConfig.from_file(CONFIGS / f"{config}.yaml")
    store = FeatureStore.create(root / "features", cfg, settings={"patch_dtype": "float16"})
    g = torch.Generator().manual_seed(0)
    lines, coarse, subs = [], {}, []
    for i in range(clips):
        name, label = f"clip{i:04d}", LABELS[i % len(LABELS)]
        z = MediaFeatures.zeros(cfg.projector, 1)
        store.write(name, MediaFeatures(*(torch.randn(t.shape, generator=g) for t in
                                          (z.global_patches, z.global_cls, z.local, z.temporal, z.audio))))
        lines.append(f"{name} 10 {label} -10\n")
        n_words = 30 + (i * 7) % 30  # coarse MERR captions are a few dozen words
        caption = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(n_words))
        coarse[name] = {"caption": f"{caption}, so the emotion is {label}.", "peak_index": 3}
        subs.append(f"{name},{' '.join(WORDS[(3 * i + k) % len(WORDS)] for k in range(12 + i % 8))}\n")
    ann = root / "ann"
    ann.mkdir(parents=True, exist_ok=True)
    (ann / "MERR_coarse_grained.txt").write_text("".join(lines), encoding="utf-8")
    (ann / "MERR_coarse_grained.json").write_text(json.dumps(coarse), encoding="utf-8")
    (ann / "transcription_en_all.csv").write_text("name,sentence\n" + "".join(subs), encoding="utf-8")
    return root


def write_recipe(root: Path, config: str, tag: str, *, batch_size: int, steps: int, precision: str) -> Path:
    """A one-stage recipe: stage 1 of the packaged coarse-to-fine recipe, no validation, no mid-run checkpoints."""
    import yaml

    from emollama.train.instruct.config import PACKAGED

    packaged = yaml.safe_load((PACKAGED / "coarse-to-fine.yaml").read_text(encoding="utf-8"))
    optim = {**packaged["optim"], "batch_size": batch_size, "grad_accum": 1}
    recipe = {
        "name": f"bench-{config}-{tag}",
        "model": str(CONFIGS / f"{config}.yaml"),
        "data": {"features": "features", "missing_features": "error", "label_set": "merr9"},
        "validation": {"by": "none"},
        "stages": [{"name": STAGE, "annotations": "ann/MERR_coarse_grained.txt", "tasks": TASKS,
                    "epochs": 1, "steps_per_epoch": steps, "init": "none"}],
        "optim": optim,
        "checkpoint": {"every_steps": 0, "keep_last": 1},
        "precision": precision,
        "seed": 42,
        "log_every": 1,
    }
    path = root / f"recipe-{tag}.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


def step_tokens(root: Path, config: str, global_batch: int, steps: int) -> list[int]:
    """Real tokens (media placeholders included, no padding) of each optimizer step of the run.

    Replays the recipe's own sample order, task and instruction draws (same functions, same seeds)
    and encodes with the same processor, so the count is what the LM saw.
    """
    import random

    from emollama.model.config import EmotionLlamaConfig
    from emollama.model.processor import EmotionLlamaProcessor
    from emollama.train.instruct.data import answer_for, choose_task, epoch_indices, read_annotations

    cfg = EmotionLlamaConfig.from_file(CONFIGS / f"{config}.yaml")
    proc = EmotionLlamaProcessor.from_config(cfg)
    train = read_annotations(root / "ann" / "MERR_coarse_grained.txt", label_set="merr9")
    out = []
    for step in range(steps):
        start = step * global_batch
        n = 0
        for k, i in zip(range(start, start + global_batch),
                        epoch_indices(len(train), global_batch, seed=42, stage=STAGE, epoch=0, start=start),
                        strict=True):
            rng = random.Random(f"42:{STAGE}:0:{k}:task")
            sample = train[i]
            task = choose_task(sample, TASKS, rng)
            user = proc.user_prompt(task, sample.subtitle, proc.pools.instruction(task, rng=rng, label_set="merr9"),
                                    label_set="merr9")
            n += len(proc.encode(user, answer_for(sample, task)).input_ids)
        out.append(n)
    return out


# ------------------------------------------------------------------------------------------ one row
def _cpu_seconds() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, CPU seconds of this process's finished children)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]  # user nice system [idle iowait] irq softirq steal
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return busy / os.sysconf("SC_CLK_TCK"), ru.ru_utime + ru.ru_stime


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench(config: str, processes: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    gb, warmup, steps = DEFAULTS.get(config, (processes, 2, 8))
    gb = args.global_batch or max(gb, processes)
    warmup = args.warmup if args.warmup is not None else warmup
    steps = args.steps or steps
    if gb % processes:
        raise SystemExit(f"--global-batch {gb} is not divisible by {processes} processes")
    total = warmup + steps
    root = work / config
    if not (root / "features").is_dir():
        make_workspace(root, config, args.clips)
    tag = f"{processes}p-{args.precision}"
    recipe = write_recipe(root, config, tag, batch_size=gb // processes, steps=total, precision=args.precision)
    run_dir, stats_dir = root / f"run-{tag}", root / f"stats-{tag}"
    shutil.rmtree(run_dir, ignore_errors=True)
    shutil.rmtree(stats_dir, ignore_errors=True)
    threads = args.threads or max(1, (os.cpu_count() or 1) // processes)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads), "PYTHONHASHSEED": "0"}
    if args.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # the recipe's Accelerator picks the GPU whenever one is visible
    worker = [str(Path(__file__).resolve()), "--worker", str(stats_dir),
              "train", "--config", str(recipe), "--out", str(run_dir)]
    launch = ([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes),
               "--master-addr", "127.0.0.1", "--master-port", str(_free_port())] if processes > 1
              else [sys.executable])
    print(f"... {config}, {processes} process(es) × {threads} thread(s), {args.device}, precision {args.precision}, "
          f"global batch {gb}, {warmup} warm-up + {steps} timed steps", file=sys.stderr, flush=True)
    busy0, ours0 = _cpu_seconds()
    t0 = time.perf_counter()
    proc = subprocess.run([*launch, *worker], cwd=root, env=env, capture_output=True, text=True,
                          timeout=args.timeout)
    wall = time.perf_counter() - t0
    busy1, ours1 = _cpu_seconds()
    (root / f"log-{tag}.txt").write_text(proc.stdout + "\n--- stderr\n" + proc.stderr, encoding="utf-8")
    row: dict[str, Any] = {"config": config, "processes": processes, "threads": threads, "device": args.device,
                           "precision": args.precision, "global_batch": gb, "warmup": warmup, "steps": steps,
                           "wall_s": wall, "ok": proc.returncode == 0,
                           "cpu_used": (ours1 - ours0) / wall,  # cores this run kept busy on average
                           # cores other processes on the machine kept busy meanwhile: they skew CPU timings
                           "other_load": max(0.0, (busy1 - busy0) - (ours1 - ours0)) / wall}
    if proc.returncode != 0:
        print(f"!!! {config} × {processes} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}", file=sys.stderr)
        return row
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == list(range(1, total + 1)), "expected one train record per step"
    step_s = [gb / r["samples_per_s"] for r in train]  # the recipe logs per_step / step wall time
    timed = step_s[warmup:]
    toks = step_tokens(root, config, gb, total)[warmup:]
    stats = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(stats_dir.glob("rank*.json"))]
    mean = statistics.fmean(timed)
    row.update({
        "step_ms": mean * 1000,
        "step_ms_sd": statistics.stdev(timed) * 1000 if len(timed) > 1 else 0.0,
        "warmup_step_ms": [s * 1000 for s in step_s[:warmup]],
        "samples_per_s": gb / mean,
        "tokens_per_sample": sum(toks) / (len(toks) * gb),
        "tokens_per_s": sum(toks) / sum(timed),
        "peak_rss_mb": max(s["maxrss_mb"] for s in stats),
        "rss_per_rank_mb": [round(s["maxrss_mb"]) for s in stats],
        "ranks_reported": len(stats),
        "torch_threads": [s["threads"] for s in stats],
        "loss_first": train[0]["loss"],
        "loss_last": train[-1]["loss"],
        "startup_and_checkpoint_s": wall - sum(step_s),
    })
    cuda = [s for s in stats if "cuda_max_allocated_gib" in s]
    if cuda:
        row["peak_gpu_gib"] = max(s["cuda_max_allocated_gib"] for s in cuda)
        row["peak_gpu_reserved_gib"] = max(s["cuda_max_reserved_gib"] for s in cuda)
        row["gpu"] = cuda[0]["gpu"]
    if not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return row


# ------------------------------------------------------------------------------------------ report
def table(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    import torch

    gpu = any("peak_gpu_gib" in r for r in rows)
    cores = os.cpu_count()
    lines = [
        f"`emollama train` loop, torch {torch.__version__}, {cores} CPU cores, device {args.device}"
        + (f" ({next(r['gpu'] for r in rows if 'gpu' in r)})" if gpu else "")
        + f", precision {args.precision}; {args.clips} synthetic clips, tasks {'+'.join(TASKS)}, "
        "validation none, no mid-run checkpoints.",
        "",
        "| config | processes × threads | global batch | steps | samples/s | step ms | tokens/sample | tokens/s "
        "| peak RSS MB |" + (" peak GPU GiB |" if gpu else "") + " wall s | other load |",
        "|---|---|---|---|---|---|---|---|---|" + ("---|" if gpu else "") + "---|---|",
    ]
    for r in rows:
        if not r["ok"]:
            lines.append(f"| {r['config']} | {r['processes']} × {r['threads']} | {r['global_batch']} "
                         f"| {r['warmup']} + {r['steps']} | failed | | | | |"
                         + (" |" if gpu else "") + f" {r['wall_s']:.0f} | {r['other_load']:.1f} |")
            continue
        lines.append(
            f"| {r['config']} | {r['processes']} × {r['threads']} | {r['global_batch']} | {r['warmup']} + {r['steps']} "
            f"| {r['samples_per_s']:.2f} "
            f"| {r['step_ms']:.0f} ± {r['step_ms_sd']:.0f} | {r['tokens_per_sample']:.0f} | {r['tokens_per_s']:.0f} "
            f"| {r['peak_rss_mb']:.0f} |" + (f" {r.get('peak_gpu_gib', float('nan')):.1f} |" if gpu else "")
            + f" {r['wall_s']:.0f} | {r['other_load']:.1f} |"
        )
    lines += [
        "",
        "Steps: warm-up + timed optimizer steps; step ms is the mean (± sd) of the timed ones, samples/s = "
        "global batch / mean step time. Tokens are the LM's real tokens per sample, media slots included "
        "(256 video + 4 feature slots for the official shapes, 4 + 4 for tiny), padding not counted. The "
        "epoch-end checkpoint and start-up are excluded from the step times, included in wall s and peak "
        "memory. Peak RSS is the largest single training process. Other load: CPU cores that other processes "
        "on the machine kept busy during the run (from /proc/stat); well above 0 means the row's CPU timings "
        "are skewed (a process's threads wait for a core).",
    ]
    if args.device == "cpu" and any(r["processes"] > 1 for r in rows):
        lines.append(f"Multi-process rows share the same {cores} cores as the 1-process rows (threads per "
                     "process = cores / processes): the processes compete with each other for the cores and "
                     "add a gloo all-reduce, so they show DDP overhead on one machine, not a speed-up.")
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", action="append", help="config name in emollama/model/configs (repeatable; "
                    "default: tiny and 100m-random)")
    ap.add_argument("--processes", type=int, action="append", help="processes per run (repeatable; default: 1 and 2)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--precision", choices=("no", "bf16", "fp16"), default="no",
                    help="TrainConfig.precision (Accelerate autocast; bf16 also works on CPU, fp16 needs a GPU)")
    ap.add_argument("--global-batch", type=int, default=None, help="samples per optimizer step over all processes "
                    f"(default per config: {', '.join(f'{k} {v[0]}' for k, v in DEFAULTS.items())})")
    ap.add_argument("--warmup", type=int, default=None, help="first steps left out of the timing")
    ap.add_argument("--steps", type=int, default=None, help="timed optimizer steps (after the warm-up)")
    ap.add_argument("--clips", type=int, default=16, help="clips in the synthetic feature store")
    ap.add_argument("--threads", type=int, default=None, help="threads per process (default: cores / processes)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds allowed per run")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the workspaces here (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the run folders")
    ap.add_argument("--out", type=Path, default=None, help="also write the Markdown table to this file")
    ap.add_argument("--json", type=Path, default=None, help="also write the raw rows as JSON to this file")
    args = ap.parse_args()
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: no CUDA device is visible")
        if max(args.processes or [1, 2]) > torch.cuda.device_count():
            raise SystemExit(f"--device cuda: {torch.cuda.device_count()} GPU(s) visible, fewer than the processes "
                             "asked for (give --processes 1)")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_train_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        rows = [bench(c, n, args, work) for c in (args.config or ["tiny", "100m-random"])
                for n in (args.processes or [1, 2])]
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    text = table(rows, args)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    if not all(r["ok"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
