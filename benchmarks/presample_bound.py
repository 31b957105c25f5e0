"""How much any pre-rollout prompt selection could save on the learning task: each training prompt's chance of a
uniform group, measured on the models a presample benchmark's PAD runs start from and end with.

    python benchmarks/presample_bound.py --runs outputs/presample [--samples 64] [--batch 8]

``--runs`` is ``benchmarks/presample.py``'s ``--out``. For each of its ``pad-seed*`` runs (stage 3 without
presample) the stage-2 model it starts from and its stage-3 model are evaluated on that run's own training prompts
(its ``data.train_files`` cut by ``data.train_max_samples`` with its ``data.seed``: verl's dataset picks the same
rows for validation through ``data.val_max_samples``) with ``recipes/evaluate.sh`` (verl's val_only, the run's
reward overrides), ``--samples`` responses per prompt at the training decoding (temperature 1.0, top_p 1.0). From
a prompt's score counts, its chance that a group of ``--group`` responses is uniform (all scores equal) is
estimated without bias as sum over scores of C(count, g) / C(n, g).

Two batch choices are compared per model: drawing ``--batch`` prompts at random (what PAD without presample
generates; the uniform share U) and an oracle that knows every prompt's chance and always generates the batch of
the least uniform ones (U*, the best any selection rule that reads history can do at that model). Since PAD trains
only on rows outside uniform groups, the oracle's rollouts per effective row can at most improve by
(1 - U*) / (1 - U); fewer rows trained under the released draw, which caps the distinct rows drawn, only lowers
it. Last line: ``presample bound: at the end of stage 3 uniform share U -> U* (xR at most), start U0 -> U0* (xR0)``.
A measurement on a tiny model and a synthetic task: it bounds skipping at a fixed model, not the training path.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from collections import Counter, defaultdict
from math import comb
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from heldout_decoding import evaluate  # noqa: E402

STAGE_COMMAND = "[revisual] stage 3: python -m revisual_verl.main_ppo "
# The run's own settings that decide which prompts it trained on and how they were scored.
KEPT_PREFIXES = ("reward.", "data.seed=", "data.shuffle=", "data.mm_processor_kwargs.", "data.max_prompt_length=")


def stage_settings(stage_dir: Path) -> tuple[str, int, list[str]]:
    """(data.train_files, data.train_max_samples, the overrides that choose and score its prompts) of a stage-3 run,
    read from the command its recipe printed first in train.log."""
    log = stage_dir / "train.log"
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith(STAGE_COMMAND):
            words = shlex.split(line[len(STAGE_COMMAND) :])
            break
    else:
        raise SystemExit(f"{log} has no '{STAGE_COMMAND}' line: not a learning run's stage 3")
    settings = dict(word.split("=", 1) for word in words if "=" in word and not word.startswith("++"))
    if "data.train_max_samples" not in settings:
        raise SystemExit(f"{log}: the run used every training prompt (no data.train_max_samples), not a presample run")
    kept = [word for word in words if word.startswith(KEPT_PREFIXES)]
    return settings["data.train_files"], int(settings["data.train_max_samples"]), kept


def uniform_chances(generations: Path, group: int) -> list[tuple[float, float]]:
    """(mean accuracy, chance that ``group`` responses all score the same) per prompt of an evaluation's dump."""
    scores: dict[str, list[float]] = defaultdict(list)
    accuracy: dict[str, list[float]] = defaultdict(list)
    for dump in sorted(generations.glob("*.jsonl")):
        for line in dump.read_text().splitlines():
            row = json.loads(line)
            prompt = row["uid"].rsplit("_", 2)[0]  # verl's uid is <prompt uid>_<sample>_<turn>
            scores[prompt].append(float(row["score"]))
            accuracy[prompt].append(float(row.get("acc", row["score"])))
    chances = []
    for prompt, values in scores.items():
        n = len(values)
        if n < group:
            raise SystemExit(f"{generations}: prompt {prompt} has {n} responses, fewer than a group of {group}")
        uniform = sum(comb(count, group) for count in Counter(values).values()) / comb(n, group)
        chances.append((statistics.mean(accuracy[prompt]), uniform))
    return chances


def batch_shares(chances: list[tuple[float, float]], batch: int) -> tuple[float, float]:
    """Uniform share of a random batch, and of the oracle's batch of the ``batch`` least uniform prompts."""
    uniform = sorted(chance for _, chance in chances)
    return statistics.mean(uniform), statistics.mean(uniform[:batch])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True, help="benchmarks/presample.py's --out")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "presample_bound")
    parser.add_argument("--samples", type=int, default=64, help="responses per prompt (default 64)")
    parser.add_argument("--group", type=int, default=8, help="responses per group in training (rollout.n, 8)")
    parser.add_argument("--batch", type=int, default=8, help="prompts per training step (data.train_batch_size, 8)")
    args = parser.parse_args(argv)
    runs = sorted(run for run in args.runs.glob("pad-seed*") if (run / "run" / "stage3" / "hf").is_dir())
    if not runs:
        parser.error(f"no finished pad-seed* run (run/stage3/hf) under {args.runs}")
    if args.samples < args.group:
        parser.error("--samples must be at least --group")
    # The training decoding: verl's rollout at temperature 1.0, the learning run's top_p 1.0.
    decoding = argparse.Namespace(samples=args.samples, temperature=1.0, top_p=1.0)

    rows, ratios = [], {"stage2": [], "stage3": []}
    for run in runs:
        train_files, prompts, kept = stage_settings(run / "run" / "stage3")
        overrides = [*kept, f"data.val_max_samples={prompts}"]
        for stage in ("stage2", "stage3"):
            out = args.out / run.name / stage
            print(f"{run.name}: evaluating the {stage} model on its {prompts} training prompts ...", file=sys.stderr)
            evaluate(run / "run" / stage / "hf", [Path(train_files)], out, decoding, overrides)
            chances = uniform_chances(out / "generations", args.group)
            if len(chances) != prompts:
                raise SystemExit(f"{out}: {len(chances)} prompts evaluated, the run trained on {prompts}")
            random_share, oracle_share = batch_shares(chances, args.batch)
            ratio = (1 - oracle_share) / (1 - random_share)
            ratios[stage].append((random_share, oracle_share, ratio))
            accuracy = statistics.mean(acc for acc, _ in chances)
            always = sum(chance >= 0.9 for _, chance in chances)
            rows.append((run.name, stage, accuracy, random_share, oracle_share, always, ratio))

    print(f"{'run':<14}{'model':<8}{'accuracy %':>12}{'uniform U':>11}{'oracle U*':>11}{'U >= 0.9':>10}{'bound':>8}")
    for name, stage, accuracy, random_share, oracle_share, always, ratio in rows:
        print(
            f"{name:<14}{stage:<8}{100 * accuracy:>12.1f}{random_share:>11.2f}{oracle_share:>11.2f}"
            f"{always:>10}{f'x{ratio:.2f}':>8}"
        )

    def mean_of(stage: str, index: int) -> float:
        return statistics.mean(entry[index] for entry in ratios[stage])

    end, start = (f"{mean_of(s, 0):.2f} -> {mean_of(s, 1):.2f} (x{mean_of(s, 2):.2f}" for s in ("stage3", "stage2"))
    print(f"presample bound: at the end of stage 3 uniform share {end} at most), start {start})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
