#!/usr/bin/env bash
# The CPU learning run (the README's first command on a machine without GPUs, docs/cpu.md): the whole
# recipe on a task a tiny model can learn, so a person can watch it learn before spending GPU hours.
#
#   bash recipes/learning_run.sh                 # WORK_DIR=outputs/quickstart
#
#   1. generates the synthetic digits task (revisual_verl.synthetic_task.generate) in the raw GRAMMAR
#      formats and prepares it with `revisual-data prepare`, like real data; held-out sets use keys and a
#      seed the training data never does, plus a control with every picture blanked;
#   2. pre-trains the tiny base model (revisual_verl.synthetic_task.pretrain: reading digits, copying,
#      single-digit sums, each picture's vision output aligned with its digit's word embedding; not the task's
#      format or its multi-step problems) and evaluates it on the held-out
#      sets with recipes/evaluate.sh (verl's val_only, into run/base_eval; BASE_EVAL=0 skips it);
#   3. runs stages 1-3 through verl's real trainers (run_all.sh, STAGE_LOGS=1: each stage's output in
#      run/stageK/train.log), with held-out evaluation through verl's validation: stage 2 validates
#      before training (the stage-1 model), stages 2 and 3 every TEST_FREQ steps and after their last;
#   4. prints the held-out accuracy of each stage's model and the training reward per step, and writes
#      run/summary.json and run/learning.png.
# Held-out accuracy is verl's val-core/<set>/acc/mean@K: K samples per problem at the evaluation command's
# decoding (recipes/evaluate.sh: temperature 0.3, top_p 0.95, the authors' evaluation; EVAL_TEMPERATURE and
# EVAL_TOP_P change it), scored by the recipe's verifier; a picture is one vision token.
# The cold start mixes careless traces into the worked ones (CARELESS_FRACTION of its traces keep only the first
# addition), as distilled traces mix careful and careless reasoning: stage 1 learns both habits, and RL with the
# verifier has a habit to unlearn (docs/cpu.md). Where this run departs from the stage configs, and why (each
# measured, README and docs/learning_history.md): stage 1 keeps a constant learning rate (the recipe's cosine anneal
# left worked solutions that RL broke), RL samples at top_p 1.0, PAD has no upper bound on |A| (the released 0.97
# drops every right answer of a group with fewer than 4 of 8 right, all there is at this accuracy) and stage 3 gets
# most of the RL steps; sizes and learning rates are the run's own.
# Settings: WORK_DIR, TASK_SEED (0), BASE_SEED (the base's pre-training, 0), CARELESS_FRACTION (0.5),
# HELDOUT_PROBLEMS (per set, 100), EVAL_SAMPLES (K, 2), EVAL_TEMPERATURE (0.3), EVAL_TOP_P (0.95),
# RL_STEPS (stage 3, 20), STAGE2_STEPS (RL_STEPS / 4, at least 1), TEST_FREQ (RL_STEPS: validate before stage 2
# and after each RL stage), TASK_ROWS (2000),
# PRETRAIN_STEPS ("100 800"), SFT_EPOCHS (3), RL_PROMPTS (8 prompts x 8 responses per step), BASE_EVAL (1; 0
# skips the base model's evaluation); STAGES="2 3" reruns the RL stages from this run's stage-1 model. Extra
# arguments go to run_all.sh.
set -euo pipefail
RECIPES=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$RECIPES")
: "${WORK_DIR:=$ROOT/outputs/quickstart}"
: "${PYTHON:=python}"
: "${DATA_CLI:=revisual-data}"
: "${TASK_SEED:=0}"
: "${BASE_SEED:=0}"
: "${CARELESS_FRACTION:=0.5}"
: "${EVAL_SAMPLES:=2}"
: "${HELDOUT_PROBLEMS:=100}"
: "${RL_STEPS:=20}"
# Stage 2 gets a quarter of the RL steps, stage 3 the rest (the split every measured run here used).
: "${STAGE2_STEPS:=$((RL_STEPS / 4 > 0 ? RL_STEPS / 4 : 1))}"
: "${TEST_FREQ:=$RL_STEPS}"
# Sizes, for a shorter run: training rows per part, base pre-training steps
# ("pictures mixed"), SFT epochs, prompts per RL step.
: "${TASK_ROWS:=2000}"
: "${PRETRAIN_STEPS:=100 800}"
: "${SFT_EPOCHS:=3}"
: "${RL_PROMPTS:=8}"
export DEVICE=cpu DRY_RUN=0

if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
  exit 0
fi

say() { printf '[learning run] %s\n' "$*" >&2; }
clock() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
# Run a step with its output in a log; on failure show the log's tail and stop.
logged() {
  local log=$1
  shift
  if ! "$@" >>"$log" 2>&1; then
    say "FAILED: $* (last lines of $log below)"
    tail -n 30 "$log" >&2
    exit 1
  fi
}

TASK_DIR=$WORK_DIR/task
DATA_DIR=$WORK_DIR/data
RUN_DIR=$WORK_DIR/run
BASE_MODEL=$WORK_DIR/base-model
LOGS=$WORK_DIR/logs
mkdir -p "$LOGS"
# The instruction of every prompt, cold-start conversations included (generate.py writes it there too):
# short, since the tiny tokenizer spends one token per byte.
INSTRUCTION=' Think in <think> </think>, then answer in \boxed{}.'
run_started=$SECONDS
report_seconds=()

started=$SECONDS
# A task or base already in WORK_DIR is reused only when its made_with.json matches these settings and this tree
# (--reuse); one made otherwise stops the run, naming what differs, instead of training on it unnoticed.
[[ -e "$TASK_DIR" ]] || say "generating the synthetic digits task in $TASK_DIR (seed $TASK_SEED)"
rm -rf "$TASK_DIR.partial"
logged "$LOGS/task.log" "$PYTHON" -m revisual_verl.synthetic_task.generate --output "$TASK_DIR" --reuse \
  --seed "$TASK_SEED" --instruction "$INSTRUCTION" --text-operands 3 --image-operands 2 --heldout "$HELDOUT_PROBLEMS" \
  --careless-fraction "$CARELESS_FRACTION" \
  --coldstart "$TASK_ROWS" --image-train "$TASK_ROWS" --text-train "$TASK_ROWS"
# The prepared data belongs to the task it was prepared from (its stamp is kept beside): another task's is prepared
# again.
if [[ -d "$DATA_DIR" ]] && ! cmp -s "$TASK_DIR/made_with.json" "$DATA_DIR/task_made_with.json"; then
  say "the data in $DATA_DIR was prepared from another task: preparing it again"
  rm -rf "$DATA_DIR"
fi
prepare() {
  local part=$1 input=$2 name=$3 source=$4 val=$5
  [[ -f "$DATA_DIR/$name/report.json" ]] && return 0
  logged "$LOGS/prepare.log" "$DATA_CLI" prepare "$part" --input "$input" --output "$DATA_DIR/$name" \
    --val-size "$val" --instruction "$INSTRUCTION" --data-source "$source" --no-progress
}
prepare coldstart "$TASK_DIR/coldstart.json" coldstart digits_coldstart 0
# The recipes want a validation split for each RL part; the held-out sets below are what is reported.
prepare mmrl "$TASK_DIR/mmrl.parquet" mmrl digits_image 8
prepare textrl "$TASK_DIR/textrl.parquet" textrl digits_text 8
prepare mmrl "$TASK_DIR/heldout_image.parquet" heldout_image digits_image 0
prepare mmrl "$TASK_DIR/heldout_image_blank.parquet" heldout_image_blank digits_image_blank 0
prepare textrl "$TASK_DIR/heldout_text.parquet" heldout_text digits_text 0
cp "$TASK_DIR/made_with.json" "$DATA_DIR/task_made_with.json"
report_seconds+=(--seconds "task_and_data=$((SECONDS - started))")
say "task ready in $(clock $((SECONDS - started))) (logs: $LOGS/task.log, $LOGS/prepare.log)"

started=$SECONDS
read -r describe_steps mixed_steps <<<"$PRETRAIN_STEPS"
base_existed=0
if [[ -e "$BASE_MODEL" ]]; then
  base_existed=1
else
  say "pre-training the tiny base model (digits, copying, sums; not the task) in $BASE_MODEL (seed $BASE_SEED)"
  rm -rf "$BASE_MODEL.partial"
fi
logged "$LOGS/pretrain.log" "$PYTHON" -m revisual_verl.synthetic_task.pretrain --output "$BASE_MODEL" --reuse \
  --seed "$BASE_SEED" --describe-steps "$describe_steps" --mixed-steps "$mixed_steps"
((base_existed)) || say "base model ready in $(clock $((SECONDS - started)))"
report_seconds+=(--seconds "base_model=$((SECONDS - started))")

# How every held-out evaluation sees the task, the base model's below and the RL stages' validations alike: a digit
# as one vision token (verl's rollout enlarges each picture to four tokens' worth, the processor bounded to 28x28
# pixels shrinks it back, as the base was pre-trained; the paper's bounds would make it 512x512), short prompts and
# answers, and K samples per problem at the evaluation command's decoding. Measured on the benchmark's nine stage-3
# models (earlier base, docs/learning_history.md): at the training sampling (temperature 1.0) the same models gain
# about two fifths as much over stage 1 (+4.2 against +11.0 points): sampling at 1.0 keeps drawing the careless
# habit that RL has made the minority.
: "${EVAL_TEMPERATURE:=0.3}"
: "${EVAL_TOP_P:=0.95}"
VIEW_ARGS=(
  data.mm_processor_kwargs.min_pixels=784
  data.mm_processor_kwargs.max_pixels=784
  data.max_prompt_length=128
  # While most groups are all wrong, a length bonus for wrong answers would be the only signal left, and
  # GRPO's normalisation turns it into a full-size advantage for short nonsense (measured: responses
  # shrank from 29 to 6 tokens in 15 steps at 0% accuracy). The bonus is paid to correct answers only.
  reward.reward_kwargs.length_needs_correct=true
)
HELDOUT="[$DATA_DIR/heldout_image/train.parquet,$DATA_DIR/heldout_image_blank/train.parquet,$DATA_DIR/heldout_text/train.parquet]"

# The base model on the held-out sets through recipes/evaluate.sh (verl's val_only: the same validation as the
# RL stages' below), into run/base_eval, where the report reads it.
read -r -a stage_list <<<"${STAGES:-1 2 3}"
if ((stage_list[0] == 1)) && [[ "${BASE_EVAL:-1}" == 1 ]]; then
  started=$SECONDS
  say "evaluating the base model on the held-out sets (K=$EVAL_SAMPLES; log: $LOGS/base_eval.log)"
  rm -rf "$RUN_DIR/base_eval"
  logged "$LOGS/base_eval.log" env OUT_DIR="$RUN_DIR/base_eval" EVAL_SAMPLES="$EVAL_SAMPLES" \
    EVAL_TEMPERATURE="$EVAL_TEMPERATURE" EVAL_TOP_P="$EVAL_TOP_P" EVAL_RESPONSE_LENGTH=48 EVAL_LABEL=base \
    bash "$RECIPES/evaluate.sh" "$BASE_MODEL" "$DATA_DIR/heldout_image" "$DATA_DIR/heldout_image_blank" \
    "$DATA_DIR/heldout_text" -- "${VIEW_ARGS[@]}"
  report_seconds+=(--seconds "base_eval=$((SECONDS - started))")
  say "base model evaluated in $(clock $((SECONDS - started))) ($RUN_DIR/base_eval/eval.md)"
fi

export NNODES=1 GPUS_PER_NODE=1 SFT_MICRO_BATCH=16 SFT_GRAD_ACCUM=1 SFT_MAX_LENGTH=160
LEARN_ARGS=(
  --stage1
  "trainer.total_epochs=$SFT_EPOCHS"
  optim.lr=1e-3
  optim.lr_scheduler_type=constant
  optim.lr_warmup_steps_ratio=0
  optim.weight_decay=0
  "trainer.logger=[console,file]"
  --rl
  "data.train_batch_size=$RL_PROMPTS"
  actor_rollout_ref.rollout.n=8
  "actor_rollout_ref.actor.ppo_mini_batch_size=$RL_PROMPTS"
  actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=32
  actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=32
  actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=32
  "${VIEW_ARGS[@]}"
  data.max_response_length=48
  actor_rollout_ref.actor.optim.lr=1e-4
  actor_rollout_ref.rollout.top_p=1.0
  algorithm.pad.t_high=null
  "trainer.total_training_steps=$RL_STEPS"
  "trainer.save_freq=$RL_STEPS"
  "trainer.test_freq=$TEST_FREQ"
  "data.val_files=$HELDOUT"
  "actor_rollout_ref.rollout.val_kwargs.n=$EVAL_SAMPLES"
  actor_rollout_ref.rollout.val_kwargs.do_sample=true
  "actor_rollout_ref.rollout.val_kwargs.temperature=$EVAL_TEMPERATURE"
  "actor_rollout_ref.rollout.val_kwargs.top_p=$EVAL_TOP_P"
  "trainer.logger=[console,file]"
  --stage2
  trainer.val_before_train=true
  # verl validates and saves on a stage's last step whatever the frequencies.
  "trainer.total_training_steps=$STAGE2_STEPS"
  # Every held-out answer, one file per validation (<step>.jsonl): what the model wrote, not only its score.
  "trainer.validation_data_dir=$RUN_DIR/stage2/heldout_generations"
  --stage3
  trainer.val_before_train=false
  "trainer.validation_data_dir=$RUN_DIR/stage3/heldout_generations"
)

# STAGES="2 3" (or "2") reruns later stages from this run's merged model of the stage before them.
start_model=$BASE_MODEL
if ((stage_list[0] > 1)); then
  start_model=$RUN_DIR/stage$((stage_list[0] - 1))/hf
fi
MODEL_PATH=$start_model DATA_DIR=$DATA_DIR OUTPUT_DIR=$RUN_DIR STAGE_LOGS=1 PROGRESS_EVERY_STAGE1=75 \
  bash "$RECIPES/run_all.sh" "${LEARN_ARGS[@]}" "$@"

# The recipe's own checks (every merged model loads; stage 3 left the vision tower as stage 2 made it).
if ! "$PYTHON" -m revisual_verl.cpu.report --run-dir "$RUN_DIR" --entropy-warmup-updates 140 >"$LOGS/checks.log" 2>&1; then
  say "FAILED: the run's checks (full output: $LOGS/checks.log)"
  grep FAILED "$LOGS/checks.log" >&2 || tail -n 20 "$LOGS/checks.log" >&2
  exit 1
fi
say "checks passed: every merged model loads, stage 3 left the vision tower unchanged (details: $LOGS/checks.log)"
"$PYTHON" -m revisual_verl.run_report --run-dir "$RUN_DIR" "${report_seconds[@]}" \
  --decoding "temperature=$EVAL_TEMPERATURE" --decoding "top_p=$EVAL_TOP_P" \
  --seconds "total=$((SECONDS - run_started))"
say "done in $(clock $((SECONDS - run_started))); stage logs: $RUN_DIR/stage{1,2,3}/train.log"
