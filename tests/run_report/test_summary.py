"""summary.json and the tables: which validation scores which stage's model, read from verl's metrics files."""

import json
from pathlib import Path

import pytest

from revisual_verl.run_report.__main__ import heldout_table, main
from revisual_verl.run_report.metrics import heldout_by_step, read_metrics
from revisual_verl.run_report.progress import progress_line
from revisual_verl.run_report.summary import build_summary


def write_metrics(stage_dir: Path, steps: dict[int, dict], name: str = "launch-1.jsonl") -> None:
    (stage_dir / "metrics").mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"step": step, "data": data}) for step, data in steps.items()]
    (stage_dir / "metrics" / name).write_text("\n".join(lines) + "\n")


def val(image: float, text: float, blank: float, k: int = 4) -> dict:
    return {
        f"val-core/digits_image/acc/mean@{k}": image,
        f"val-core/digits_text/acc/mean@{k}": text,
        f"val-core/digits_image_blank/acc/mean@{k}": blank,
        f"val-aux/digits_image/score/mean@{k}": 0.9,  # not an accuracy: never read as one
    }


@pytest.fixture
def run_dir(tmp_path):
    run = tmp_path / "run"
    write_metrics(run / "stage1", {1: {"train/loss": 2.0}, 2: {"train/loss": 1.0}})
    write_metrics(
        run / "stage2",
        {
            0: val(0.20, 0.40, 0.10),  # val_before_train: the stage-1 model
            1: {"critic/score/mean": 0.3, "reward/accuracy/mean": 0.25},
            2: {"critic/score/mean": 0.5, "reward/accuracy/mean": 0.45, **val(0.50, 0.45, 0.12)},
        },
    )
    write_metrics(
        run / "stage3",
        {
            5: {"critic/score/mean": 0.6, **val(0.55, 0.60, 0.11)},  # an intermediate validation
            10: {"critic/score/mean": 0.7, **val(0.52, 0.70, 0.09)},
        },
    )
    (run / "stage2" / "seconds.txt").write_text("120\n")
    return run


def test_each_model_is_read_from_the_validation_that_scored_it(run_dir):
    summary = build_summary(run_dir, {"task": 3.0})
    acc = summary["heldout_accuracy"]
    assert acc["stage1"] == {"digits_image": 0.20, "digits_text": 0.40, "digits_image_blank": 0.10}
    assert acc["stage2"]["digits_image"] == 0.50
    assert acc["stage3"] == {"digits_image": 0.52, "digits_text": 0.70, "digits_image_blank": 0.09}  # the last
    assert summary["heldout_read_at_step"] == {"stage1": 0, "stage2": 2, "stage3": 10}
    # The blank-image control is kept out of the mean.
    assert summary["heldout_mean"]["stage1"] == pytest.approx(0.30)
    assert summary["heldout_mean"]["stage3"] == pytest.approx(0.61)
    assert summary["rl_gain_points"] == pytest.approx(31.0)
    assert summary["samples_per_problem"] == {"stage2": 4, "stage3": 4}
    assert summary["seconds"] == {"task": 3.0, "stage2": 120.0}
    assert summary["training"]["stage2"] == {"steps": [1, 2], "reward": [0.3, 0.5], "accuracy": [0.25, 0.45]}
    assert summary["training"]["stage1"]["loss"] == [2.0, 1.0]


def test_a_later_launch_replaces_a_step_and_a_torn_line_is_skipped(tmp_path):
    stage = tmp_path / "stage2"
    write_metrics(stage, {1: {"critic/score/mean": 0.1}, 2: {"critic/score/mean": 0.2}}, "launch-a.jsonl")
    write_metrics(stage, {2: {"critic/score/mean": 0.9}}, "launch-b.jsonl")
    with open(stage / "metrics" / "launch-b.jsonl", "a") as handle:
        handle.write('{"step": 3, "data": {"critic/sc')  # killed mid-write
    import os

    os.utime(stage / "metrics" / "launch-a.jsonl", (1, 1))
    steps = read_metrics(stage)
    assert sorted(steps) == [1, 2] and steps[2]["critic/score/mean"] == 0.9


def test_heldout_keys_are_verl_acc_means_only():
    steps = {3: {"val-core/a/b/acc/mean@8": 0.5, "val-core/x/acc/maj@8/mean": 0.9, "val-core/x/acc/best@8/mean": 1}}
    assert heldout_by_step(steps) == {3: {"a/b": 0.5}}


def test_the_table_and_the_files(run_dir, capsys):
    assert main(["--run-dir", str(run_dir), "--seconds", "total=600"]) == 0
    out = capsys.readouterr().out
    assert "RL (stages 2 + 3) changed the mean held-out accuracy by +31.0 points" in out
    lines = heldout_table(json.loads((run_dir / "summary.json").read_text()))
    row = next(line for line in lines if line.strip().startswith("digits_text"))
    assert row.split()[1:] == ["40.0", "45.0", "70.0"]
    assert any("digits_image_blank (control)" in line for line in lines)
    assert (run_dir / "learning.png").stat().st_size > 10_000
    assert json.loads((run_dir / "summary.json").read_text())["seconds"]["total"] == 600


def test_the_decoding_of_the_evaluations_is_recorded_and_shown(run_dir, capsys):
    args = ["--run-dir", str(run_dir), "--no-plot", "--decoding", "temperature=0.3", "--decoding", "top_p=0.95"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "samples per problem, temperature 0.3, top_p 0.95)" in out
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["evaluation_decoding"] == {"temperature": "0.3", "top_p": "0.95"}
    with pytest.raises(SystemExit):
        main(["--run-dir", str(run_dir), "--decoding", "temperature"])
    assert "expected NAME=VALUE, got 'temperature'" in capsys.readouterr().err


def test_bad_seconds_argument_names_itself(run_dir, capsys):
    with pytest.raises(SystemExit):
        main(["--run-dir", str(run_dir), "--seconds", "total"])
    assert "NAME=SECONDS" in capsys.readouterr().err


def test_progress_line_shows_reward_and_heldout():
    line = progress_line("stage 2", 10, {"critic/score/mean": 0.4567, **val(0.5, 0.25, 0.1)}, 75)
    assert "step   10" in line and "reward 0.46" in line and "(1:15)" in line
    assert "digits_image 50.0%" in line and "digits_text 25.0%" in line


def test_presample_metrics_reach_the_progress_line_and_the_table(run_dir, capsys):
    write_metrics(
        run_dir / "stage3",
        {
            1: {"critic/score/mean": 0.6, "presample/skipped_share": 0.0, "presample/rollouts_per_trained_row": 2.0},
            2: {"critic/score/mean": 0.7, "presample/skipped_share": 0.5, "presample/rollouts_per_trained_row": 1.5},
        },
        name="launch-2.jsonl",
    )
    assert "skipped 0.50" in progress_line("stage 3", 2, {"presample/skipped_share": 0.5}, 10)
    assert main(["--run-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "stage3 presample: 25% of prompts skipped before rollout, 1.50 rollouts generated per row trained" in out
    assert "presample" not in json.dumps(json.loads((run_dir / "summary.json").read_text())["training"]["stage2"])


def test_the_base_models_evaluation_is_its_own_column(run_dir):
    # recipes/evaluate.sh (verl's val_only) writes the base model's figures at step 0 of run/base_eval.
    write_metrics(run_dir / "base_eval", {0: val(0.05, 0.10, 0.07, k=2)})
    summary = build_summary(run_dir)
    base = {"digits_image": 0.05, "digits_text": 0.10, "digits_image_blank": 0.07}
    assert summary["heldout_accuracy"]["base"] == base
    assert summary["heldout_read_at_step"]["base"] == 0
    assert summary["heldout_mean"]["base"] == pytest.approx(0.075)
    assert summary["samples_per_problem"] == {"base": 2, "stage2": 4, "stage3": 4}
    # The base does not enter RL's gain: stage 3 over stage 1 only.
    assert summary["rl_gain_points"] == pytest.approx(31.0)
    lines = heldout_table(summary)
    assert lines[0].startswith("Held-out accuracy, % (mean over k=2/4 samples per problem")
    assert lines[1].split()[1:] == ["base", "stage1", "stage2", "stage3"]
    assert lines[2].split() == ["digits_image", "5.0", "20.0", "50.0", "52.0"]
    assert lines[-2].split()[-4:] == ["7.5", "30.0", "47.5", "61.0"]
