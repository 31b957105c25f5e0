#!/usr/bin/env bash
# The README's first command: set up .venv, then run the recipe (on a machine without GPUs: the CPU
# learning run, recipes/learning_run.sh; QUICKSTART_PROFILE=smoke for the sample-data smoke run; docs/cpu.md).
#   bash scripts/quickstart.sh            (--no-setup to reuse an existing environment; VENV=path for another)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export VENV
if [ "${1:-}" = "--no-setup" ]; then
  shift
else
  bash scripts/setup.sh
fi
VENV=$(cd "$VENV" && pwd)
export PATH="$VENV/bin:$PATH"
bash recipes/quickstart.sh "$@"
