"""PAD against GRPO on the CPU learning run's task: the RL stages from one stage-1 model, per variant and seed.

    python benchmarks/pad_vs_grpo.py --from outputs/quickstart [--seeds 0 1 2] [--steps 20] [--variants released copies]

``--from`` is a finished (or at least stage-1-finished) learning run (recipes/learning_run.sh): its task,
prepared data, base model and ``run/stage1`` are reused, so every variant starts stages 2 and 3 from the
same stage-1 model, on the same data, with the same number of generated rollouts per step. The run's check of
its WORK_DIR applies: ``--from`` must be made by this tree with learning_run's default task and base settings
(or the same ones set in this benchmark's environment), or every run stops naming what differs. Variants:

- ``grpo``: verl's GRPO estimator in verl's own sync trainer (every rollout trained on);
- ``paper``: PAD as the paper states it (softmax priority, no replacement, rho 1, no upper bound on |A|);
- ``released``: PAD as the authors released it (the recipe's default: power priority, rho 1.5 with
  replacement, 0.03 <= |A| <= 0.97; a row drawn m times trained once with weight m);
- ``copies``: the same draw, a row drawn m times trained as m copies (``algorithm.pad.duplicates=copies``).

Each (variant, seed) is one ``recipes/learning_run.sh`` call in its own directory under ``--out``; the seed
sets the dataloader order, the rollout's sampling and PAD's draws. Prints a table of the held-out gain
(stage 3 mean - stage 1 mean, controls left out; mean and spread over seeds), wall-clock of stages 2 + 3,
and rows through the model per update step; the last line compares the three. A measurement, not a target:
tiny model, synthetic task.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from revisual_verl.run_report.metrics import read_metrics, series  # noqa: E402
from revisual_verl.run_report.summary import build_summary  # noqa: E402

VARIANTS = {
    "grpo": ["algorithm.adv_estimator=grpo", "trainer.v1.trainer_mode=sync"],
    "paper": [
        "algorithm.pad.priority=softmax",
        "algorithm.pad.rho=1.0",
        "algorithm.pad.replacement=false",
        "algorithm.pad.t_high=null",
    ],
    "released": [],
    # The released draw with each duplicate stored and trained as a copy (the authors' trainer) instead of
    # one row of weight m (algorithm.pad.duplicates=weights, the default).
    "copies": ["algorithm.pad.duplicates=copies"],
}
REUSED = ("task", "data", "base-model")


def prepare_work_dir(source: Path, work_dir: Path, stages: tuple[str, ...] = ("stage1",)) -> None:
    """A learning-run directory whose first stages are the source's: they are skipped, the later ones run from them."""
    work_dir.mkdir(parents=True, exist_ok=True)
    for name in REUSED:
        link = work_dir / name
        if not link.exists():
            link.symlink_to((source / name).resolve(), target_is_directory=True)
    # The base model's evaluation too, when the source has one: the report's base column, not run again.
    for stage in (*stages, "base_eval"):
        copied = work_dir / "run" / stage
        if not copied.exists() and (stage != "base_eval" or (source / "run" / stage).is_dir()):
            shutil.copytree(source / "run" / stage, copied, ignore=shutil.ignore_patterns("checkpoints"))


def rows_per_step(stage_dir: Path) -> float | None:
    """Rows PAD's update pass ran the model on, per step (its distilled batch, padding included); None for
    verl's own trainer, whose update runs every generated response."""
    _, values = series(read_metrics(stage_dir), "pad/model_rows")
    return statistics.mean(values) if values else None


def run_learning(work_dir: Path, overrides: list[str], env: dict[str, str], name: str) -> float:
    """recipes/learning_run.sh in ``work_dir`` with ``overrides``; its wall-clock seconds."""
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(ROOT / "recipes" / "learning_run.sh"), *overrides],
        # BASE_EVAL=0: the base model is the source run's, evaluated there (prepare_work_dir copies it).
        env={**os.environ, "WORK_DIR": str(work_dir), "BASE_EVAL": "0", **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")
    return time.monotonic() - started


def run_one(source: Path, out: Path, variant: str, seed: int, steps: int, log) -> dict:
    work_dir = out / f"{variant}-seed{seed}"
    prepare_work_dir(source, work_dir)
    overrides = [
        "--rl",
        f"data.seed={seed}",
        f"actor_rollout_ref.rollout.seed={seed}",
        f"algorithm.pad.seed={seed}",
        *VARIANTS[variant],
    ]
    log(f"{variant} seed {seed}: stages 2-3 in {work_dir} ...")
    seconds = run_learning(work_dir, overrides, {"RL_STEPS": str(steps)}, f"{variant} seed {seed}")
    summary = build_summary(work_dir / "run")
    gain = summary.get("rl_gain_points")
    rows = [rows_per_step(work_dir / "run" / f"stage{stage}") for stage in (2, 3)]
    gain_text = "none (no held-out figures)" if gain is None else f"{gain:+.1f} points"
    log(f"{variant} seed {seed}: gain {gain_text} in {seconds:.0f} s")
    return {"variant": variant, "seed": seed, "gain": gain, "seconds": seconds, "rows_per_step": rows}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def seeded_runs_parser(doc: str, out_name: str) -> argparse.ArgumentParser:
    """The arguments every benchmark over learning-run variants and seeds takes."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, required=True, help="a learning run's WORK_DIR")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / out_name)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = seeded_runs_parser(__doc__, "pad_vs_grpo")
    parser.add_argument("--steps", type=int, default=20, help="stage-3 RL steps (stage 2: a quarter), as learning_run")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args(argv)
    if not (args.source / "run" / "stage1" / "hf" / "config.json").is_file():
        parser.error(f"{args.source}/run/stage1/hf is not a merged stage-1 model: run recipes/learning_run.sh first")

    results = []
    for variant in args.variants:
        for seed in args.seeds:
            try:
                results.append(run_one(args.source, args.out, variant, seed, args.steps, log))
            except RuntimeError as error:  # one failed run is reported; the others still run
                log(str(error))
                # Moved aside, so that a rerun into the same --out starts this run afresh.
                failed = args.out / f"{variant}-seed{seed}"
                failed.rename(failed.with_name(f"{failed.name}-failed-{time.strftime('%Y%m%d-%H%M%S')}"))
                results.append({"variant": variant, "seed": seed, "gain": None, "seconds": None, "failed": True})
            # Written after every run, so a stopped benchmark keeps what it measured.
            (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"{'variant':<10}{'seeds':>6}{'gain (points)':>22}{'seconds':>10}{'rows/step s2, s3':>20}")
    by_variant = {}
    for variant in args.variants:
        rows = [r for r in results if r["variant"] == variant]
        done = [r for r in rows if not r.get("failed")]
        gains = [r["gain"] for r in done if r["gain"] is not None]
        mean = statistics.mean(gains) if gains else float("nan")
        spread = statistics.stdev(gains) if len(gains) > 1 else 0.0
        seconds = statistics.mean(r["seconds"] for r in done) if done else float("nan")
        per_step = []
        for stage in range(2):
            values = [r["rows_per_step"][stage] for r in done if r["rows_per_step"][stage] is not None]
            per_step.append(f"{statistics.mean(values):.0f}" if values else "all")
        by_variant[variant] = (mean, seconds)
        seeds = f"{len(done)}" if len(done) == len(rows) else f"{len(done)}/{len(rows)}"
        print(f"{variant:<10}{seeds:>6}{f'{mean:+.1f} +- {spread:.1f}':>22}{seconds:>10.0f}{', '.join(per_step):>20}")
    if {"released", "copies"} <= set(by_variant):
        weights, copies = by_variant["released"], by_variant["copies"]
        print(
            f"duplicates: held-out gain weights {weights[0]:+.1f}, copies {copies[0]:+.1f} points; "
            f"time weights/copies {weights[1] / copies[1]:.2f}"
        )
    if {"grpo", "paper", "released"} <= set(by_variant):
        ratio = by_variant["released"][1] / by_variant["grpo"][1]
        print(
            f"pad vs grpo: held-out gain released {by_variant['released'][0]:+.1f}, "
            f"paper {by_variant['paper'][0]:+.1f}, grpo {by_variant['grpo'][0]:+.1f} points; "
            f"time released/grpo {ratio:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
