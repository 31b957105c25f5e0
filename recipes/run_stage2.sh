#!/usr/bin/env bash
# Stage 2 of ReVisual-R1: multimodal RL. GRPO + Prioritized Advantage Distillation + the `revisual`
# reward (accuracy and efficient length), images in the prompt, no KL term. Its settings (Table 5,
# PAD as released) are the config revisual_verl/config/stage2_multimodal_rl.yaml; this script adds
# paths, names and cluster sizes.
#
#   MODEL_PATH=outputs/revisual/stage1/hf bash recipes/run_stage2.sh [hydra overrides...]
#   DRY_RUN=1 bash recipes/run_stage2.sh          # validate against the installed verl, no GPU
#
# Extra arguments are Hydra overrides of that config (no "+" needed for any key it declares), e.g.
# actor_rollout_ref.actor.fsdp_config.entropy.schedule=exponential to anneal entropy here too.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

STAGE_DIR=${STAGE_DIR:-$OUTPUT_DIR/stage2}

rv_check_model
TRAIN_FILES=$(rv_data_files "$MMRL_DIR" train required)
VAL_FILES=$(rv_data_files "$MMRL_DIR" val required)
rv_check_gpus
rv_rl_args "$TRAIN_FILES" "$VAL_FILES" "$STAGE_DIR" stage2

RV_REQUIRE_IMAGES=1 rv_run 2 "$PYTHON" -m revisual_verl.main_ppo --config-name=stage2_multimodal_rl \
  "${RV_RL_ARGS[@]}" "$@"
