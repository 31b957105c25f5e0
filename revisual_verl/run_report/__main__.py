"""Report on a recipe run: held-out accuracy per stage, training reward per step; writes summary.json and
learning.png into the run directory.

    python -m revisual_verl.run_report --run-dir outputs/quickstart/run [--seconds generate=3.1 ...]
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from revisual_verl.run_report.summary import build_summary, is_control, write_summary

MODELS = ("base", "stage1", "stage2", "stage3")


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _seconds(text: str) -> tuple[str, float]:
    try:
        name, value = _setting(text)
        return name, float(value)
    except (argparse.ArgumentTypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected NAME=SECONDS, got {text!r}") from None


def heldout_table(summary: dict) -> list[str]:
    accuracy = summary["heldout_accuracy"]
    models = [model for model in MODELS if model in accuracy]
    if not models:
        return ["Held-out accuracy: no validation metrics found (trainer.test_freq / val_before_train off?)"]
    ks = sorted(set(summary["samples_per_problem"].values()))
    sets = sorted({source for per_set in accuracy.values() for source in per_set}, key=lambda s: (is_control(s), s))
    width = max(len(s) + 10 for s in sets + ["mean (controls left out)"])
    decoding = "".join(f", {name} {value}" for name, value in summary.get("evaluation_decoding", {}).items())
    lines = [f"Held-out accuracy, % (mean over k={'/'.join(map(str, ks))} samples per problem{decoding})"]
    lines.append(f"  {'set':<{width}}" + "".join(f"{model:>9}" for model in models))
    for source in sets:
        name = source + (" (control)" if is_control(source) else "")
        cells = "".join(
            f"{100 * accuracy[model][source]:9.1f}" if source in accuracy[model] else f"{'-':>9}" for model in models
        )
        lines.append(f"  {name:<{width}}{cells}")
    means = summary["heldout_mean"]
    cells = "".join(f"{100 * means[model]:9.1f}" if model in means else f"{'-':>9}" for model in models)
    lines.append(f"  {'mean (controls left out)':<{width}}{cells}")
    if "rl_gain_points" in summary:
        lines.append(
            f"  RL (stages 2 + 3) changed the mean held-out accuracy by {summary['rl_gain_points']:+.1f} points"
        )
    return lines


def reward_table(summary: dict) -> list[str]:
    lines = []
    for stage in ("stage2", "stage3"):
        per_stage = summary["training"].get(stage)
        if not per_stage or "reward" not in per_stage:
            continue
        values = " ".join(f"{value:.2f}" for value in per_stage["reward"])
        label = f"  {stage} reward per step: "
        lines += textwrap.wrap(values, width=100, initial_indent=label, subsequent_indent=" " * len(label))
        if per_stage.get("presample_skipped"):
            skipped = 100 * sum(per_stage["presample_skipped"]) / len(per_stage["presample_skipped"])
            lines.append(
                f"  {stage} presample: {skipped:.0f}% of prompts skipped before rollout, "
                f"{per_stage['rollouts_per_trained_row'][-1]:.2f} rollouts generated per row trained"
            )
    return ["Training reward (mean over the step's responses)"] + lines if lines else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m revisual_verl.run_report", description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True, type=Path, help="OUTPUT_DIR of run_all.sh (holds stage1..3)")
    parser.add_argument(
        "--seconds",
        action="append",
        type=_seconds,
        default=[],
        metavar="NAME=SECONDS",
        help="a timing to record in summary.json beside the stages' own (repeatable)",
    )
    parser.add_argument(
        "--decoding",
        action="append",
        type=_setting,
        default=[],
        metavar="NAME=VALUE",
        help="a setting of the held-out evaluations' decoding (temperature=0.3), recorded and shown (repeatable)",
    )
    parser.add_argument("--no-plot", action="store_true", help="do not draw learning.png")
    args = parser.parse_args(argv)
    if not args.run_dir.is_dir():
        print(f"error: {args.run_dir} is not a directory", file=sys.stderr)
        return 2
    summary = build_summary(args.run_dir, dict(args.seconds))
    if args.decoding:
        summary["evaluation_decoding"] = dict(args.decoding)
    path = write_summary(args.run_dir, summary)
    print("\n".join(heldout_table(summary)))
    table = reward_table(summary)
    if table:
        print("\n".join(table))
    print(f"summary: {path}")
    if not args.no_plot:
        from revisual_verl.run_report.plot import plot_learning

        print(f"picture: {plot_learning(args.run_dir, decoding=summary.get('evaluation_decoding'))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
