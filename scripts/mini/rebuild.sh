#!/usr/bin/env bash
# Rebuild emotion-llama-mini from ../shared/data, start to finish, on CPU (about 2 hours on 2 cores).
#
#   scripts/mini/rebuild.sh WORK_DIR [DATA_DIR]      # e.g. scripts/mini/rebuild.sh ../mini ../shared/data
#
# Every step is resumable: rerun the script after a kill and it goes on where it stopped
# (annotate and features skip finished clips, train resumes from its last checkpoint).
# The result is WORK_DIR/run/fine/best — copy it into emollama/assets/emotion_llama_mini/ with
#   python scripts/mini/ship.py WORK_DIR/run
set -euo pipefail
WORK=${1:?usage: rebuild.sh WORK_DIR [DATA_DIR]}
DATA=${2:-../shared/data}
BIN=${BIN:-.venv/bin}
export HF_HUB_OFFLINE=1
mkdir -p "$WORK"

# 1. Which clips train and which validate (dev parts only; a pure function of the arguments).
"$BIN/python" scripts/mini/select_data.py --data "$DATA" --out "$WORK"

# 2. MERR-style annotations with the ground-truth labels (clue descriptions, AU/label filter,
#    grounded reasoning for the clips the filter keeps). RAVDESS speech gets its transcript as the
#    subtitle; no ASR (the other corpora are German speech or silent images).
"$BIN/emollama" annotate "$WORK/media.csv" -o "$WORK/annotate" --label-set dfew7 \
    --subtitles "$WORK/subtitles.csv" --no-asr

# 3. Training files in the Emotion-LLaMA format: every clip in the coarse list (--keep-dropped),
#    only the clips the filter kept in the fine list (dropped clips have no reasoning).
"$BIN/emollama" export "$WORK/annotate" --format emotion-llama --keep-dropped --label-set dfew7 \
    --to "$WORK/export"

# 4. The mini's encoder features for every clip (the path `analyze --tier emotion-llama` runs).
"$BIN/emollama" features "$WORK/media.csv" -o "$WORK/features" --config emotion-llama-mini

# 5. The two stages.
"$BIN/emollama" train --config emotion-llama-mini --out "$WORK/run" \
    --set data.features="$WORK/features" \
    --set validation.names_file="$WORK/validation.txt" \
    --set stages.coarse.annotations="$WORK/export/MERR_coarse_grained.txt" \
    --set stages.fine.annotations="$WORK/export/MERR_fine_grained.txt"
