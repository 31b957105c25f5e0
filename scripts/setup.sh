#!/usr/bin/env bash
# Create .venv with torch (CPU), verl 0.9.1 and this plugin, as CI and the README do.
# Usage: bash scripts/setup.sh            (VENV=path to use another location)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install -q --upgrade pip
# torch and torchvision first, as a pair: with both pinned, nothing later can swap in another build.
# torchvision is needed to load Qwen2-VL processors (their video part), so the CPU mode can train on images.
"${PIP[@]}" install -q -c constraints-cpu.txt torch torchvision
"${PIP[@]}" install -q -c constraints-cpu.txt -r requirements-cpu.txt
"${PIP[@]}" install -q -c constraints-cpu.txt -e ".[test]"
"$VENV/bin/python" - <<'PY'
import verl  # noqa: F401  loads the plugin through the verl.plugins entry point
from revisual_verl.plugin import registered
print("revisual-verl registered in verl:", registered())
PY
