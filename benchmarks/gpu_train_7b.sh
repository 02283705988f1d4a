#!/usr/bin/env bash
# The 7B-shaped `emollama train` benchmark on ONE GPU (H100 / H200), prepared to run as-is:
#
#   bash benchmarks/gpu_train_7b.sh            # from anywhere; results in $OUT (or /tmp/bench_train_7b)
#
# What it runs: benchmarks/bench_train.py with emollama/model/configs/7b-random.yaml (LLaMA-2-7B shapes, random
# bf16 weights, nothing downloaded; official media shapes: 256 EVA tokens + 4 feature tokens), the real
# recipe (CoarseToFineRecipe through `emollama train`), TrainConfig.precision=bf16, 1 process, global
# batch 1, 2 warm-up + 8 timed optimizer steps, validation none, no mid-run checkpoints. It reports the
# mean step time, samples/s, tokens/s, peak GPU memory (torch.cuda.max_memory_allocated of the training
# process) and peak host RSS. Expected wall time: 2-5 minutes (most of it is building the random 7B LM
# on the CPU, which the recipe does before moving it to the GPU, and the epoch-end checkpoint); the run
# is killed after 420 s so the script ends within ~8 minutes.
#
# Needs: the repository checkout with a venv at .venv holding a CUDA build of torch (or one that
# `make install` can create offline); no network. Writes to $OUT: bench_train_7b.md (the table),
# bench_train_7b.json (raw numbers, per-step warm-up times, losses), nvidia-smi.txt, and the run's
# metrics.jsonl and log.
#
# Dry run of the same path on a CPU-only machine (tiny config, CPU bf16 autocast, ~30 s):
#   CONFIG=tiny DEVICE=cpu bash benchmarks/gpu_train_7b.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/bench_train_7b}
WORK=${WORK:-/tmp/bench_train_7b_work}
PY=${PYTHON:-.venv/bin/python}
CONFIG=${CONFIG:-7b-random}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"

if [ ! -x "$PY" ]; then
  echo "no $PY: trying make install (offline)" >&2
  make install
fi
if [ "$DEVICE" = cuda ]; then
  nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || echo "nvidia-smi failed" >> "$OUT/nvidia-smi.txt"
  "$PY" -c '
import sys, torch
print(f"torch {torch.__version__}, cuda {torch.version.cuda}, available {torch.cuda.is_available()}")
if not torch.cuda.is_available():
    sys.exit("this torch cannot use the GPU (a CPU build, or no driver): install a CUDA build into .venv")
p = torch.cuda.get_device_properties(0)
print(f"{p.name}, {p.total_memory / 2**30:.0f} GiB")
'
fi

rm -rf "$WORK"
status=0
timeout 450 "$PY" benchmarks/bench_train.py --config "$CONFIG" --device "$DEVICE" --precision bf16 \
  --processes 1 --global-batch 1 --warmup 2 --steps 8 --clips 8 --timeout 420 \
  --workdir "$WORK" --keep --out "$OUT/bench_train_7b.md" --json "$OUT/bench_train_7b.json" || status=$?

# The run's own records, small enough to bring back (the checkpoints stay in $WORK).
cp "$WORK/$CONFIG/run-1p-bf16/metrics.jsonl" "$OUT/metrics.jsonl" 2>/dev/null || true
cp "$WORK/$CONFIG/log-1p-bf16.txt" "$OUT/log.txt" 2>/dev/null || true
echo "exit status $status; results in $OUT" >&2
exit $status
