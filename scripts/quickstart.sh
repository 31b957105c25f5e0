#!/usr/bin/env bash
# The README's first command: set up .venv, then run the recipe on the bundled sample data.
#   bash scripts/quickstart.sh            (--no-setup to reuse an existing .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != "--no-setup" ]; then
  bash scripts/setup.sh
fi
export PATH="$PWD/.venv/bin:$PATH"
if [ -f recipes/quickstart.sh ]; then
  bash recipes/quickstart.sh
else
  # Until the recipes land: PAD on a small synthetic step, against verl's GRPO.
  python benchmarks/pad_overhead.py --batch 512 --length 1024 --groups 64 --repeats 2
fi
