"""What a CPU run of the recipe did, one table per stage, read from what verl wrote.

    python -m revisual_verl.cpu.report --run-dir outputs/quickstart/run

Reads each stage's metrics (verl's ``file`` logger, ``stageK/metrics/*.jsonl``, one file per launch; a
resumed launch's steps replace the earlier ones) and its merged model ``stageK/hf``. Prints steps done,
seconds per phase, the last step's ``pad/*`` and ``reward/*`` metrics, stage 3's entropy coefficient per
update next to the schedule's value, checksums of the vision tower and of the language model before and
after stage 3, and each merged directory loaded back with transformers. Exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from revisual_verl.run_report.metrics import read_metrics

# verl's timing keys, in step order; reward is computed inside generation (verl's reward loop).
PHASES = (
    ("generation", "timing_s/gen"),
    ("reward", "timing_s/reward"),
    ("old log-prob", "timing_s/old_log_prob"),
    ("reference", "timing_s/ref"),
    ("advantage", "timing_s/adv"),
    ("update", "timing_s/update_actor"),
    ("weight sync", "timing_s/update_weights"),
    ("step", "timing_s/step"),
)
SFT_KEYS = ("train/loss", "train/grad_norm", "train/lr", "train/global_tokens")
VISION_PREFIXES = ("visual.", "model.visual.")


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(rows: list[tuple[str, str]], title: str) -> str:
    width = max([len(name) for name, _ in rows] + [10])
    lines = [title, "-" * len(title)]
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines)


def stage_rows(stage: int, steps: dict[int, dict], entropy_schedule=None) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = [("steps done", str(len(steps)))]
    if not steps:
        return rows
    last = steps[max(steps)]
    if stage == 1:
        rows += [(key, _fmt(last[key])) for key in SFT_KEYS if key in last]
        return rows
    for name, key in PHASES:
        values = [metrics[key] for _, metrics in sorted(steps.items()) if key in metrics]
        if values:
            rows.append((f"s {name} (per step)", " ".join(f"{v:.2f}" for v in values)))
    for prefix in ("pad/", "reward/"):
        rows += [(key, _fmt(value)) for key, value in sorted(last.items()) if key.startswith(prefix)]
    for key in ("training/rollout_probs_diff_max", "actor/pg_loss", "actor/kl_loss", "actor/entropy"):
        if key in last:
            rows.append((key, _fmt(last[key])))
    if entropy_schedule is not None:
        for step, first, last_update, logged, expected in entropy_per_step(steps, entropy_schedule):
            rows.append(
                (
                    f"entropy coeff, step {step}",
                    f"{logged:.6g} over updates {first}..{last_update} (schedule: {expected:.6g})",
                )
            )
    return rows


def entropy_per_step(steps: dict[int, dict], schedule) -> list[tuple[int, int, int, float, float]]:
    """(step, first update, last update, logged coefficient, the schedule's) for each step that logged one.

    verl averages a step's metrics over its optimizer updates, and a step takes as many updates as its
    (distilled) batch needs. The updates are consecutive from 0, so a step's mean update index gives its
    count: c = 2 * (mean - first) + 1; the schedule's value is the mean of its coefficients over them.
    """
    out, first = [], 0
    for step, metrics in sorted(steps.items()):
        if "actor/entropy_coeff" not in metrics:
            continue
        count = max(1, round(2 * (metrics["actor/entropy_schedule_update"] - first) + 1))
        updates = range(first, first + count)
        expected = sum(schedule.at(u) for u in updates) / count
        out.append((step, first, first + count - 1, metrics["actor/entropy_coeff"], expected))
        first += count
    return out


def tensor_digests(model_dir: Path) -> tuple[str, str]:
    """sha256 of the vision tower's tensors and of every other tensor, from the merged safetensors."""
    from safetensors import safe_open

    vision, rest = hashlib.sha256(), hashlib.sha256()
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors in {model_dir}")
    names = []
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            names += [(name, file) for name in handle.keys()]
    for name, file in sorted(names):
        with safe_open(str(file), framework="pt") as handle:
            tensor = handle.get_tensor(name)
        digest = vision if name.startswith(VISION_PREFIXES) else rest
        digest.update(name.encode())
        digest.update(tensor.float().contiguous().numpy().tobytes())
    return vision.hexdigest(), rest.hexdigest()


def load_back(model_dir: Path) -> str:
    """Load a merged directory as a user would: config, tokenizer, processor (if any) and weights."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

    config = AutoConfig.from_pretrained(model_dir)
    AutoTokenizer.from_pretrained(model_dir)
    parts = ["tokenizer"]
    if getattr(config, "vision_config", None) is not None:
        AutoProcessor.from_pretrained(model_dir)
        model = AutoModelForImageTextToText.from_pretrained(model_dir)
        parts.append("processor")
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir)
    params = sum(p.numel() for p in model.parameters())
    return f"loads ({type(model).__name__}, {params:,} parameters, {' + '.join(parts)})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m revisual_verl.cpu.report", description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True, type=Path, help="OUTPUT_DIR of run_all.sh (holds stage1..3)")
    parser.add_argument(
        "--entropy-warmup-updates",
        type=int,
        default=None,
        help="stage 3's entropy warm-up, to print the schedule's value next to the logged coefficient "
        "(default: Table 5's 140 updates)",
    )
    args = parser.parse_args(argv)

    from revisual_verl.engine.entropy import EntropySchedule

    schedule = EntropySchedule(
        schedule="exponential",
        beta0=0.02,
        beta_min=0.0,
        decay=0.985,
        warmup_updates=args.entropy_warmup_updates if args.entropy_warmup_updates is not None else 140,
    )

    failures = []
    stages = [stage for stage in (1, 2, 3) if (args.run_dir / f"stage{stage}").is_dir()]
    if not stages:
        failures.append(f"no stage1/, stage2/ or stage3/ in {args.run_dir}")
    for stage in stages:
        stage_dir = args.run_dir / f"stage{stage}"
        rows = stage_rows(stage, read_metrics(stage_dir), schedule if stage == 3 else None)
        hf = stage_dir / "hf"
        try:
            rows.append(("merged model", f"{hf}: {load_back(hf)}"))
        except Exception as error:  # noqa: BLE001  reported, and the run counts as failed
            failures.append(f"stage {stage}: {hf} does not load: {error}")
            rows.append(("merged model", f"{hf}: DOES NOT LOAD ({type(error).__name__})"))
        print(_table(rows, f"Stage {stage}"), end="\n\n")

    stage2, stage3 = args.run_dir / "stage2" / "hf", args.run_dir / "stage3" / "hf"
    if stage2.exists() and stage3.exists():
        vision2, lm2 = tensor_digests(stage2)
        vision3, lm3 = tensor_digests(stage3)
        # A step whose groups all scored alike has no advantage: PAD skips its update. Only a stage that
        # updated at least once must have changed the language model.
        updated = any(
            metrics.get("pad/skipped_step", 0) == 0 for metrics in read_metrics(args.run_dir / "stage3").values()
        )
        if lm2 != lm3:
            lm_state = "different: trained"
        elif updated:
            lm_state = "EQUAL: not trained"
        else:
            lm_state = "equal: every step skipped, no group had an advantage"
        rows = [
            ("vision tower, stage 2", vision2[:16]),
            ("vision tower, stage 3", f"{vision3[:16]} ({'equal' if vision2 == vision3 else 'DIFFERENT'})"),
            ("language model, stage 2", lm2[:16]),
            ("language model, stage 3", f"{lm3[:16]} ({lm_state})"),
        ]
        print(_table(rows, "Stage 3: vision tower frozen, language model trained (sha256 of the merged tensors)"))
        if vision2 != vision3:
            failures.append("stage 3 changed the vision tower")
        if lm2 == lm3 and updated:
            failures.append("stage 3 updated the policy but did not change the language model")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
