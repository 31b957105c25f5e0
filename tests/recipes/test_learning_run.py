"""The README's first command on a machine without GPUs, at a small size: the learning run's whole wiring.

`scripts/quickstart.sh --no-setup` (the default profile: recipes/learning_run.sh) in a temporary WORK_DIR with
the sizes cut down: the task is generated and prepared, the base model pre-trained for a few steps, the three
stages trained through verl's real trainers, every stage's model evaluated on the held-out sets through verl's
validation, and the report written. Whether the recipe *learns* at the full size is measured by the run itself
(README, docs/cpu.md), not asserted here: a few steps of a few rows teach nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETS = {"digits_image", "digits_image_blank", "digits_text"}


@pytest.fixture(scope="module")
def learning_run(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp("learning")
    env = dict(os.environ)
    for key in (
        *("DRY_RUN", "DEVICE", "MODEL_PATH", "RESUME", "STAGES", "VERL_PLATFORM", "QUICKSTART_PROFILE"),
        *("EVAL_SAMPLES", "EVAL_TEMPERATURE", "EVAL_TOP_P"),
    ):
        env.pop(key, None)
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        VENV=sys.prefix,
        WORK_DIR=str(work_dir),
        PYTHON=sys.executable,
        NVIDIA_SMI="/nonexistent/nvidia-smi",
        TASK_ROWS="64",
        PRETRAIN_STEPS="2 2",
        SFT_EPOCHS="1",
        RL_STEPS="2",  # stage 3; stage 2 takes RL_STEPS / 4, at least 1
        RL_PROMPTS="4",
        HELDOUT_PROBLEMS="8",
    )
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "quickstart.sh"), "--no-setup"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return work_dir, result


def test_every_stage_model_is_evaluated_on_every_held_out_set(learning_run):
    work_dir, _ = learning_run
    summary = json.loads((work_dir / "run" / "summary.json").read_text())
    accuracy = summary["heldout_accuracy"]
    assert {"base", "stage1", "stage2", "stage3"} <= set(accuracy)
    for model in ("base", "stage1", "stage2", "stage3"):
        assert set(accuracy[model]) == SETS, model
        assert all(0.0 <= value <= 1.0 for value in accuracy[model].values())
    # stage 1's figures are stage 2's validation before training; the others each stage's last step.
    # The base's figures come from recipes/evaluate.sh (verl's val_only), the same validation path.
    assert summary["heldout_read_at_step"] == {"base": 0, "stage1": 0, "stage2": 1, "stage3": 2}
    assert summary["samples_per_problem"] == {"base": 2, "stage2": 2, "stage3": 2}
    # Every held-out figure at the evaluation command's decoding, the base's (evaluate.sh) included.
    assert summary["evaluation_decoding"] == {"temperature": "0.3", "top_p": "0.95"}
    assert {"task_and_data", "base_model", "base_eval", "stage1", "stage2", "stage3", "total"} <= set(
        summary["seconds"]
    )
    base_eval = json.loads((work_dir / "run" / "base_eval" / "eval.json").read_text())
    assert {key: base_eval["settings"][key] for key in ("temperature", "top_p")} == {
        "temperature": "0.3",
        "top_p": "0.95",
    }
    assert {name: entry["problems"] for name, entry in base_eval["benchmarks"].items()} == dict.fromkeys(SETS, 8)
    assert len(summary["training"]["stage2"]["reward"]) == 1
    assert len(summary["training"]["stage3"]["reward"]) == 2
    assert (work_dir / "run" / "learning.png").stat().st_size > 10_000


def test_the_held_out_problems_never_appear_in_training(learning_run):
    import pandas as pd

    work_dir, _ = learning_run
    data = work_dir / "data"

    def prompts(part):
        frame = pd.read_parquet(data / part / "train.parquet")
        return {row[0]["content"] for row in frame["prompt"]}

    assert not prompts("heldout_text") & prompts("textrl")
    coldstart = pd.read_parquet(data / "coldstart" / "train.parquet")
    questions = {messages[0]["content"] for messages in coldstart["messages"]}
    assert not prompts("heldout_text") & questions
    # Text RL asks problems the cold start never showed.
    assert not prompts("textrl") & questions


def test_the_terminal_is_short_and_the_logs_hold_the_rest(learning_run):
    work_dir, result = learning_run
    terminal = (result.stdout + result.stderr).splitlines()
    assert len(terminal) <= 150, "\n".join(terminal)
    text = "\n".join(terminal)
    for stage in (1, 2, 3):
        log = work_dir / "run" / f"stage{stage}" / "train.log"
        assert log.stat().st_size > 10_000  # verl's and Ray's output went here
        assert str(log) in text
        assert f"stage {stage}: done in" in text
    assert "Held-out accuracy" in text and "digits_image_blank (control)" in text
    assert "samples per problem, temperature 0.3, top_p 0.95)" in text
    assert "Traceback" not in text and "WARNING" not in text
