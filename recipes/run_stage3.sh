#!/usr/bin/env bash
# Stage 3 of ReVisual-R1: text-only RL. GRPO + Prioritized Advantage Distillation on text problems,
# vision tower frozen, low_var_kl 2e-3 as a loss, entropy annealing; otherwise as stage 2 (Table 5).
# Its settings are the config revisual_verl/config/stage3_text_rl.yaml; this script adds paths,
# names and cluster sizes.
#
#   MODEL_PATH=outputs/revisual/stage2/hf bash recipes/run_stage3.sh [hydra overrides...]
#   DRY_RUN=1 bash recipes/run_stage3.sh          # validate against the installed verl, no GPU
#
# Extra arguments are Hydra overrides of that config, e.g.
# actor_rollout_ref.actor.fsdp_config.entropy.warmup_updates=20 (optimizer updates).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

STAGE_DIR=${STAGE_DIR:-$OUTPUT_DIR/stage3}

rv_check_model
TRAIN_FILES=$(rv_data_files "$TEXTRL_DIR" train required)
VAL_FILES=$(rv_data_files "$TEXTRL_DIR" val required)
rv_check_gpus
rv_rl_args "$TRAIN_FILES" "$VAL_FILES" "$STAGE_DIR" stage3

rv_run 3 "$PYTHON" -m revisual_verl.main_ppo --config-name=stage3_text_rl "${RV_RL_ARGS[@]}" "$@"
