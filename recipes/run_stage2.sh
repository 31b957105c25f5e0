#!/usr/bin/env bash
# Stage 2 of ReVisual-R1: multimodal RL. GRPO + Prioritized Advantage Distillation + the `revisual`
# reward (accuracy and efficient length), images in the prompt, no KL term; Table-5 settings.
#
#   MODEL_PATH=outputs/revisual/stage1/hf bash recipes/run_stage2.sh [hydra overrides...]
#   DRY_RUN=1 bash recipes/run_stage2.sh          # validate against the installed verl, no GPU
#
# Extra arguments are Hydra overrides of revisual_ppo (verl's ppo_trainer + the plugin's keys).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

STAGE_DIR=${STAGE_DIR:-$OUTPUT_DIR/stage2}

rv_check_model
TRAIN_FILES=$(rv_data_files "$MMRL_DIR" train required)
VAL_FILES=$(rv_data_files "$MMRL_DIR" val required)
rv_check_gpus
rv_rl_args "$TRAIN_FILES" "$VAL_FILES" "$STAGE_DIR" stage2

# Settings of the `revisual` reward manager (revisual_verl/reward/settings.py). `++` adds the key
# whether or not the config already declares it.
# length_budget follows data.max_response_length (8192), also when that is overridden.
# shellcheck disable=SC2016  # ${...} below is a Hydra interpolation, not a shell one
REWARD_ARGS=(
  '++reward.reward_kwargs.length_budget=${data.max_response_length}'
)

# >>> ENGINE_ARGS: the revisual engine vendor (docs/engine.md). It carries the fix for verl 0.9.1's
# Qwen2-VL forward on micro-batches without images (docs/transformers_compat.md), harmless on image
# batches. Entropy annealing is off by default (the paper anneals in stage 3; the authors' scripts also
# here): STAGE2_ENTROPY_ANNEALING=1 turns on Table 5's schedule.
RAY_ENV=++ray_kwargs.ray_init.runtime_env.env_vars
ENGINE_ARGS=("$RAY_ENV.VERL_ENGINE_VENDOR=\"revisual\"")
if [[ "${STAGE2_ENTROPY_ANNEALING:-0}" == 1 ]]; then
  ENGINE_ARGS+=("$RAY_ENV.REVISUAL_ENTROPY_SCHEDULE=\"exponential\"")
fi
# <<< ENGINE_ARGS

STAGE_ARGS=(
  actor_rollout_ref.actor.use_kl_loss=False
)

RV_REQUIRE_IMAGES=1 rv_run 2 "$PYTHON" -m revisual_verl.main_ppo \
  "${RV_RL_ARGS[@]}" "${STAGE_ARGS[@]}" "${REWARD_ARGS[@]}" "${ENGINE_ARGS[@]}" "$@"
