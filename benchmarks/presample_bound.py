"""How much any pre-rollout prompt selection could save on the learning task: each training prompt's chance of a
uniform group, measured on the models a presample benchmark's PAD runs start from and end with.

    python benchmarks/presample_bound.py --runs outputs/presample [--samples 64] [--batch 8]

``--runs`` is ``benchmarks/presample.py``'s ``--out``. For each of its ``pad-seed*`` runs (stage 3 without
presample) the stage-2 model it starts from and its stage-3 model are evaluated on that run's own training prompts
with ``recipes/evaluate.sh`` (verl's val_only) and the run's reward overrides: ``data.val_max_samples`` with the
run's ``data.seed`` makes verl's dataset cut the same rows that ``data.train_max_samples`` cut in training (same
class, file, seed and draw, before any filter). ``--samples`` responses per prompt at the run's training decoding.
A prompt's chance u that a group of ``--group`` responses is uniform (every score equal: PAD trains none of it) is
estimated without bias from its score counts as sum over scores of C(count, g) / C(n, g).

Per model, U is the uniform share of a random batch of ``--batch`` distinct prompts (what PAD generates without
presample), and an oracle that knows each u generates instead:

- ``U*``, the batch of the ``--batch`` least uniform prompts: no selection of distinct prompts can do better at
  this model, so (1 - U*) / (1 - U) bounds its gain on rollouts per effective row. Ranked and measured on the same
  responses, U* is biased low by the noise of the estimates (an upper bound, loose);
- ``U* split``: ranked on half of each prompt's responses and measured on the other half (mean over ``--splits``
  random halves): what ranking by a finite history can actually get;
- ``U1 split``: the batch filled with the single least uniform prompt, repeated (a selection that may repeat a
  prompt within a step, as a sampler that skips nearly everything does), ranked and measured on halves.

Assumes PAD's rule as the learning run sets it: rows of a non-uniform group are trained (|A| >= t_low holds for
every such row with this task's scores) and no upper bound on |A| (``algorithm.pad.t_high=null``; a run with one
is named, since rows above it are dropped at rates that depend on the prompt). It bounds selection at a fixed model,
not the training path that selection would change. Last line:
``presample bound: at the end of stage 3 U -> U* (xR), split U*s (xRs), one prompt U1s (xR1); at the start ...``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shlex
import statistics
import sys
from collections import Counter, defaultdict
from math import comb
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from heldout_decoding import evaluate  # noqa: E402

STAGE_COMMAND = re.compile(r"^\[revisual\] stage 3: \S+ -m revisual_verl\.main_ppo (.*)$")
# The run's own settings that decide which prompts it trained on and how they were scored.
KEPT_PREFIXES = ("reward.", "data.seed=", "data.shuffle=", "data.mm_processor_kwargs.", "data.max_prompt_length=")


def stage_settings(stage_dir: Path) -> tuple[dict[str, str], list[str]]:
    """The key=value overrides of a stage-3 run, and those that choose and score its prompts, from the last command
    its recipe printed in train.log (a resumed run appends another)."""
    log = stage_dir / "train.log"
    commands = [m.group(1) for m in map(STAGE_COMMAND.match, log.read_text(errors="replace").splitlines()) if m]
    if not commands:
        raise SystemExit(f"{log} has no '[revisual] stage 3: ... -m revisual_verl.main_ppo' line: not a stage 3")
    words = shlex.split(commands[-1])
    settings = dict(word.split("=", 1) for word in words if "=" in word and not word.startswith("++"))
    if "data.train_max_samples" not in settings:
        raise SystemExit(f"{log}: the run used every training prompt (no data.train_max_samples), not a presample run")
    if settings.get("data.shuffle", "true").lower() != "false" and settings.get("data.seed", "null") == "null":
        raise SystemExit(f"{log}: data.seed is unset, so its training cut was unseeded and cannot be drawn again")
    return settings, [word for word in words if word.startswith(KEPT_PREFIXES)]


def read_prompts(generations: Path, samples: int) -> list[tuple[list[float], list[float]]]:
    """Each prompt's (response scores, response accuracies) in an evaluation's dump (verl's uid is
    <prompt uid>_<sample>_<turn>; the accuracy is the reward's ``acc``, the score where it reports none)."""
    prompts: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for dump in sorted(generations.glob("*.jsonl")):
        for line in dump.read_text().splitlines():
            row = json.loads(line)
            scores, accuracies = prompts[row["uid"].rsplit("_", 2)[0]]
            scores.append(float(row["score"]))
            accuracies.append(float(row.get("acc", row["score"])))
    for prompt, (scores, _) in prompts.items():
        if len(scores) != samples:
            raise SystemExit(f"{generations}: prompt {prompt} has {len(scores)} responses, not {samples}")
    return list(prompts.values())


def uniform_chance(scores: list[float], group: int) -> float:
    """Unbiased estimate of the chance that ``group`` responses drawn from this prompt all score the same."""
    return sum(comb(count, group) for count in Counter(scores).values()) / comb(len(scores), group)


def oracle_shares(prompts: list[list[float]], group: int, batch: int, splits: int, seed: int = 0) -> dict:
    """U, U* (in-sample), U* split and U1 split of the module's docstring."""
    chances = sorted(uniform_chance(scores, group) for scores in prompts)
    rng = random.Random(seed)
    split_batch, split_one = [], []
    for _ in range(splits):
        ranked, measured = [], []
        for scores in prompts:
            shuffled = rng.sample(scores, len(scores))
            half = len(shuffled) // 2
            ranked.append(uniform_chance(shuffled[:half], group))
            measured.append(uniform_chance(shuffled[half:], group))
        order = sorted(range(len(prompts)), key=ranked.__getitem__)
        split_batch.append(statistics.mean(measured[i] for i in order[:batch]))
        split_one.append(measured[order[0]])
    return {
        "U": statistics.mean(chances),
        "U*": statistics.mean(chances[:batch]),
        "U* split": statistics.mean(split_batch),
        "U1 split": statistics.mean(split_one),
    }


def gain(shares: dict, key: str) -> float:
    return (1 - shares[key]) / (1 - shares["U"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True, help="benchmarks/presample.py's --out")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "presample_bound")
    parser.add_argument("--samples", type=int, default=64, help="responses per prompt (default 64)")
    parser.add_argument("--group", type=int, default=8, help="responses per group in training (rollout.n, 8)")
    parser.add_argument("--batch", type=int, default=8, help="prompts per training step (data.train_batch_size, 8)")
    parser.add_argument("--splits", type=int, default=200, help="random halvings for the split estimates (200)")
    args = parser.parse_args(argv)
    runs = sorted(run for run in args.runs.glob("pad-seed*") if (run / "run" / "stage3" / "hf").is_dir())
    if not runs:
        parser.error(f"no finished pad-seed* run (run/stage3/hf) under {args.runs}")
    if args.samples < 2 * args.group:
        parser.error("--samples must be at least twice --group (the split estimates use halves)")

    rows, by_stage = [], defaultdict(list)
    for run in runs:
        settings, kept = stage_settings(run / "run" / "stage3")
        if settings.get("algorithm.pad.t_high", "null") != "null":
            print(f"{run.name}: algorithm.pad.t_high={settings['algorithm.pad.t_high']}: not a bound", file=sys.stderr)
        prompts = int(settings["data.train_max_samples"])
        train_files = [Path(f) for f in settings["data.train_files"].strip("[]").split(",")]
        decoding = argparse.Namespace(
            samples=args.samples,
            temperature=float(settings.get("actor_rollout_ref.rollout.temperature", 1.0)),
            top_p=float(settings.get("actor_rollout_ref.rollout.top_p", 1.0)),
            response_length=int(settings["data.max_response_length"]),
        )
        overrides = [*kept, f"data.val_max_samples={prompts}"]
        for stage in ("stage2", "stage3"):
            out = args.out / run.name / stage
            print(f"{run.name}: the {stage} model on its {prompts} training prompts ...", file=sys.stderr, flush=True)
            evaluate(run / "run" / stage / "hf", train_files, out, decoding, overrides)
            evaluated = read_prompts(out / "generations", args.samples)
            if len(evaluated) != prompts:
                raise SystemExit(f"{out}: {len(evaluated)} prompts evaluated, the run trained on {prompts}")
            shares = oracle_shares([scores for scores, _ in evaluated], args.group, args.batch, args.splits)
            by_stage[stage].append(shares)
            accuracy = statistics.mean(value for _, accuracies in evaluated for value in accuracies)
            rows.append((run.name, stage, accuracy, shares))

    columns = ("U*", "U* split", "U1 split")
    print(f"{'run':<14}{'model':<8}{'right %':>9}{'U':>7}" + "".join(f"{name:>10}{'gain':>7}" for name in columns))
    for name, stage, accuracy, shares in rows:
        cells = "".join(f"{shares[key]:>10.2f}{'x' + format(gain(shares, key), '.2f'):>7}" for key in columns)
        print(f"{name:<14}{stage:<8}{100 * accuracy:>9.1f}{shares['U']:>7.2f}{cells}")

    def summary(stage: str) -> str:
        mean = {k: statistics.mean(s[k] for s in by_stage[stage]) for k in ("U", "U*", "U* split", "U1 split")}
        ratio = {k: statistics.mean(gain(s, k) for s in by_stage[stage]) for k in ("U*", "U* split", "U1 split")}
        return (
            f"{mean['U']:.2f} -> {mean['U*']:.2f} (x{ratio['U*']:.2f}), split {mean['U* split']:.2f} "
            f"(x{ratio['U* split']:.2f}), one prompt {mean['U1 split']:.2f} (x{ratio['U1 split']:.2f})"
        )

    print(f"presample bound: at the end of stage 3 {summary('stage3')}; at the start {summary('stage2')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
