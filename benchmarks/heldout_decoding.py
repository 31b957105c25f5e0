"""The learning run's held-out gain at another decoding: a benchmark's finished runs evaluated again.

    python benchmarks/heldout_decoding.py --from outputs/quickstart --runs outputs/pad_vs_grpo \\
        [--temperature 0.3] [--top-p 0.95] [--samples 4]

``--runs`` is ``benchmarks/pad_vs_grpo.py``'s ``--out``: one learning run per folder (failed runs, moved aside as
``*-failed-*``, are left out), each holding the stage-1 model it started from (``run/stage1/hf``) and its stage-3
model. ``--from`` is the learning run they were made from: its held-out sets are the ones evaluated. Each distinct
stage-1 model (by its weights' sha256) and each run's stage-3 model are evaluated on the held-out sets with
``recipes/evaluate.sh`` (verl's val_only, the recipe's verifier) at the decoding given, and a run's gain is its
stage-3 mean minus its own stage-1 mean. The table puts that beside the gain the run recorded at its own decoding
(``run/summary.json``, read from its validations; there each run's stage-1 figure is its own step-0 validation,
here runs from one stage-1 model share one evaluation of it). The last line compares the two over all runs:
``decoding: held-out gain at temperature T +X.X +- s, recorded (temperature R) +Y.Y +- s points over N runs``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
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


def evaluate(model: Path, sets: list[Path], out: Path, args, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """{set: mean@k in %} of ``model`` on prepared ``sets`` (folders or parquet files) through recipes/evaluate.sh,
    shown the task as the learning run shows it, then ``overrides``; its generations land in ``out/generations``.
    ``args`` gives samples, temperature, top_p and optionally response_length. An evaluation already in ``out`` is
    read again only when it was made of the same weights with the same settings (``out/made_with.json``)."""
    response_length = getattr(args, "response_length", RESPONSE_LENGTH)
    made_with = {
        "model": str(model),
        "weights": weights_digest(model),
        "sets": [str(path) for path in sets],
        "overrides": [*VIEW_ARGS, *overrides],
        "decoding": [args.samples, args.temperature, args.top_p, response_length],
    }
    stamp = out / "made_with.json"
    if not ((out / "eval.json").is_file() and stamp.is_file() and json.loads(stamp.read_text()) == made_with):
        shutil.rmtree(out, ignore_errors=True)
        env = {
            **os.environ,
            "DEVICE": "cpu",
            "OUT_DIR": str(out),
            "EVAL_SAMPLES": str(args.samples),
            "EVAL_TEMPERATURE": str(args.temperature),
            "EVAL_TOP_P": str(args.top_p),
            "EVAL_RESPONSE_LENGTH": str(response_length),
            "DRY_RUN": "0",
            "PYTHON": sys.executable,
        }
        command = ["bash", str(ROOT / "recipes" / "evaluate.sh"), str(model), *map(str, sets), "--"]
        command += made_with["overrides"]
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out.parent / f"{out.name}.log", "w") as log:
            if subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
                raise RuntimeError(f"evaluating {model} failed: see {log.name}")
        stamp.write_text(json.dumps(made_with, indent=2))
    report = json.loads((out / "eval.json").read_text())
    return {name: entry["mean_at_k"] for name, entry in report["benchmarks"].items()}


def heldout_sets(data: Path) -> list[Path]:
    return [data / name for name in ("heldout_image", "heldout_image_blank", "heldout_text")]


def weights_digest(model: Path) -> str:
    digest = hashlib.sha256()
    for weights in sorted(model.glob("*.safetensors")):
        with open(weights, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def finished_runs(folder: Path) -> list[Path]:
    """The runs under ``folder`` with a stage-1 model, a stage-3 model and a report; failed ones left out."""
    return sorted(
        run
        for run in folder.iterdir()
        if "-failed-" not in run.name
        and all((run / "run" / part).is_file() for part in ("stage1/hf/config.json", "stage3/hf/config.json"))
        and (run / "run" / "summary.json").is_file()
    )


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
    data = args.source / "data"
    if not all((data / name / "train.parquet").is_file() for name in ("heldout_image", "heldout_text")):
        parser.error(f"{data} holds no prepared held-out sets: --from is a learning run's WORK_DIR")
    if not args.runs.is_dir():
        parser.error(f"{args.runs} is not a directory")
    runs = finished_runs(args.runs)
    if not runs:
        parser.error(f"no finished run (run/stage1/hf, run/stage3/hf, run/summary.json) under {args.runs}")
    tag = f"t{args.temperature}-p{args.top_p}-k{args.samples}"
    print(f"evaluating the stage-1 and stage-3 models of {len(runs)} runs ({tag}) ...", file=sys.stderr, flush=True)
    starts: dict[str, tuple[str, dict[str, float]]] = {}  # weights' digest -> (name, {set: %})
    rows, gains, recorded = [], [], []
    for run in runs:
        stage1 = run / "run" / "stage1" / "hf"
        digest = weights_digest(stage1)
        if digest not in starts:
            name = f"stage1-{digest[:8]}"
            starts[digest] = (name, evaluate(stage1, heldout_sets(data), args.out / tag / name, args))
            rows.append((name, starts[digest][1], None, None))
        per_set = evaluate(run / "run" / "stage3" / "hf", heldout_sets(data), args.out / tag / run.name, args)
        gain = mean_points(per_set) - mean_points(starts[digest][1])
        summary = json.loads((run / "run" / "summary.json").read_text())
        rows.append((run.name, per_set, gain, summary.get("rl_gain_points")))
        gains.append(gain)
        if summary.get("rl_gain_points") is not None:
            recorded.append(summary["rl_gain_points"])
    for name, per_set in starts.values():
        decoding = f"temperature {args.temperature}, top_p {args.top_p}, k={args.samples}"
        print(f"{name} (where runs start) at {decoding}: mean {mean_points(per_set):.1f}%")
    print(f"{'run':<22}{'image %':>9}{'text %':>9}{'control %':>11}{'gain':>8}{'recorded gain':>15}")
    for name, per_set, gain, was in rows:
        cells = "".join(f"{per_set[s]:>{w}.1f}" for s, w in zip((*SETS, "digits_image_blank"), (9, 9, 11)))
        gain_text = "-" if gain is None else f"{gain:+.1f}"
        was_text = "-" if was is None else f"{was:+.1f}"
        print(f"{name:<22}{cells}{gain_text:>8}{was_text:>15}")

    def spread(values: list[float]) -> str:
        return f"{statistics.mean(values):+.1f} +- {statistics.stdev(values) if len(values) > 1 else 0.0:.1f}"

    summaries = [json.loads((run / "run" / "summary.json").read_text()) for run in runs]
    recorded_at = sorted({summary.get("evaluation_decoding", {}).get("temperature", "1.0") for summary in summaries})
    recorded_text = spread(recorded) if recorded else "none"
    print(
        f"decoding: held-out gain at temperature {args.temperature} {spread(gains)}, recorded (temperature "
        f"{'/'.join(recorded_at)}) {recorded_text} points over {len(runs)} runs ({len(recorded)} recorded)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
