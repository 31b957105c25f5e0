#!/usr/bin/env bash
# The README's first command. Without GPUs it is the learning run (recipes/learning_run.sh): a synthetic
# task a tiny model can learn, all three stages through verl's real trainers on the CPU, held-out accuracy
# of every stage's model. QUICKSTART_PROFILE=smoke (or GPUs) instead prepares the bundled sample data
# (examples/data/raw) with `revisual-data prepare` and runs all three stages over it with run_all.sh.
#
#   bash recipes/quickstart.sh                                   # no GPU: the CPU learning run
#   QUICKSTART_PROFILE=smoke bash recipes/quickstart.sh          # no GPU: 2 steps per stage on the samples
#   bash recipes/quickstart.sh                                   # GPUs, no MODEL_PATH: the tiny model through
#                                                                # vLLM, FSDP2 and bf16, 2 steps a stage
#   MODEL_PATH=/models/Qwen2.5-VL-7B-Instruct bash recipes/quickstart.sh   # GPUs: a short real run
#   DRY_RUN=1 bash recipes/quickstart.sh                         # compose and validate only, train nothing
#
# Without GPUs it is the CPU mode (DEVICE=cpu, docs/cpu.md): a tiny Qwen2.5-VL is built locally (random
# weights, real tokenizer and processor; MODEL_PATH overrides it) and trained through verl's real
# trainers: stage 1 SFT, merge, stage 2 GRPO + PAD on the image samples, merge, stage 3 on the text
# samples (vision tower frozen, entropy annealing, low_var_kl), merge; then one table per stage.
# With GPUs and no MODEL_PATH the same tiny model trains on the samples through the GPU path (vLLM rollout,
# FSDP2, bf16, one GPU, 2 steps a stage): the first GPU run takes minutes and downloads nothing. With GPUs
# and MODEL_PATH it trains for real, with batch sizes cut to fit the 16-row samples (a smoke run of the
# recipe, not the paper's settings). DRY_RUN=1 validates every stage instead.
# Everything is written under WORK_DIR (default outputs/quickstart). Extra arguments go to run_all.sh.
set -euo pipefail
RECIPES=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$RECIPES")
: "${WORK_DIR:=$ROOT/outputs/quickstart}"
: "${SAMPLES_DIR:=$ROOT/examples/data/raw}"
: "${NVIDIA_SMI:=nvidia-smi}"
: "${DATA_CLI:=revisual-data}"
: "${PYTHON:=python}"

log() { printf '[quickstart] %s\n' "$*" >&2; }

gpus=0
if command -v "$NVIDIA_SMI" >/dev/null 2>&1; then
  gpus=$("$NVIDIA_SMI" -L 2>/dev/null | grep -c '^GPU ' || true)
fi
if [[ -z "${DEVICE:-}" ]]; then
  if ((gpus > 0)); then DEVICE=gpu; else DEVICE=cpu; fi
fi
if [[ "${DRY_RUN:-}" == 1 ]]; then
  log "DRY_RUN=1 (DEVICE=$DEVICE): compose and validate every stage, train nothing"
elif [[ -z "${DRY_RUN:-}" ]]; then
  if [[ "$DEVICE" == cpu ]]; then
    DRY_RUN=0
    log "no GPU (or DEVICE=cpu): training all three stages on the CPU with a tiny model (DRY_RUN=1 to only validate)"
  elif [[ -n "${MODEL_PATH:-}" ]]; then
    DRY_RUN=0
    log "$gpus GPU(s) and MODEL_PATH=$MODEL_PATH: training on the sample data"
  else
    DRY_RUN=0
    log "$gpus GPU(s), no MODEL_PATH: a smoke run of a tiny model through vLLM, FSDP2 and bf16 on one GPU, 2 steps a stage (MODEL_PATH=... trains a real model)"
  fi
fi
# The tiny model stands in wherever no model is named (a dry run checks that it loads, too).
TINY_MODEL=0
if [[ -z "${MODEL_PATH:-}" ]]; then
  TINY_MODEL=1
fi
export DRY_RUN DEVICE
: "${QUICKSTART_PROFILE:=learn}"
[[ "$QUICKSTART_PROFILE" == learn || "$QUICKSTART_PROFILE" == smoke ]] ||
  { log "ERROR: QUICKSTART_PROFILE must be learn or smoke, got '$QUICKSTART_PROFILE'"; exit 2; }
if [[ "$DEVICE" == cpu && "$DRY_RUN" == 0 && -z "${MODEL_PATH:-}" && "$QUICKSTART_PROFILE" == learn ]]; then
  WORK_DIR=$WORK_DIR PYTHON=$PYTHON DATA_CLI=$DATA_CLI exec bash "$RECIPES/learning_run.sh" "$@"
fi

command -v "$DATA_CLI" >/dev/null 2>&1 ||
  { log "ERROR: $DATA_CLI not found; install the plugin first: pip install -e ."; exit 2; }

DATA_DIR=$WORK_DIR/data
for part in coldstart:coldstart.json mmrl:mmrl.parquet textrl:textrl.parquet; do
  name=${part%%:*}
  input=$SAMPLES_DIR/${part#*:}
  [[ -f "$input" ]] || { log "ERROR: sample file $input is missing"; exit 2; }
  log "preparing $name from $input"
  # Two validation rows, so that the rest is enough for a training batch.
  "$DATA_CLI" prepare "$name" --input "$input" --output "$DATA_DIR/$name" --val-size 2 --no-progress
done

build_tiny_model() {
  MODEL_PATH=$WORK_DIR/tiny-qwen2.5-vl
  if [[ ! -f "$MODEL_PATH/config.json" ]]; then
    log "building a tiny Qwen2.5-VL in $MODEL_PATH (random weights, no download)"
    "$PYTHON" -m revisual_verl.cpu.tiny_model --output "$MODEL_PATH" >&2
  fi
  export MODEL_PATH
}

if [[ "$DEVICE" == cpu || "$TINY_MODEL" == 1 ]]; then
  # Sized for a 2-core machine (or one GPU): one SFT epoch of 2-sequence steps, then 2 RL steps of 4 prompts
  # x 4 rollouts per stage. Stage 3's entropy warm-up is cut to 1 update so that the annealed coefficient
  # acts within 2 steps. On GPUs the stage configs' device group (config/device/gpu.yaml) applies: vLLM,
  # FSDP2, bf16, fused kernels.
  if [[ "$TINY_MODEL" == 1 && ("$DRY_RUN" == 0 || "$DEVICE" == gpu) ]]; then
    build_tiny_model
  fi
  export NNODES=1 GPUS_PER_NODE=1 SFT_MICRO_BATCH=2 SFT_GRAD_ACCUM=1 SFT_MAX_LENGTH=1024
  if [[ "$DEVICE" == gpu ]]; then
    # One GPU: the tiny model needs no tensor parallelism, and a small KV cache leaves room for FSDP.
    export ROLLOUT_TP=1 ROLLOUT_GPU_MEMORY=${ROLLOUT_GPU_MEMORY:-0.4}
  fi
  SMOKE_ARGS=(
    --stage1
    trainer.total_epochs=1
    optim.lr=1e-4
    "trainer.logger=[console,file]"
    --rl
    data.train_batch_size=4
    actor_rollout_ref.rollout.n=4
    actor_rollout_ref.actor.ppo_mini_batch_size=4
    data.max_prompt_length=1024
    data.max_response_length=48
    actor_rollout_ref.actor.optim.lr=1e-4
    trainer.total_training_steps=2
    trainer.save_freq=1
    trainer.test_freq=-1
    trainer.val_before_train=False
    "trainer.logger=[console,file]"
    --stage3
    actor_rollout_ref.actor.fsdp_config.entropy.warmup_updates=1
  )
else
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
fi

DATA_DIR=$DATA_DIR OUTPUT_DIR=$WORK_DIR/run bash "$RECIPES/run_all.sh" "${SMOKE_ARGS[@]}" "$@"
if [[ "$DRY_RUN" == 0 ]]; then
  report_args=(--run-dir "$WORK_DIR/run")
  if [[ "$DEVICE" == cpu || "$TINY_MODEL" == 1 ]]; then
    report_args+=(--entropy-warmup-updates 1)
  fi
  "$PYTHON" -m revisual_verl.cpu.report "${report_args[@]}"
fi
