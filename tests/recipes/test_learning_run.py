"""The README's first command on a machine without GPUs, at its full size: the recipe learns.

`scripts/quickstart.sh --no-setup` (the default profile: recipes/learning_run.sh) in a temporary WORK_DIR with
the README's settings: the task is generated and prepared, the base model pre-trained, the three stages
trained through verl's real trainers, every stage's model evaluated on the held-out sets through verl's
validation, and the report written. The one departure is BASE_EVAL=0, to keep CI under its bound: the base
model's evaluation (1.5 min) is recipes/evaluate.sh, tested in test_evaluate.py, and its column in the report is
tested in tests/run_report; the gain asserted here is stage 3 over stage 1.

The learning test: RL (stages 2 and 3) must raise the mean held-out accuracy (image and text; the blank-picture
control left out) by at least MIN_RL_GAIN_POINTS over the stage-1 model, and stage 3's training reward over its
last five steps must beat its first five. What the margin stands on, measured on this task at this decoding
(README, "The learning test"):
- evaluation noise: one model evaluated on the (fixed) held-out sets under four rollout seeds moves the mean
  with an sd of about 1 point (stage-1 model 5.8-7.8%, stage-3 model 20.2-22.0%), so a chain that learned
  nothing would show a gain with an sd of about 1.4 points around zero;
- learning: seven runs of this recipe's RL settings from this stage-1 model gained +6.5 to +13.2 points (mean
  +9.6, sd 2.5; the same seed gave +6.5, +9.5 and +13.0: RL on the CPU is not bit-reproducible here).
The margin is about 3 sds of the no-learning gain above zero (a chain that learned nothing passes about 0.2% of
the time) and 2.2 sds of the learning runs below their mean (a chain that learns fails about 1.3% of the time,
normal approximation). The reward rose in all 22 runs on record (smallest lift 0.04). With the advantages negated
in the engine both fail (gain -4.8 points, reward 0.09 -> 0.02).
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
MIN_RL_GAIN_POINTS = 4.0
STAGE2_STEPS, STAGE3_STEPS = 5, 20  # learning_run.sh's defaults


@pytest.fixture(scope="module")
def learning_run(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp("learning")
    env = dict(os.environ)
    # Every size and setting is the README's: nothing the caller's environment sets may change them.
    for key in (
        *("DRY_RUN", "DEVICE", "MODEL_PATH", "RESUME", "STAGES", "VERL_PLATFORM", "QUICKSTART_PROFILE"),
        *("EVAL_SAMPLES", "EVAL_TEMPERATURE", "EVAL_TOP_P", "TASK_SEED", "CARELESS_FRACTION", "HELDOUT_PROBLEMS"),
        *("RL_STEPS", "STAGE2_STEPS", "TEST_FREQ", "TASK_ROWS", "PRETRAIN_STEPS", "SFT_EPOCHS", "RL_PROMPTS"),
        *("COLDSTART_DIR", "MMRL_DIR", "TEXTRL_DIR", "ROLLOUT_ENGINE", "DATA_CLI", "LOGGER"),
        *("PROGRESS_EVERY", "PROGRESS_EVERY_STAGE1", "PROGRESS_EVERY_STAGE2", "PROGRESS_EVERY_STAGE3"),
    ):
        env.pop(key, None)
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        VENV=sys.prefix,
        WORK_DIR=str(work_dir),
        PYTHON=sys.executable,
        NVIDIA_SMI="/nonexistent/nvidia-smi",
        BASE_EVAL="0",
    )
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "quickstart.sh"), "--no-setup"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,  # the bound for this test (20 min); it takes about 11 here
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return work_dir, result


def test_rl_raises_held_out_accuracy_well_above_the_noise(learning_run):
    work_dir, result = learning_run
    summary = json.loads((work_dir / "run" / "summary.json").read_text())
    accuracy = summary["heldout_accuracy"]

    def mean(model):  # the blank-picture control is left out, as in the report
        return (accuracy[model]["digits_image"] + accuracy[model]["digits_text"]) / 2

    gain = 100 * (mean("stage3") - mean("stage1"))
    assert summary["rl_gain_points"] == pytest.approx(gain, abs=0.01)
    table = {model: {name: round(100 * value, 1) for name, value in accuracy[model].items()} for model in accuracy}
    assert gain >= MIN_RL_GAIN_POINTS, f"RL gained {gain:+.1f} points; held-out % {table}"
    # The reward RL is trained on rises too: stage 3's last five steps against its first five.
    reward = summary["training"]["stage3"]["reward"]
    assert sum(reward[-5:]) > sum(reward[:5]), reward
    printed = f"RL (stages 2 + 3) changed the mean held-out accuracy by {summary['rl_gain_points']:+.1f} points"
    assert printed in result.stdout + result.stderr


def test_every_stage_model_is_evaluated_on_every_held_out_set(learning_run):
    work_dir, _ = learning_run
    summary = json.loads((work_dir / "run" / "summary.json").read_text())
    accuracy = summary["heldout_accuracy"]
    assert set(accuracy) == {"stage1", "stage2", "stage3"}  # BASE_EVAL=0
    for model in ("stage1", "stage2", "stage3"):
        assert set(accuracy[model]) == SETS, model
        assert all(0.0 <= value <= 1.0 for value in accuracy[model].values())
    # stage 1's figures are stage 2's validation before training; the others each stage's last step.
    assert summary["heldout_read_at_step"] == {"stage1": 0, "stage2": STAGE2_STEPS, "stage3": STAGE3_STEPS}
    assert summary["samples_per_problem"] == {"stage2": 2, "stage3": 2}
    # Every held-out figure at the evaluation command's decoding.
    assert summary["evaluation_decoding"] == {"temperature": "0.3", "top_p": "0.95"}
    assert {"task_and_data", "base_model", "stage1", "stage2", "stage3", "total"} <= set(summary["seconds"])
    assert not (work_dir / "run" / "base_eval").exists()
    assert len(summary["training"]["stage2"]["reward"]) == STAGE2_STEPS
    assert len(summary["training"]["stage3"]["reward"]) == STAGE3_STEPS
    assert (work_dir / "run" / "learning.png").stat().st_size > 10_000


def test_the_held_out_problems_never_appear_in_training(learning_run):
    import pandas as pd

    work_dir, _ = learning_run
    data = work_dir / "data"

    def prompts(part):
        frame = pd.read_parquet(data / part / "train.parquet")
        return {row[0]["content"] for row in frame["prompt"]}

    assert len(prompts("heldout_text")) == 100
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
