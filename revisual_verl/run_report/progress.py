"""Progress lines of a stage while it trains, read from its metrics as verl's ``file`` logger writes them.

    python -m revisual_verl.run_report.progress --stage-dir outputs/run/stage2 --label "stage 2" --every 5

run_all.sh starts it beside a stage whose output goes to a log file, and stops it when the stage ends.
Prints a line every ``--every`` steps and at every step that validated; nothing else.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from revisual_verl.run_report.metrics import heldout_by_step, read_metrics

FIELDS = (
    ("train/loss", "loss", "{:.3f}"),
    ("critic/score/mean", "reward", "{:.2f}"),
    ("reward/accuracy/mean", "acc", "{:.2f}"),
    ("pad/kept_fraction", "PAD kept", "{:.2f}"),
    ("presample/skipped_share", "skipped", "{:.2f}"),
    ("timing_s/step", "s/step", "{:.1f}"),
)


def progress_line(label: str, step: int, metrics: dict, elapsed: float) -> str:
    parts = [f"  {label}  step {step:>4}"]
    parts += [f"{name} {fmt.format(metrics[key])}" for key, name, fmt in FIELDS if key in metrics]
    heldout = heldout_by_step({step: metrics}).get(step)
    if heldout:
        parts.append(
            "held-out " + " ".join(f"{source} {100 * value:.1f}%" for source, value in sorted(heldout.items()))
        )
    minutes, seconds = divmod(int(elapsed), 60)
    parts.append(f"({minutes}:{seconds:02d})")
    return "  ".join(parts)


def watch(stage_dir: Path, label: str, every: int, poll_s: float = 2.0) -> None:
    start = time.monotonic()
    shown: set[int] = set(read_metrics(stage_dir))  # a resumed stage: earlier launches' steps are not news
    while True:
        steps = read_metrics(stage_dir)
        for step in sorted(set(steps) - shown):
            metrics = steps[step]
            validated = step in heldout_by_step({step: metrics})
            if step % every == 0 or validated:
                print(progress_line(label, step, metrics, time.monotonic() - start), flush=True)
            shown.add(step)
        time.sleep(poll_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m revisual_verl.run_report.progress", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--stage-dir", required=True, type=Path, help="the stage's output directory")
    parser.add_argument("--label", default="", help="what to call the stage in each line")
    parser.add_argument("--every", type=int, default=5, help="print every N-th step (default 5)")
    args = parser.parse_args(argv)
    if args.every < 1:
        parser.error("--every must be >= 1")
    try:
        watch(args.stage_dir, args.label or args.stage_dir.name, args.every)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
