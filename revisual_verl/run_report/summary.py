"""``<run dir>/summary.json``: held-out accuracy of every stage's model, training reward per step, seconds.

Which validation scores which model (verl validates before training, every ``test_freq`` steps and after
the last step):

- a stage's validation at step 0 (``trainer.val_before_train``) scores the model it started from, so
  stage 2's step 0 is the stage-1 model;
- a stage's last validation scores that stage's model (the last step's, when ``test_freq`` > 0);
- ``base`` comes from a ``val_only`` run on the model stage 1 started from, in ``<run dir>/base_eval``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from revisual_verl.run_report.metrics import heldout_by_step, read_metrics, samples_per_problem, series

STAGES = (1, 2, 3)
BASE_EVAL_DIR = "base_eval"


def is_control(source: str) -> bool:
    """A control set (images blanked) measures a shortcut, not skill: it is kept out of the mean."""
    return source.endswith("_blank")


def read_run(run_dir: Path) -> dict[str, dict[int, dict]]:
    """Every metrics directory of a run, read once: base_eval and stage1..3 (empty when absent)."""
    return {name: read_metrics(run_dir / name) for name in (BASE_EVAL_DIR, *(f"stage{k}" for k in STAGES))}


def heldout_accuracy(run: dict[str, dict[int, dict]]) -> tuple[dict[str, dict[str, float]], dict[str, int]]:
    """({model: {set: accuracy}}, {model: the step of the stage's metrics it was read from})."""
    accuracy: dict[str, dict[str, float]] = {}
    read_at: dict[str, int] = {}
    base = heldout_by_step(run[BASE_EVAL_DIR])
    if base:
        accuracy["base"] = base[max(base)]
        read_at["base"] = max(base)
    for stage in STAGES:
        by_step = heldout_by_step(run[f"stage{stage}"])
        if 0 in by_step and stage > 1 and f"stage{stage - 1}" not in accuracy:
            accuracy[f"stage{stage - 1}"] = by_step[0]
            read_at[f"stage{stage - 1}"] = 0
        last = max(by_step, default=0)
        if last > 0:
            accuracy[f"stage{stage}"] = by_step[last]
            read_at[f"stage{stage}"] = last
    return accuracy, read_at


def mean_accuracy(per_set: dict[str, float]) -> float | None:
    values = [value for source, value in per_set.items() if not is_control(source)]
    return sum(values) / len(values) if values else None


def stage_seconds(run_dir: Path) -> dict[str, float]:
    """Wall-clock seconds of each stage (training and merge), as run_all.sh recorded them."""
    out = {}
    for stage in STAGES:
        path = run_dir / f"stage{stage}" / "seconds.txt"
        try:
            out[f"stage{stage}"] = float(path.read_text().strip())
        except (OSError, ValueError):
            continue
    return out


def build_summary(run_dir: Path, extra_seconds: dict[str, float] | None = None) -> dict:
    run = read_run(run_dir)
    accuracy, read_at = heldout_accuracy(run)
    seconds = {**(extra_seconds or {}), **stage_seconds(run_dir)}
    summary: dict = {"heldout_accuracy": accuracy, "heldout_read_at_step": read_at, "seconds": seconds}
    means = {model: mean_accuracy(per_set) for model, per_set in accuracy.items()}
    summary["heldout_mean"] = {model: value for model, value in means.items() if value is not None}
    if means.get("stage1") is not None and means.get("stage3") is not None:
        summary["rl_gain_points"] = round(100 * (means["stage3"] - means["stage1"]), 2)
    ks = {}
    for model, stage in (("base", BASE_EVAL_DIR), ("stage2", "stage2"), ("stage3", "stage3")):
        k = samples_per_problem(run[stage])
        if k is not None:
            ks[model] = k
    summary["samples_per_problem"] = ks
    training = {}
    for stage in (2, 3):
        steps = run[f"stage{stage}"]
        per_stage = {}
        for name, key in (
            ("reward", "critic/score/mean"),
            ("accuracy", "reward/accuracy/mean"),
            ("presample_skipped", "presample/skipped_share"),
            ("rollouts_per_trained_row", "presample/rollouts_per_trained_row"),
        ):
            xs, ys = series(steps, key)
            if xs:
                per_stage[name] = [round(y, 4) for y in ys]
                per_stage["steps"] = xs
        if per_stage:
            training[f"stage{stage}"] = per_stage
    summary["training"] = training
    xs, ys = series(run["stage1"], "train/loss")
    if xs:
        summary["training"]["stage1"] = {"steps": xs, "loss": [round(y, 4) for y in ys if math.isfinite(y)]}
    return summary


def write_summary(run_dir: Path, summary: dict) -> Path:
    path = run_dir / "summary.json"
    path.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path
