# shellcheck shell=bash
# Settings and checks shared by the ReVisual-R1 recipes; sourced by run_stage{1,2,3}.sh and run_all.sh.
# Every setting is an environment variable with a default (docs/recipes.md lists them all).

# Command substitutions stop on the first failing command too, like the scripts around them.
shopt -s inherit_errexit

# --- where things are ---------------------------------------------------------------------------------
# MODEL_PATH: Hugging Face model directory the stage starts from (Qwen2.5-VL-7B-Instruct for stage 1).
: "${MODEL_PATH:=}"
# DATA_DIR: output of `revisual-data prepare`, one folder per part: coldstart/, mmrl/, textrl/.
: "${DATA_DIR:=$PWD/data}"
: "${COLDSTART_DIR:=$DATA_DIR/coldstart}"
: "${MMRL_DIR:=$DATA_DIR/mmrl}"
: "${TEXTRL_DIR:=$DATA_DIR/textrl}"
# OUTPUT_DIR: stage K writes checkpoints to $OUTPUT_DIR/stageK/checkpoints (run_all.sh merges to .../hf).
: "${OUTPUT_DIR:=$PWD/outputs/revisual}"

# --- cluster --------------------------------------------------------------------------------------------
# DEVICE=cpu: the CPU mode (docs/cpu.md). verl's real trainers on a machine without GPUs: the `cpu`
# platform (verl's VERL_PLATFORM), the `hf` rollout, FSDP2 on gloo, one worker per stage.
: "${DEVICE:=gpu}"
if [[ "$DEVICE" == cpu ]]; then
  : "${NNODES:=1}"
  : "${GPUS_PER_NODE:=1}"
  : "${ROLLOUT_ENGINE:=hf}"
  : "${ROLLOUT_TP:=1}"
  # verl itself reads these two from the environment, in every process it starts.
  export VERL_PLATFORM=cpu
  export VERL_ENGINE_VENDOR=${VERL_ENGINE_VENDOR:-revisual}
  export TOKENIZERS_PARALLELISM=${TOKENIZERS_PARALLELISM:-false}
fi
: "${NNODES:=1}"
: "${GPUS_PER_NODE:=8}"
# Stage 1 (torchrun) on several nodes: run it on every node with its NODE_RANK.
: "${NODE_RANK:=0}"
# No default: on several nodes every node must name the NODE_RANK=0 node (run_stage1.sh refuses without it).
: "${MASTER_ADDR:=}"
: "${MASTER_PORT:=29500}"
# torchrun (one launch per node) or ray (verl.trainer.sft_trainer_ray, driven from the Ray head node).
: "${SFT_LAUNCHER:=torchrun}"

# --- rollout and logging --------------------------------------------------------------------------------
: "${ROLLOUT_ENGINE:=vllm}"
: "${ROLLOUT_TP:=2}"
: "${ROLLOUT_GPU_MEMORY:=0.6}"
: "${PROJECT_NAME:=revisual-r1}"
: "${EXPERIMENT_NAME:=revisual}"
# Comma-separated verl loggers, e.g. console,wandb.
: "${LOGGER:=console}"

# --- run control ----------------------------------------------------------------------------------------
# DRY_RUN=1: compose and validate the config with the installed verl, print the command, train nothing.
: "${DRY_RUN:=0}"
# SKIP_GPU_CHECK=1: do not ask nvidia-smi (non-NVIDIA accelerators).
: "${SKIP_GPU_CHECK:=0}"
: "${NVIDIA_SMI:=nvidia-smi}"
: "${PYTHON:=python}"
: "${TORCHRUN:=torchrun}"

# A dry run without MODEL_PATH composes against this path; it need not exist (nothing is loaded).
RV_PLACEHOLDER_MODEL=/dry-run/placeholder-model

rv_log() {
  printf '[revisual] %s\n' "$*" >&2
}

rv_die() {
  printf '[revisual] ERROR: %s\n' "$*" >&2
  exit 2
}

rv_is_dry_run() {
  [[ "$DRY_RUN" == 1 ]]
}

rv_is_cpu() {
  [[ "$DEVICE" == cpu ]]
}

rv_require_int() {
  local name=$1 value=$2
  [[ "$value" =~ ^[1-9][0-9]*$ ]] || rv_die "$name must be a positive integer, got '$value'"
}

rv_check_settings() {
  [[ "$DRY_RUN" == 0 || "$DRY_RUN" == 1 ]] || rv_die "DRY_RUN must be 0 or 1, got '$DRY_RUN'"
  [[ "$DEVICE" == gpu || "$DEVICE" == cpu ]] || rv_die "DEVICE must be gpu or cpu, got '$DEVICE'"
  if rv_is_cpu; then
    ((NNODES == 1 && GPUS_PER_NODE == 1)) || rv_die "DEVICE=cpu runs one worker on one node: NNODES and GPUS_PER_NODE must be 1"
    [[ "$ROLLOUT_ENGINE" == hf ]] || rv_die "DEVICE=cpu generates with the hf rollout; ROLLOUT_ENGINE=$ROLLOUT_ENGINE needs GPUs"
    [[ "$ROLLOUT_TP" == 1 ]] || rv_die "DEVICE=cpu runs the hf rollout in one process: ROLLOUT_TP must be 1, got '$ROLLOUT_TP'"
  fi
  rv_require_int NNODES "$NNODES"
  rv_require_int GPUS_PER_NODE "$GPUS_PER_NODE"
  rv_require_int ROLLOUT_TP "$ROLLOUT_TP"
  [[ "$LOGGER" =~ ^[A-Za-z0-9_]+(,[A-Za-z0-9_]+)*$ ]] || rv_die "LOGGER must be comma-separated names, got '$LOGGER'"
}

# A value for a Hydra override: left bare when it is plainly safe, single-quoted otherwise.
# Characters Hydra would read as escapes or interpolations inside quotes are refused outright.
rv_hydra_value() {
  local value=$1
  if [[ "$value" =~ ^[A-Za-z0-9_./@+:-]+$ ]]; then
    printf '%s' "$value"
  elif [[ "$value" == *[\'\\\$]* || "$value" == *$'\n'* ]]; then
    rv_die "cannot pass '$value' to Hydra: quotes, backslashes, '\$' and newlines are not supported in paths"
  else
    printf "'%s'" "$value"
  fi
}

# The Hydra value of a split of a prepared data folder: DIR/SPLIT.parquet, or its shards
# DIR/SPLIT-00000.parquet ... as a list. Prints "null" when the split is optional and absent.
rv_data_files() {
  local dir=$1 split=$2 need=$3 shards=() file quoted joined=""
  if [[ -f "$dir/$split.parquet" ]]; then
    rv_hydra_value "$dir/$split.parquet"
    return
  fi
  shopt -s nullglob
  shards=("$dir/$split"-[0-9]*.parquet)
  shopt -u nullglob
  if ((${#shards[@]} == 0)); then
    if [[ "$need" == optional ]]; then
      printf 'null'
      return
    fi
    rv_die "no $split data in $dir (expected $split.parquet or $split-00000.parquet ...). Prepare it with \`revisual-data prepare ...\` (see docs/recipes.md) or set DATA_DIR"
  fi
  for file in "${shards[@]}"; do
    quoted=$(rv_hydra_value "$file")
    joined+="${joined:+,}$quoted"
  done
  printf '[%s]' "$joined"
}

rv_check_model() {
  if rv_is_dry_run; then
    if [[ -z "$MODEL_PATH" ]]; then
      MODEL_PATH=$RV_PLACEHOLDER_MODEL
      rv_log "dry run: MODEL_PATH not set, using the placeholder $MODEL_PATH (nothing is loaded from it)"
    fi
    return 0
  fi
  [[ -n "$MODEL_PATH" ]] || rv_die "MODEL_PATH is not set: point it at a Hugging Face model directory (e.g. Qwen2.5-VL-7B-Instruct), or use DRY_RUN=1"
  [[ -d "$MODEL_PATH" ]] || rv_die "MODEL_PATH=$MODEL_PATH is not a directory"
  [[ -f "$MODEL_PATH/config.json" ]] || rv_die "MODEL_PATH=$MODEL_PATH has no config.json: not a Hugging Face model directory"
}

rv_check_gpus() {
  if rv_is_dry_run || rv_is_cpu || [[ "$SKIP_GPU_CHECK" == 1 ]]; then
    return 0
  fi
  command -v "$NVIDIA_SMI" >/dev/null 2>&1 ||
    rv_die "no GPUs: nvidia-smi is not installed. Use DRY_RUN=1 to validate the recipe without GPUs (SKIP_GPU_CHECK=1 for non-NVIDIA accelerators)"
  local count
  count=$("$NVIDIA_SMI" -L 2>/dev/null | grep -c '^GPU ' || true)
  ((count > 0)) || rv_die "no GPUs: nvidia-smi lists none on this node. Use DRY_RUN=1 to validate the recipe without GPUs"
  ((count >= GPUS_PER_NODE)) ||
    rv_die "GPUS_PER_NODE=$GPUS_PER_NODE but nvidia-smi lists $count GPU(s) on this node; set GPUS_PER_NODE=$count"
}

# Runs the stage's command, or with DRY_RUN=1 hands the very same argv to the dry-run validator.
rv_run() {
  local stage=$1
  shift
  local dry_args=(--stage "$stage")
  if [[ "${RV_REQUIRE_IMAGES:-0}" == 1 ]]; then
    dry_args+=(--require-images)
  fi
  if rv_is_dry_run; then
    "$PYTHON" -m revisual_verl.recipes.dry_run "${dry_args[@]}" -- "$@"
    return
  fi
  rv_log "stage $stage: $*"
  # The driver runs in a session of its own, which its local Ray cluster (GCS, raylet, agents, workers)
  # stays in; whatever of it outlives the driver (a SIGKILL included) is stopped here, and a later launch
  # of the stage first stops what an earlier one left (its session recorded in the stage's directory).
  local session_file=${STAGE_DIR:-$OUTPUT_DIR/stage$stage}/.driver_session status=0 driver
  if [[ -f "$session_file" ]]; then
    "$PYTHON" -m revisual_verl.recipes.reap --session "$(<"$session_file")" --what "leftover (earlier launch)" || true
  fi
  "$PYTHON" -m revisual_verl.recipes.reap --new-session -- "$@" &
  driver=$!
  mkdir -p "$(dirname "$session_file")"
  printf '%s\n' "$driver" >"$session_file"
  # Ctrl-C reaches the terminal's process group, which the driver's new session is not in: pass it on.
  # shellcheck disable=SC2064  # the driver's pid is known now
  trap "\"$PYTHON\" -m revisual_verl.recipes.reap --session $driver --what interrupted; exit 130" INT TERM
  wait "$driver" || status=$?
  trap - INT TERM
  "$PYTHON" -m revisual_verl.recipes.reap --session "$driver" --what leftover || true
  rm -f "$session_file"
  return "$status"
}

# Where verl's `file` logger writes this launch's metrics: one JSON-lines file per launch under
# STAGE_DIR/metrics (a resumed stage adds a file; verl's logger would truncate a reused one).
rv_metrics_file() {
  local stage_dir=$1 file
  if ! rv_is_dry_run; then
    mkdir -p "$stage_dir/metrics"
  fi
  file="$stage_dir/metrics/launch-$(date +%Y%m%d-%H%M%S)-$$.jsonl"
  printf '%s' "$file"
}

# What stages 2 and 3 add to their config (revisual_verl/config/stage{2,3}_*.yaml, which hold the
# Table-5 settings): paths, names and cluster sizes, into the array RV_RL_ARGS.
# $1: train files, $2: val files, $3: stage output dir, $4: experiment-name suffix.
rv_rl_args() {
  local train=$1 val=$2 stage_dir=$3 suffix=$4
  local model project experiment ckpt_dir
  # One assignment each, so a refused value stops the script (set -e sees each status).
  model=$(rv_hydra_value "$MODEL_PATH")
  project=$(rv_hydra_value "$PROJECT_NAME")
  experiment=$(rv_hydra_value "$EXPERIMENT_NAME-$suffix")
  ckpt_dir=$(rv_hydra_value "$stage_dir/checkpoints")
  # shellcheck disable=SC2034  # read by the stage scripts that call this
  RV_RL_ARGS=(
    "data.train_files=$train"
    "data.val_files=$val"
    "actor_rollout_ref.model.path=$model"
    "actor_rollout_ref.rollout.name=$ROLLOUT_ENGINE"
    "actor_rollout_ref.rollout.tensor_model_parallel_size=$ROLLOUT_TP"
    "actor_rollout_ref.rollout.gpu_memory_utilization=$ROLLOUT_GPU_MEMORY"
    "trainer.nnodes=$NNODES"
    "trainer.n_gpus_per_node=$GPUS_PER_NODE"
    "trainer.project_name=$project"
    "trainer.experiment_name=$experiment"
    "trainer.logger=[$LOGGER]"
    "trainer.default_local_dir=$ckpt_dir"
  )
  if rv_is_cpu; then
    local metrics
    metrics=$(rv_metrics_file "$stage_dir")
    metrics=$(rv_hydra_value "$metrics")
    # The CPU settings are the config group revisual_verl/config/device/cpu.yaml; the metrics file is a path.
    # shellcheck disable=SC2034
    RV_RL_ARGS+=(device=cpu "++ray_kwargs.ray_init.runtime_env.env_vars.VERL_FILE_LOGGER_PATH=$metrics")
  fi
}

rv_check_settings
