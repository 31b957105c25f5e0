#!/usr/bin/env bash
# The whole ReVisual-R1 recipe: stage 1 (cold-start SFT) -> 2 (multimodal RL) -> 3 (text RL). After
# each stage its last checkpoint is merged to Hugging Face format in $OUTPUT_DIR/stageK/hf, and that
# directory is the next stage's MODEL_PATH.
#
#   MODEL_PATH=/models/Qwen2.5-VL-7B-Instruct DATA_DIR=data bash recipes/run_all.sh \
#       [--stage1 OVERRIDES...] [--stage2 OVERRIDES...] [--stage3 OVERRIDES...] [--rl OVERRIDES...] [--all OVERRIDES...]
#   DRY_RUN=1 bash recipes/run_all.sh              # validate all three stages, no GPU, no model
#
# Hydra overrides go to the stages named by the flag before them (--rl: stages 2 and 3, --all: every
# stage); stage 1 is verl's SFT config and stages 2-3 are revisual_ppo, so most keys fit only one.
#
# Resume and overwrite rules (docs/recipes.md):
#   - a stage whose $OUTPUT_DIR/stageK/hf loads (config, tokenizer and, for a vision-language model,
#     the processor: python -m revisual_verl.recipes.merged_model) is finished: it is skipped, never
#     re-run or replaced; an hf/ that does not load stops the run with the reason;
#   - a merge writes to stageK/hf.partial and renames it to stageK/hf only when it succeeded and the
#     result loads, so hf/ is never half-written; a leftover hf.partial is discarded and the merge redone;
#   - a stage with checkpoints but no hf/ was interrupted: the run stops unless RESUME=1, which
#     continues that stage from its last checkpoint (verl's trainer.resume_mode=auto) and then merges,
#     or RESUME=merge, which merges its last checkpoint without training (training had finished and
#     only the merge failed);
#   - a stage cannot run while a later stage already has outputs (they were built from another model).
# STAGES="2 3" runs a subset; the first stage listed starts from MODEL_PATH.
# STAGE_LOGS=1: each stage's whole output (verl, Ray, the merge) goes to $OUTPUT_DIR/stageK/train.log; the
# terminal gets a line when a stage starts and ends, a progress line every PROGRESS_EVERY steps (default 5;
# PROGRESS_EVERY_STAGEK for stage K alone) and at every validation, and the log's last lines if it fails.
set -euo pipefail
RECIPES=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$RECIPES/common.sh"

: "${STAGES:=1 2 3}"
: "${RESUME:=0}"
: "${STAGE_LOGS:=0}"
: "${PROGRESS_EVERY:=5}"
[[ "$STAGE_LOGS" == 0 || "$STAGE_LOGS" == 1 ]] || rv_die "STAGE_LOGS must be 0 or 1, got '$STAGE_LOGS'"
[[ "$PROGRESS_EVERY" =~ ^[1-9][0-9]*$ ]] || rv_die "PROGRESS_EVERY must be a positive integer, got '$PROGRESS_EVERY'"
[[ "$RESUME" == 0 || "$RESUME" == 1 || "$RESUME" == merge ]] || rv_die "RESUME must be 0, 1 or merge, got '$RESUME'"

STAGE1_ARGS=()
STAGE2_ARGS=()
STAGE3_ARGS=()
targets=""
for arg in "$@"; do
  case "$arg" in
    --stage1) targets="1" ;;
    --stage2) targets="2" ;;
    --stage3) targets="3" ;;
    --rl) targets="2 3" ;;
    --all) targets="1 2 3" ;;
    -h | --help)
      sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
      exit 0
      ;;
    *)
      [[ -n "$targets" ]] || rv_die "override '$arg' comes before any --stage1/--stage2/--stage3/--rl/--all flag: say which stage(s) it is for"
      for target in $targets; do
        case "$target" in
          1) STAGE1_ARGS+=("$arg") ;;
          2) STAGE2_ARGS+=("$arg") ;;
          3) STAGE3_ARGS+=("$arg") ;;
        esac
      done
      ;;
  esac
done

read -r -a STAGE_LIST <<<"$STAGES"
((${#STAGE_LIST[@]} > 0)) || rv_die "STAGES is empty"
previous=0
for stage in "${STAGE_LIST[@]}"; do
  [[ "$stage" =~ ^[123]$ ]] || rv_die "STAGES must list stages 1, 2, 3; got '$STAGES'"
  ((stage > previous)) || rv_die "STAGES must be in increasing order without repeats; got '$STAGES'"
  previous=$stage
done

stage_dir() { printf '%s/stage%s' "$OUTPUT_DIR" "$1"; }
stage_data_dir() {
  case "$1" in
    1) printf '%s' "$COLDSTART_DIR" ;;
    2) printf '%s' "$MMRL_DIR" ;;
    3) printf '%s' "$TEXTRL_DIR" ;;
  esac
}

has_checkpoints() {
  compgen -G "$1/checkpoints/global_step_*" >/dev/null
}

# The directory of the stage's last checkpoint that model_merger reads: verl's tracker file names the
# last complete save; without it, the highest global_step_N. PPO keeps the policy in .../actor.
last_checkpoint() {
  local ckpts=$1/checkpoints step="" dir best=-1 n
  if [[ -f "$ckpts/latest_checkpointed_iteration.txt" ]]; then
    step=$(tr -d '[:space:]' <"$ckpts/latest_checkpointed_iteration.txt")
    [[ "$step" =~ ^[0-9]+$ ]] || rv_die "$ckpts/latest_checkpointed_iteration.txt holds '$step', not a step number"
  else
    for dir in "$ckpts"/global_step_*; do
      n=${dir##*/global_step_}
      if [[ -d "$dir" && "$n" =~ ^[0-9]+$ ]] && ((n > best)); then
        best=$n
      fi
    done
    ((best >= 0)) || return 1
    step=$best
  fi
  dir=$ckpts/global_step_$step
  [[ -d "$dir" ]] || rv_die "$ckpts names step $step as the last checkpoint, but $dir does not exist"
  if [[ -d "$dir/actor" ]]; then
    dir=$dir/actor
  fi
  printf '%s' "$dir"
}

merge_stage() {
  local stage=$1 dir ckpt
  dir=$(stage_dir "$stage")
  ckpt=$(last_checkpoint "$dir") || rv_die "stage $stage finished without a checkpoint in $dir/checkpoints; nothing to merge"
  rm -rf "$dir/hf.partial"
  rv_log "stage $stage: merging $ckpt -> $dir/hf"
  "$PYTHON" -m verl.model_merger merge --backend fsdp --local_dir "$ckpt" --target_dir "$dir/hf.partial"
  [[ -f "$dir/hf.partial/config.json" ]] || rv_die "stage $stage: the merge wrote no config.json to $dir/hf.partial"
  "$PYTHON" -m revisual_verl.recipes.merged_model "$dir/hf.partial" >&2 ||
    rv_die "stage $stage: the merged model in $dir/hf.partial does not load (see above), so the stage is not finished; fix the cause and rerun with RESUME=merge"
  mv "$dir/hf.partial" "$dir/hf"
}

# Whether stage $1 is finished: its merged hf/ exists and loads. An hf/ that exists but does not load
# stops the run: the next stage would fail on it late.
is_finished() {
  local stage=$1 dir
  dir=$(stage_dir "$stage")
  [[ -d "$dir/hf" ]] || return 1
  "$PYTHON" -m revisual_verl.recipes.merged_model "$dir/hf" >&2 ||
    rv_die "stage $stage: $dir/hf exists but does not load (see above), so the stage is not finished. Move $dir/hf away and rerun with RESUME=merge to merge its last checkpoint again"
}

# Why stage $1 must not run now, if it must not (prints the reason).
refusal() {
  local stage=$1 dir later
  dir=$(stage_dir "$stage")
  for later in $(seq $((stage + 1)) 3); do
    if [[ -d "$(stage_dir "$later")/hf" ]] || has_checkpoints "$(stage_dir "$later")"; then
      printf 'stage %s is not finished, but stage %s already has outputs in %s, built from another stage-%s model. Move %s away to redo the stages after %s' \
        "$stage" "$later" "$(stage_dir "$later")" "$stage" "$(stage_dir "$later")" "$((stage - 1))"
      return 0
    fi
  done
  if has_checkpoints "$dir" && [[ "$RESUME" == 0 ]]; then
    printf 'stage %s has checkpoints in %s/checkpoints but no merged model %s/hf: it was interrupted, or its merge failed. RESUME=1 continues training from the last checkpoint, RESUME=merge only merges it (when training had finished); to start over, move %s away' \
      "$stage" "$dir" "$dir" "$dir"
    return 0
  fi
  return 1
}

run_stage() {
  local stage=$1 model=$2
  local -n stage_args="STAGE${stage}_ARGS"
  MODEL_PATH=$model STAGE_DIR=$(stage_dir "$stage") bash "$RECIPES/run_stage$stage.sh" "${stage_args[@]}"
}

# Train stage $1 from model $2 (or only merge, with RESUME=merge and checkpoints), then merge it.
train_and_merge() {
  local stage=$1 model=$2
  if [[ "$RESUME" == merge ]] && has_checkpoints "$(stage_dir "$stage")"; then
    rv_log "stage $stage: RESUME=merge, merging its last checkpoint without training"
  else
    rv_log "stage $stage: training from $model"
    run_stage "$stage" "$model"
  fi
  merge_stage "$stage"
}

if rv_is_dry_run; then
  # Every listed stage is validated, each from the placeholder of the previous stage's merged model.
  model=$MODEL_PATH
  failed=()
  for stage in "${STAGE_LIST[@]}"; do
    dir=$(stage_dir "$stage")
    if is_finished "$stage"; then
      rv_log "dry run: stage $stage is finished ($dir/hf loads); a real run would skip it"
    elif reason=$(refusal "$stage"); then
      rv_log "dry run: a real run would stop at stage $stage: $reason"
    fi
    rv_log "dry run: stage $stage from MODEL_PATH=${model:-<placeholder>}"
    if ! run_stage "$stage" "$model"; then
      failed+=("$stage")
    fi
    model=$dir/hf
  done
  if ((${#failed[@]})); then
    rv_die "dry run failed for stage(s) ${failed[*]}"
  fi
  rv_log "dry run: stages ${STAGE_LIST[*]} compose and validate"
  exit 0
fi

# Fail before anything starts: every stage's data, the first stage's model, the GPUs.
for stage in "${STAGE_LIST[@]}"; do
  rv_data_files "$(stage_data_dir "$stage")" train required >/dev/null
done
if [[ "${STAGE_LIST[0]}" == 1 && "$NNODES" -gt 1 && "$SFT_LAUNCHER" == torchrun ]]; then
  rv_die "NNODES=$NNODES: stage 1's torchrun must be started on every node, which run_all.sh cannot do. Use SFT_LAUNCHER=ray (stage 1 on the Ray cluster), or run run_stage1.sh on each node and then STAGES=\"2 3\" MODEL_PATH=<merged stage-1 model> run_all.sh"
fi
if ! is_finished "${STAGE_LIST[0]}"; then
  rv_check_model
fi
rv_check_gpus

mkdir -p "$OUTPUT_DIR"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$OUTPUT_DIR/.run_all.lock"
  flock -n 9 || rv_die "another run_all.sh is working in $OUTPUT_DIR"
fi

model=$MODEL_PATH
for stage in "${STAGE_LIST[@]}"; do
  dir=$(stage_dir "$stage")
  if is_finished "$stage"; then
    rv_log "stage $stage: finished ($dir/hf loads), skipping"
    model=$dir/hf
    continue
  fi
  if reason=$(refusal "$stage"); then
    rv_die "refusing to continue: $reason"
  fi
  mkdir -p "$dir"
  # The model a stage trains from is recorded, so a resumed stage cannot silently switch inputs.
  if has_checkpoints "$dir" && [[ -f "$dir/input_model.txt" && "$(<"$dir/input_model.txt")" != "$model" ]]; then
    rv_die "stage $stage was started from $(<"$dir/input_model.txt"), not $model; move $dir away to start it over"
  fi
  printf '%s' "$model" >"$dir/input_model.txt"
  started=$SECONDS
  if [[ "$STAGE_LOGS" == 1 ]]; then
    rv_log "stage $stage: training from $model (full output: $dir/train.log)"
    every_var="PROGRESS_EVERY_STAGE$stage"
    every=${!every_var:-$PROGRESS_EVERY}
    [[ "$every" =~ ^[1-9][0-9]*$ ]] || rv_die "$every_var must be a positive integer, got '$every'"
    "$PYTHON" -m revisual_verl.run_report.progress --stage-dir "$dir" --label "stage $stage" \
      --every "$every" >&2 &
    watcher=$!
    # In the background and then waited for: a command whose status is tested (`cmd || ...`) runs with
    # errexit off inside, so a failing trainer would go on to merge its last checkpoint as if finished.
    (train_and_merge "$stage" "$model") >>"$dir/train.log" 2>&1 &
    trainer=$!
    status=0
    wait "$trainer" || status=$?
    kill "$watcher" 2>/dev/null || true
    wait "$watcher" 2>/dev/null || true
    if ((status != 0)); then
      printf '%s\n' "----- last lines of $dir/train.log -----" >&2
      tail -n 40 "$dir/train.log" >&2
      rv_die "stage $stage failed (exit $status); its full output is in $dir/train.log"
    fi
  else
    train_and_merge "$stage" "$model"
  fi
  elapsed=$((SECONDS - started))
  printf '%s\n' "$elapsed" >"$dir/seconds.txt"
  rv_log "stage $stage: done in $((elapsed / 60))m$((elapsed % 60))s, merged model in $dir/hf"
  model=$dir/hf
done
rv_log "done: the final model is $model"
