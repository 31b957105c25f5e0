#!/usr/bin/env bash
# The README's first command: set up .venv, then run the recipe on the bundled sample data.
#   bash scripts/quickstart.sh            (--no-setup to reuse an existing .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--no-setup" ]; then
  shift
else
  bash scripts/setup.sh
fi
export PATH="$PWD/.venv/bin:$PATH"
bash recipes/quickstart.sh "$@"
