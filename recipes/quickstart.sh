#!/usr/bin/env bash
# The README's first command: prepare the bundled sample data (examples/data/raw) with
# `revisual-data prepare`, then run all three stages over it with run_all.sh.
#
#   bash recipes/quickstart.sh                                   # no GPU: dry run of stages 1-3
#   MODEL_PATH=/models/Qwen2.5-VL-7B-Instruct bash recipes/quickstart.sh   # GPUs: a short real run
#
# Without GPUs (or without MODEL_PATH) it is a dry run: every stage's config is composed and
# validated against the installed verl, and the commands are printed. With GPUs and MODEL_PATH it
# trains for real, with batch sizes cut to fit the 16-row samples (a smoke run of the recipe, not
# the paper's settings). DRY_RUN=0/1 forces either. Extra arguments go to run_all.sh.
# Everything is written under WORK_DIR (default outputs/quickstart).
set -euo pipefail
RECIPES=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$RECIPES")
: "${WORK_DIR:=$ROOT/outputs/quickstart}"
: "${SAMPLES_DIR:=$ROOT/examples/data/raw}"
: "${NVIDIA_SMI:=nvidia-smi}"
: "${REVISUAL_DATA:=revisual-data}"

log() { printf '[quickstart] %s\n' "$*" >&2; }

if [[ -z "${DRY_RUN:-}" ]]; then
  gpus=0
  if command -v "$NVIDIA_SMI" >/dev/null 2>&1; then
    gpus=$("$NVIDIA_SMI" -L 2>/dev/null | grep -c '^GPU ' || true)
  fi
  if ((gpus > 0)) && [[ -n "${MODEL_PATH:-}" ]]; then
    DRY_RUN=0
    log "$gpus GPU(s) and MODEL_PATH=$MODEL_PATH: training on the sample data"
  else
    DRY_RUN=1
    if ((gpus > 0)); then
      log "GPUs found but MODEL_PATH is not set: dry run only"
    else
      log "no GPU found: dry run only (compose and validate every stage, print the commands)"
    fi
  fi
fi
export DRY_RUN

command -v "$REVISUAL_DATA" >/dev/null 2>&1 ||
  { log "ERROR: $REVISUAL_DATA not found; install the plugin first: pip install -e ."; exit 2; }

DATA_DIR=$WORK_DIR/data
for part in coldstart:coldstart.json mmrl:mmrl.parquet textrl:textrl.parquet; do
  name=${part%%:*}
  input=$SAMPLES_DIR/${part#*:}
  [[ -f "$input" ]] || { log "ERROR: sample file $input is missing"; exit 2; }
  log "preparing $name from $input"
  # Two validation rows, so that the rest is enough for a training batch.
  "$REVISUAL_DATA" prepare "$name" --input "$input" --output "$DATA_DIR/$name" --val-size 2 --no-progress
done

# Sized for 16-row samples: one SFT step with one sequence per GPU; RL batches of 4 prompts x 8 rollouts.
: "${NNODES:=1}"
: "${GPUS_PER_NODE:=8}"
export NNODES GPUS_PER_NODE
SMOKE_ARGS=(
  --stage1
  "data.train_batch_size=$((NNODES * GPUS_PER_NODE))"
  trainer.total_epochs=1
  --rl
  data.train_batch_size=4
  actor_rollout_ref.actor.ppo_mini_batch_size=4
  data.max_response_length=2048
  trainer.total_training_steps=2
  trainer.save_freq=1
  trainer.test_freq=-1
  trainer.val_before_train=False
)

DATA_DIR=$DATA_DIR OUTPUT_DIR=$WORK_DIR/run bash "$RECIPES/run_all.sh" "${SMOKE_ARGS[@]}" "$@"
