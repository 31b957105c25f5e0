"""Fixtures of the recipe tests: the bundled sample data prepared by the real data CLI, and the exact
argv a stage script would run (captured with the fake verl of fake_verl.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fake_verl
import pytest

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
SAMPLES = ROOT / "examples" / "data" / "raw"
PARTS = {"coldstart": "coldstart.json", "mmrl": "mmrl.parquet", "textrl": "textrl.parquet"}


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory) -> Path:
    """examples/data/raw prepared with ``python -m revisual_verl.data prepare``, as the quickstart does."""
    out = tmp_path_factory.mktemp("sample_data")
    for part, raw in PARTS.items():
        result = subprocess.run(
            [sys.executable, "-m", "revisual_verl.data", "prepare", part, "--input", str(SAMPLES / raw)]
            + ["--output", str(out / part), "--val-size", "2", "--no-progress"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"revisual-data prepare {part} failed:\n{result.stderr}"
    return out


@pytest.fixture
def stage_call(tmp_path, sample_data):
    """``stage_call(k, *overrides, **env)``: the launch run_stageK.sh makes, as the fake verl recorded it
    (``prog``, ``argv``, ``model_path``, ``engine_vendor``)."""

    def capture(stage: int, *overrides: str, **env: str) -> dict:
        bin_dir, log = tmp_path / "bin", tmp_path / "calls.jsonl"
        fake_verl.install(bin_dir)
        model = tmp_path / "model"
        model.mkdir(exist_ok=True)
        (model / "config.json").write_text("{}")
        settings = {"MODEL_PATH": str(model), "DATA_DIR": str(sample_data), "OUTPUT_DIR": str(tmp_path / "out")}
        settings.update(env)
        log.unlink(missing_ok=True)
        result = subprocess.run(
            ["bash", str(RECIPES / f"run_stage{stage}.sh"), *overrides],
            env=fake_verl.env_for(tmp_path, bin_dir, log, **settings),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        # The stage's launch, not the launcher and reaper of its session around it.
        calls = [c for c in fake_verl.read_log(log) if fake_verl.module_of(c)]
        (call,) = [c for c in calls if fake_verl.module_of(c) != "revisual_verl.recipes.reap"]
        return call

    return capture


@pytest.fixture
def stage_argv(stage_call):
    """``stage_argv(k, *overrides, **env)``: the command run_stageK.sh would execute, recorded by the fake verl."""

    def capture(stage: int, *overrides: str, **env: str) -> list[str]:
        call = stage_call(stage, *overrides, **env)
        return [call["prog"], *call["argv"]]

    return capture
