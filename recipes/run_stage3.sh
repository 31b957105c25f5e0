#!/usr/bin/env bash
# Stage 3 of ReVisual-R1: text-only RL. GRPO + Prioritized Advantage Distillation on text problems,
# vision tower frozen, low_var_kl 2e-3 as a loss, entropy annealing; otherwise as stage 2 (Table 5).
#
#   MODEL_PATH=outputs/revisual/stage2/hf bash recipes/run_stage3.sh [hydra overrides...]
#   DRY_RUN=1 bash recipes/run_stage3.sh          # validate against the installed verl, no GPU
#
# Extra arguments are Hydra overrides of revisual_ppo (verl's ppo_trainer + the plugin's keys).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

STAGE_DIR=${STAGE_DIR:-$OUTPUT_DIR/stage3}

rv_check_model
TRAIN_FILES=$(rv_data_files "$TEXTRL_DIR" train required)
VAL_FILES=$(rv_data_files "$TEXTRL_DIR" val required)
rv_check_gpus
rv_rl_args "$TRAIN_FILES" "$VAL_FILES" "$STAGE_DIR" stage3

# Settings of the `revisual` reward manager (revisual_verl/reward/settings.py), as in stage 2.
# length_budget follows data.max_response_length (8192), also when that is overridden.
# shellcheck disable=SC2016  # ${...} below is a Hydra interpolation, not a shell one
REWARD_ARGS=(
  '++reward.reward_kwargs.length_budget=${data.max_response_length}'
)

# >>> ENGINE_ARGS: vision-tower freezing + entropy annealing (Table 5: beta_0 0.02, beta_min 0,
# lambda 0.985, warm-up 140 updates). Filled by revisual_verl/engine (see docs/engine.md).
RAY_ENV=++ray_kwargs.ray_init.runtime_env.env_vars
ENGINE_ARGS=(
  actor_rollout_ref.actor.freeze_vision_tower=True
  "$RAY_ENV.VERL_ENGINE_VENDOR=\"revisual\""
  "$RAY_ENV.REVISUAL_FREEZE_VISION_TOWER=\"1\""
  "$RAY_ENV.REVISUAL_ENTROPY_SCHEDULE=\"exponential\""
  "$RAY_ENV.REVISUAL_ENTROPY_BETA0=\"0.02\""
  "$RAY_ENV.REVISUAL_ENTROPY_BETA_MIN=\"0.0\""
  "$RAY_ENV.REVISUAL_ENTROPY_DECAY=\"0.985\""
  "$RAY_ENV.REVISUAL_ENTROPY_WARMUP_UPDATES=\"140\""
)
# <<< ENGINE_ARGS

STAGE_ARGS=(
  actor_rollout_ref.actor.use_kl_loss=True
  actor_rollout_ref.actor.kl_loss_type=low_var_kl
  actor_rollout_ref.actor.kl_loss_coef=2e-3
)

rv_run 3 "$PYTHON" -m revisual_verl.main_ppo \
  "${RV_RL_ARGS[@]}" "${STAGE_ARGS[@]}" "${REWARD_ARGS[@]}" "${ENGINE_ARGS[@]}" "$@"
