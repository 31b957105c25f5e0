"""Reading the metrics verl's ``file`` logger wrote for each stage of a run (``stageK/metrics/*.jsonl``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

# verl's validation reports the reward's ``acc`` per data source as the mean over k samples per problem.
_HELDOUT_KEY = re.compile(r"^val-core/(?P<source>.+)/acc/mean@(?P<k>\d+)$")


def read_metric_files(paths) -> dict[int, dict]:
    """step -> metrics from verl ``file``-logger JSON-lines files, in the given order (later files win).

    A line that is not complete JSON (a launch killed while writing) is skipped, not fatal: the report
    of an interrupted run is what a person looks at to see what happened.
    """
    steps: dict[int, dict] = {}
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8").split("\n"):
            try:
                record = json.loads(line)
                step = int(record["step"])
            except (ValueError, KeyError, TypeError):
                continue
            data = record.get("data")
            if isinstance(data, dict):
                steps.setdefault(step, {}).update(data)
    return steps


def read_metrics(stage_dir: Path) -> dict[int, dict]:
    """step -> metrics, over every launch of the stage (``stage_dir/metrics/*.jsonl``, later launches win)."""
    launches = sorted(Path(stage_dir, "metrics").glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
    return read_metric_files(launches)


def heldout_by_step(steps: dict[int, dict]) -> dict[int, dict[str, float]]:
    """step -> {data source: held-out accuracy (mean over k samples)} for every step that validated."""
    out: dict[int, dict[str, float]] = {}
    for step, metrics in sorted(steps.items()):
        for key, value in metrics.items():
            match = _HELDOUT_KEY.match(key)
            if match:
                out.setdefault(step, {})[match["source"]] = float(value)
    return out


def samples_per_problem(steps: dict[int, dict]) -> int | None:
    """The k of ``acc/mean@k`` (verl names it after the samples per problem), if the stage validated."""
    for metrics in steps.values():
        for key in metrics:
            match = _HELDOUT_KEY.match(key)
            if match:
                return int(match["k"])
    return None


def series(steps: dict[int, dict], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of one metric over the steps that logged it."""
    xs, ys = [], []
    for step, metrics in sorted(steps.items()):
        if key in metrics:
            xs.append(step)
            ys.append(float(metrics[key]))
    return xs, ys
