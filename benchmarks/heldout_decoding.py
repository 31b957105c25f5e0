"""The learning run's held-out gain at another decoding: a benchmark's finished runs evaluated again.

    python benchmarks/heldout_decoding.py --from outputs/quickstart --runs outputs/pad_vs_grpo \\
        [--temperature 0.3] [--top-p 0.95] [--samples 4]

``--from`` is the learning run whose stage-1 model every run of ``--runs`` (``benchmarks/pad_vs_grpo.py``'s
``--out``) started from. The stage-1 model and each run's stage-3 model are evaluated on the held-out sets with
``recipes/evaluate.sh`` (verl's val_only, the recipe's verifier) at the decoding given; the table puts each run's
gain at that decoding beside the gain the run recorded at its own (``run/summary.json``, read from its
validations). The last line compares the two over all runs:
``decoding: held-out gain at temperature T +X.X +- s, recorded (temperature R) +Y.Y +- s points over N runs``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETS = ("digits_image", "digits_text")  # the mean leaves the blank-picture control out, as the run's report does
# How recipes/learning_run.sh shows the task to every evaluation (VIEW_ARGS there): one vision token per digit,
# short prompts and answers, the length bonus paid to correct answers only.
VIEW_ARGS = [
    "data.mm_processor_kwargs.min_pixels=784",
    "data.mm_processor_kwargs.max_pixels=784",
    "data.max_prompt_length=128",
    "reward.reward_kwargs.length_needs_correct=true",
]
RESPONSE_LENGTH = 48  # data.max_response_length of the learning run


def evaluate(model: Path, data: Path, out: Path, args) -> dict[str, float]:
    """{set: mean@k in %} of ``model`` on the learning run's held-out sets, through recipes/evaluate.sh."""
    if not (out / "eval.json").is_file():
        env = {
            **os.environ,
            "DEVICE": "cpu",
            "OUT_DIR": str(out),
            "EVAL_SAMPLES": str(args.samples),
            "EVAL_TEMPERATURE": str(args.temperature),
            "EVAL_TOP_P": str(args.top_p),
            "EVAL_RESPONSE_LENGTH": str(RESPONSE_LENGTH),
        }
        sets = [str(data / name) for name in ("heldout_image", "heldout_image_blank", "heldout_text")]
        command = ["bash", str(ROOT / "recipes" / "evaluate.sh"), str(model), *sets, "--", *VIEW_ARGS]
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out.parent / f"{out.name}.log", "w") as log:
            if subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
                raise RuntimeError(f"evaluating {model} failed: see {log.name}")
    report = json.loads((out / "eval.json").read_text())
    return {name: entry["mean_at_k"] for name, entry in report["benchmarks"].items()}


def mean_points(per_set: dict[str, float]) -> float:
    return statistics.mean(per_set[name] for name in SETS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, required=True, help="the runs' source run")
    parser.add_argument("--runs", type=Path, required=True, help="a benchmark's --out: one learning run per folder")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "heldout_decoding")
    parser.add_argument("--temperature", type=float, default=0.3)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--samples", type=int, default=4, help="k samples per problem (default 4)")
    args = parser.parse_args(argv)
    stage1 = args.source / "run" / "stage1" / "hf"
    if not (stage1 / "config.json").is_file():
        parser.error(f"{stage1} is not a merged stage-1 model")
    runs = sorted(p for p in args.runs.iterdir() if (p / "run" / "stage3" / "hf" / "config.json").is_file())
    if not runs:
        parser.error(f"no finished run (run/stage3/hf) under {args.runs}")
    tag = f"t{args.temperature}-p{args.top_p}-k{args.samples}"
    data = args.source / "data"
    print(f"evaluating the stage-1 model and {len(runs)} stage-3 models ({tag}) ...", file=sys.stderr, flush=True)
    first = evaluate(stage1, data, args.out / tag / "stage1", args)
    start = mean_points(first)
    rows, gains, recorded = [("stage 1 (the start)", first, None, None)], [], []
    for run in runs:
        per_set = evaluate(run / "run" / "stage3" / "hf", data, args.out / tag / run.name, args)
        gain = mean_points(per_set) - start
        summary = json.loads((run / "run" / "summary.json").read_text())
        rows.append((run.name, per_set, gain, summary.get("rl_gain_points")))
        gains.append(gain)
        if summary.get("rl_gain_points") is not None:
            recorded.append(summary["rl_gain_points"])
    print(f"stage 1 at temperature {args.temperature}, top_p {args.top_p}, k={args.samples}: mean {start:.1f}%")
    print(f"{'run':<22}{'image %':>9}{'text %':>9}{'control %':>11}{'gain':>8}{'recorded gain':>15}")
    for name, per_set, gain, was in rows:
        cells = "".join(f"{per_set[s]:>{w}.1f}" for s, w in zip((*SETS, "digits_image_blank"), (9, 9, 11)))
        gain_text = "-" if gain is None else f"{gain:+.1f}"
        was_text = "-" if was is None else f"{was:+.1f}"
        print(f"{name:<22}{cells}{gain_text:>8}{was_text:>15}")

    def spread(values: list[float]) -> str:
        return f"{statistics.mean(values):+.1f} +- {statistics.stdev(values) if len(values) > 1 else 0.0:.1f}"

    recorded_at = {
        json.loads((r / "run" / "summary.json").read_text()).get("evaluation_decoding", {}).get("temperature", "1.0")
        for r in runs
    }
    print(
        f"decoding: held-out gain at temperature {args.temperature} {spread(gains)}, recorded (temperature "
        f"{'/'.join(sorted(recorded_at))}) {spread(recorded) if recorded else 'none'} points over {len(runs)} runs"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
