#!/usr/bin/env bash
# Stage 1 of ReVisual-R1: cold-start SFT on text-only long reasoning traces (verl's SFT trainer,
# MultiTurnSFTDataset over the `messages` column). Its settings (SPEC section 1) are the config
# revisual_verl/config/stage1_coldstart_sft.yaml; this script adds paths, names and cluster sizes.
#
#   MODEL_PATH=/models/Qwen2.5-VL-7B-Instruct bash recipes/run_stage1.sh [hydra overrides...]
#   DRY_RUN=1 bash recipes/run_stage1.sh          # validate against the installed verl, no GPU
#
# Extra arguments are Hydra overrides of that config (verl's sft_trainer_engine plus the stage's
# settings) and win over the defaults.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

STAGE_DIR=${STAGE_DIR:-$OUTPUT_DIR/stage1}
# Paper: gradient accumulation 8. verl has no accumulation key: its global batch is
# data.train_batch_size sequences, split over the data-parallel ranks into micro-batches of
# data.micro_batch_size_per_gpu, so accumulation = train_batch_size / (ranks * micro-batch).
SFT_MICRO_BATCH=${SFT_MICRO_BATCH:-1}
SFT_GRAD_ACCUM=${SFT_GRAD_ACCUM:-8}
SFT_MAX_LENGTH=${SFT_MAX_LENGTH:-32768}
rv_require_int SFT_MICRO_BATCH "$SFT_MICRO_BATCH"
rv_require_int SFT_GRAD_ACCUM "$SFT_GRAD_ACCUM"
rv_require_int SFT_MAX_LENGTH "$SFT_MAX_LENGTH"

rv_check_model
TRAIN_FILES=$(rv_data_files "$COLDSTART_DIR" train required)
VAL_FILES=$(rv_data_files "$COLDSTART_DIR" val optional)
rv_check_gpus

MODEL=$(rv_hydra_value "$MODEL_PATH")
PROJECT=$(rv_hydra_value "$PROJECT_NAME")
EXPERIMENT=$(rv_hydra_value "$EXPERIMENT_NAME-stage1")
CKPT_DIR=$(rv_hydra_value "$STAGE_DIR/checkpoints")

SFT_ARGS=(
  --config-name=stage1_coldstart_sft
  "data.train_files=$TRAIN_FILES"
  "data.val_files=$VAL_FILES"
  "data.max_length=$SFT_MAX_LENGTH"
  "data.micro_batch_size_per_gpu=$SFT_MICRO_BATCH"
  "data.train_batch_size=$((SFT_MICRO_BATCH * SFT_GRAD_ACCUM * NNODES * GPUS_PER_NODE))"
  "model.path=$MODEL"
  "trainer.nnodes=$NNODES"
  "trainer.n_gpus_per_node=$GPUS_PER_NODE"
  "trainer.project_name=$PROJECT"
  "trainer.experiment_name=$EXPERIMENT"
  "trainer.logger=[$LOGGER]"
  "trainer.default_local_dir=$CKPT_DIR"
)

# The revisual engine vendor carries the fix for verl 0.9.1's Qwen2-VL forward on batches without
# images, which is every stage-1 batch (docs/transformers_compat.md). verl reads it from the
# environment: torchrun's processes inherit it; the Ray entry point hands it to the job's workers.
export VERL_ENGINE_VENDOR=${VERL_ENGINE_VENDOR:-revisual}

if rv_is_cpu; then
  # verl's SFT trainer on a gloo group: one torchrun process (revisual_verl/cpu/sft.py), or with
  # SFT_LAUNCHER=ray on a Ray cluster (revisual_verl.sft_trainer_ray hands its workers the cpu platform);
  # its settings (fp32, sdpa) are the config group revisual_verl/config/sft_device/cpu.yaml.
  SFT_ARGS+=(sft_device=cpu)
  VERL_FILE_LOGGER_PATH=$(rv_metrics_file "$STAGE_DIR")
  export VERL_FILE_LOGGER_PATH
fi

case "$SFT_LAUNCHER" in
  torchrun)
    if ((NNODES == 1)); then
      LAUNCH=("$TORCHRUN" --standalone --nnodes=1 "--nproc_per_node=$GPUS_PER_NODE")
    else
      # A default of 127.0.0.1 would make every node wait for a rendezvous on itself.
      [[ -n "$MASTER_ADDR" ]] || rv_die "NNODES=$NNODES: stage 1 under torchrun needs MASTER_ADDR, the address of the node started with NODE_RANK=0, on every node (and MASTER_PORT, default 29500); or use SFT_LAUNCHER=ray on a Ray cluster"
      if ! [[ "$NODE_RANK" =~ ^[0-9]+$ ]] || ((NODE_RANK >= NNODES)); then
        rv_die "NODE_RANK must be 0..$((NNODES - 1)) (NNODES=$NNODES), got '$NODE_RANK'"
      fi
      LAUNCH=("$TORCHRUN" "--nnodes=$NNODES" "--nproc_per_node=$GPUS_PER_NODE" "--node_rank=$NODE_RANK"
        "--master_addr=$MASTER_ADDR" "--master_port=$MASTER_PORT")
    fi
    if rv_is_cpu; then
      LAUNCH+=(-m revisual_verl.cpu.sft)
    else
      LAUNCH+=(-m revisual_verl.sft_trainer)
    fi
    ;;
  ray) LAUNCH=("$PYTHON" -m revisual_verl.sft_trainer_ray) ;;
  *) rv_die "SFT_LAUNCHER must be torchrun or ray, got '$SFT_LAUNCHER'" ;;
esac

rv_run 1 "${LAUNCH[@]}" "${SFT_ARGS[@]}" "$@"
