"""Pre-rollout skipping (GRESO-style presample) on the CPU learning run's task: stage 3 with PAD, with and
without ``algorithm.presample.enable``, from one stage-2 model, per seed.

    python benchmarks/presample.py --from outputs/quickstart [--seeds 0 1 2] [--steps 20] [--prompts 24]

``--from`` is a finished learning run (recipes/learning_run.sh): its task, data, base model and stages 1-2 are
reused, so both variants run stage 3 (text RL, the recipe's PAD as released) from the same stage-2 model with the
same number of generated rollouts (steps x 8 prompts x 8 responses; skipped prompts are replaced, the batch stays
full). The training set is cut to ``--prompts`` problems (``data.train_max_samples``) so that the run sees each
several times: the rule skips only prompts with history. ``--from`` must be made by this tree with learning_run's
default task and base settings (its WORK_DIR check), or every run stops naming what differs. Prints, per variant,
the rollouts generated per row trained (all steps' rows over the rows PAD trained: distinct selected rows), the
stage's wall-clock and the held-out accuracy after the stage (image and text sets, mean over K samples; controls
left out), with their spread over seeds; also rollouts per effective row (rows with |A| >= t_low, what PAD draws
from: under the released draw, rho 1.5 with replacement, the rows trained per step are fixed, so the waste shows
there first). ``--reuse`` reads finished runs again. Last line:
``presample: rollouts per trained row A -> B (xR), held-out accuracy X vs Y, time ratio T``.
A measurement on a tiny model and a synthetic task, not a target.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from pad_vs_grpo import log, prepare_work_dir, run_learning, seeded_runs_parser  # noqa: E402

from revisual_verl.run_report.metrics import read_metrics, series  # noqa: E402
from revisual_verl.run_report.summary import build_summary  # noqa: E402

VARIANTS = {"pad": [], "presample": ["algorithm.presample.enable=true"]}
PROMPTS_PER_STEP = 8  # learning_run's data.train_batch_size
CONTROL_MARK = "blank"


def metric_total(stage_dir: Path, key: str) -> float:
    _, values = series(read_metrics(stage_dir), key)
    return float(sum(values))


def run_one(
    source: Path,
    out: Path,
    variant: str,
    seed: int,
    steps: int,
    prompts: int,
    log,
    reuse: bool,
    extra: tuple[str, ...] = (),
) -> dict:
    work_dir = out / f"{variant}-seed{seed}"
    stage3 = work_dir / "run" / "stage3"
    if reuse and (stage3 / "hf" / "config.json").is_file():
        log(f"{variant} seed {seed}: reusing {work_dir}")
        return read_result(work_dir, variant, seed, float((stage3 / "seconds.txt").read_text().split()[0]))
    prepare_work_dir(source, work_dir, stages=("stage1", "stage2"))
    overrides = [
        "--stage3",
        f"data.seed={seed}",
        f"actor_rollout_ref.rollout.seed={seed}",
        f"algorithm.pad.seed={seed}",
        f"algorithm.presample.seed={seed}",
        f"data.train_max_samples={prompts}",
        # verl stops at total_epochs passes over the cut set (15 by default: 45 steps of 24 prompts) even when
        # total_training_steps asks for more, a pass being prompts // batch steps; enough passes that --steps decides.
        f"trainer.total_epochs={math.ceil(steps / (prompts // PROMPTS_PER_STEP)) + 1}",
        *extra,
        *VARIANTS[variant],
    ]
    log(f"{variant} seed {seed}: stage 3 in {work_dir} ...")
    seconds = run_learning(work_dir, overrides, {"RL_STEPS": str(steps), "STAGES": "3"}, f"{variant} seed {seed}")
    result = read_result(work_dir, variant, seed, seconds)
    log(
        f"{variant} seed {seed}: {result['rollouts_per_trained_row']:.2f} rollouts per trained row, "
        f"held-out {result['heldout_accuracy']:.1f}% in {seconds:.0f} s"
    )
    return result


def read_result(work_dir: Path, variant: str, seed: int, seconds: float) -> dict:
    stage3 = work_dir / "run" / "stage3"
    generated = metric_total(stage3, "pad/rows")
    trained = metric_total(stage3, "pad/distinct_selected_rows")
    effective = metric_total(stage3, "pad/effective_rows")
    accuracy = build_summary(work_dir / "run")["heldout_accuracy"]["stage3"]
    sets = [value for name, value in accuracy.items() if CONTROL_MARK not in name]
    return {
        "variant": variant,
        "seed": seed,
        "seconds": seconds,
        "generated_rows": generated,
        "trained_rows": trained,
        "effective_rows": effective,
        "rollouts_per_trained_row": generated / trained if trained else float("inf"),
        # Rows with |A| >= t_low, what PAD draws from: the waste that uniform groups cause, before the draw.
        "rollouts_per_effective_row": generated / effective if effective else float("inf"),
        "heldout_accuracy": 100 * statistics.mean(sets),
    }


def mean_spread(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main(argv: list[str] | None = None) -> int:
    parser = seeded_runs_parser(__doc__, "presample")
    parser.add_argument("--steps", type=int, default=20, help="stage-3 RL steps (8 prompts x 8 responses each)")
    parser.add_argument("--prompts", type=int, default=24, help="training problems kept (data.train_max_samples)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--reuse", action="store_true", help="read finished runs under --out again")
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Hydra override for stage 3 in both variants, e.g. reward.reward_kwargs.length_weight=0 (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.prompts < PROMPTS_PER_STEP:
        parser.error(f"--prompts must be at least one batch ({PROMPTS_PER_STEP})")
    bad = [item for item in args.override if "=" not in item]
    if bad:
        parser.error(f"--override takes KEY=VALUE, got {bad[0]!r}")
    if not (args.source / "run" / "stage2" / "hf" / "config.json").is_file():
        parser.error(f"{args.source}/run/stage2/hf is not a merged stage-2 model: run recipes/learning_run.sh first")

    results = [
        run_one(args.source, args.out, variant, seed, args.steps, args.prompts, log, args.reuse, tuple(args.override))
        for variant in args.variants
        for seed in args.seeds
    ]
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(
        f"{'variant':<11}{'seeds':>6}{'rollouts/trained row':>22}{'rollouts/effective row':>24}"
        f"{'held-out %':>16}{'seconds':>10}"
    )
    by_variant = {}
    for variant in args.variants:
        rows = [r for r in results if r["variant"] == variant]
        ratio = mean_spread([r["rollouts_per_trained_row"] for r in rows])
        effective = mean_spread([r["rollouts_per_effective_row"] for r in rows])
        accuracy = mean_spread([r["heldout_accuracy"] for r in rows])
        seconds = statistics.mean(r["seconds"] for r in rows)
        by_variant[variant] = (ratio[0], accuracy[0], seconds)
        print(
            f"{variant:<11}{len(rows):>6}{f'{ratio[0]:.2f} +- {ratio[1]:.2f}':>22}"
            f"{f'{effective[0]:.2f} +- {effective[1]:.2f}':>24}"
            f"{f'{accuracy[0]:.1f} +- {accuracy[1]:.1f}':>16}{seconds:>10.0f}"
        )
    if set(VARIANTS) <= set(by_variant):
        (a, x, t_pad), (b, y, t_pre) = by_variant["pad"], by_variant["presample"]
        print(
            f"presample: rollouts per trained row {a:.2f} -> {b:.2f} (x{a / b:.2f}), "
            f"held-out accuracy {x:.1f} vs {y:.1f}, time ratio {t_pre / t_pad:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
