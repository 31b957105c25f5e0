#!/usr/bin/env bash
# Evaluate a model on prepared benchmarks through verl's own validation (docs/eval.md): the recipe's
# verifier (the revisual reward's acc), the authors' evaluation decoding, k samples per problem. It
# ends with the paper's Table 2 layout on the terminal and in OUT_DIR/eval.md, and OUT_DIR/eval.json.
#
#   bash recipes/evaluate.sh MODEL_DIR DATA_DIR... [-- hydra overrides...]
#
# MODEL_DIR: a Hugging Face model directory (any stage's merged `hf`, or a base model). DATA_DIR: a folder
# written by `revisual-data prepare eval --benchmark NAME` (or any prepared RL folder, or a .parquet file);
# each row's data_source names its column. The config is revisual_verl/config/eval.yaml (verl's
# trainer.val_only on the stage-2 config); overrides after `--` go to it.
# Settings: OUT_DIR (outputs/eval/<model folder name>), EVAL_SAMPLES (k, 8), EVAL_TEMPERATURE (0.3),
# EVAL_TOP_P (0.95), EVAL_RESPONSE_LENGTH (8192), EVAL_LABEL (the table's row name), DEVICE=cpu for the CPU
# mode (hf rollout, tiny models), DRY_RUN=1 to compose the config and print the command only; the cluster
# settings of the other recipes (NNODES, GPUS_PER_NODE, ROLLOUT_*) apply too. verl's output goes to
# OUT_DIR/eval.log, its generations to OUT_DIR/generations, its metrics to OUT_DIR/metrics.
set -euo pipefail
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
  exit 0
fi
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

(($# >= 2)) || rv_die "usage: bash recipes/evaluate.sh MODEL_DIR DATA_DIR... [-- hydra overrides] (--help for more)"
MODEL_PATH=$1
shift
data_dirs=()
while (($#)) && [[ "$1" != -- ]]; do
  data_dirs+=("$1")
  shift
done
[[ "${1:-}" == -- ]] && shift
((${#data_dirs[@]})) || rv_die "no DATA_DIR given: name at least one prepared benchmark folder"

: "${OUT_DIR:=$PWD/outputs/eval/$(basename "$MODEL_PATH")}"
: "${EVAL_SAMPLES:=8}"
: "${EVAL_TEMPERATURE:=0.3}"
: "${EVAL_TOP_P:=0.95}"
: "${EVAL_RESPONSE_LENGTH:=8192}"
: "${EVAL_LABEL:=$(basename "$MODEL_PATH")}"
rv_require_int EVAL_SAMPLES "$EVAL_SAMPLES"
rv_require_int EVAL_RESPONSE_LENGTH "$EVAL_RESPONSE_LENGTH"

rv_check_model
# Every data folder's files (a prepared folder's train split, which `prepare eval` writes whole) and the
# split each benchmark was prepared from (report.json), for the report's comparison with the paper.
files=()
split_args=()
for dir in "${data_dirs[@]}"; do
  if [[ -f "$dir" && "$dir" == *.parquet ]]; then
    files+=("$(rv_hydra_value "$dir")")
    continue
  fi
  [[ -d "$dir" ]] || rv_die "DATA_DIR $dir is neither a prepared folder nor a .parquet file"
  files+=("$(rv_data_files "$dir" train required)")
  if [[ -f "$dir/report.json" ]]; then
    split=$("$PYTHON" -c 'import json,sys; r=json.load(open(sys.argv[1])); b=r.get("benchmark"); s=r.get("split")
print(f"{b}={s}" if b and s else "")' "$dir/report.json")
    [[ -n "$split" ]] && split_args+=(--split "$split")
  fi
done
joined=$(IFS=,; printf '%s' "${files[*]}")
# A list inside a list when a folder has shards: Hydra takes the flat list of every file.
joined=${joined//[\[\]]/}
first=${joined%%,*}
rv_check_gpus
# verl's file logger keeps the validation metrics (OUT_DIR/metrics) beside the dumped generations.
[[ ",$LOGGER," == *,file,* ]] || LOGGER=$LOGGER,file
RV_RL_ARGS=()
rv_rl_args "$first" "[$joined]" "$OUT_DIR" eval
if ! rv_is_cpu; then
  metrics=$(rv_metrics_file "$OUT_DIR")
  RV_RL_ARGS+=("++ray_kwargs.ray_init.runtime_env.env_vars.VERL_FILE_LOGGER_PATH=$(rv_hydra_value "$metrics")")
fi
generations=$(rv_hydra_value "$OUT_DIR/generations")
args=(
  "${RV_RL_ARGS[@]}"
  "trainer.validation_data_dir=$generations"
  "actor_rollout_ref.rollout.val_kwargs.n=$EVAL_SAMPLES"
  "actor_rollout_ref.rollout.val_kwargs.temperature=$EVAL_TEMPERATURE"
  "actor_rollout_ref.rollout.val_kwargs.top_p=$EVAL_TOP_P"
  "data.max_response_length=$EVAL_RESPONSE_LENGTH"
)
command=("$PYTHON" -m revisual_verl.main_ppo --config-name=eval "${args[@]}" "$@")
if rv_is_dry_run; then
  "${command[@]}" --cfg job >/dev/null
  rv_log "dry run: the eval config composes; the command would be:"
  printf '%q ' "${command[@]}" >&2
  printf '\n' >&2
  exit 0
fi

mkdir -p "$OUT_DIR"
rm -rf "$OUT_DIR/generations"
rv_log "evaluating $MODEL_PATH on ${#data_dirs[@]} data folder(s), k=$EVAL_SAMPLES, temperature $EVAL_TEMPERATURE, top_p $EVAL_TOP_P (verl's output: $OUT_DIR/eval.log)"
started=$SECONDS
if ! "${command[@]}" >"$OUT_DIR/eval.log" 2>&1; then
  rv_log "FAILED: verl's validation (last lines of $OUT_DIR/eval.log below)"
  tail -n 40 "$OUT_DIR/eval.log" >&2
  exit 1
fi
"$PYTHON" -m revisual_verl.evaluation.report --generations "$OUT_DIR/generations" --metrics "$OUT_DIR/metrics" \
  --out "$OUT_DIR" --k "$EVAL_SAMPLES" --model "$MODEL_PATH" --label "$EVAL_LABEL" "${split_args[@]}" \
  --setting "temperature=$EVAL_TEMPERATURE" --setting "top_p=$EVAL_TOP_P" \
  --setting "max_response_length=$EVAL_RESPONSE_LENGTH" --setting "seconds=$((SECONDS - started))"
