"""eval.json and eval.md from what verl's validation left behind: the generations it dumped
(``trainer.validation_data_dir``) and the metrics its ``file`` logger wrote.

    python -m revisual_verl.evaluation.report --generations OUT/generations --metrics OUT/metrics.jsonl --out OUT

The per-sample correctness is the ``revisual`` reward's ``acc``, its answer ``pred`` and the row's ``data_source``
(all three in the reward's extra info, so verl dumps them beside each response).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

from revisual_verl.evaluation.paper import BY_BENCHMARK, PAPER_AVERAGE, TABLE2
from revisual_verl.evaluation.scores import BenchmarkScore, Sample, score_benchmark
from revisual_verl.run_report.metrics import heldout_by_step, read_metric_files, samples_per_problem


def read_generations(path: Path) -> list[dict]:
    """The samples of one validation, in verl's order (each problem's k samples next to each other).

    ``path`` is verl's dump folder (the latest step's file is read) or one of its ``<step>.jsonl`` files.
    """
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"), key=lambda p: int(p.stem) if p.stem.isdigit() else -1)
        if not files:
            raise ValueError(f"no <step>.jsonl in {path}: did verl's validation run with trainer.validation_data_dir?")
        path = files[-1]
    rows = []
    # Lines end at "\n" only: verl writes responses unescaped (ensure_ascii=False), and a model's output may hold
    # U+2028, U+0085 or a form feed, where str.splitlines would cut a record in two.
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from None
        for key in ("input", "acc", "data_source"):
            if key not in row:
                raise ValueError(
                    f"{path}:{number}: no '{key}' (the revisual reward writes acc, pred and data_source; "
                    "was reward.reward_manager.name=revisual?)"
                )
        rows.append(row)
    return rows


def group_problems(rows: list[dict], k: int) -> dict[str, list[list[Sample]]]:
    """data_source -> problems, each its k samples: verl repeats each prompt k times in a row."""
    if k < 1 or len(rows) % k:
        raise ValueError(f"{len(rows)} samples do not split into problems of k={k} samples")
    out: dict[str, list[list[Sample]]] = {}
    for start in range(0, len(rows), k):
        chunk = rows[start : start + k]
        if len({(row["data_source"], row["input"]) for row in chunk}) != 1:
            raise ValueError(f"samples {start}-{start + k - 1} are not one problem's k={k} samples")
        samples = [Sample(correct=float(row["acc"]) > 0.5, pred=str(row.get("pred") or "")) for row in chunk]
        out.setdefault(chunk[0]["data_source"], []).append(samples)
    return out


def order_sources(sources: Iterable[str]) -> list[str]:
    """Table 2's columns first, in its order, then any other data source by name."""
    sources = set(sources)
    return [c.benchmark for c in TABLE2 if c.benchmark in sources] + sorted(sources - set(BY_BENCHMARK))


def build_report(
    scores: dict[str, BenchmarkScore],
    verl_means: dict[str, float],
    splits: dict[str, str] | None = None,
    model: str = "",
    settings: dict | None = None,
) -> dict:
    splits = splits or {}
    benchmarks = {}
    for source in order_sources(scores):
        entry = scores[source].as_percent()
        if source in verl_means:
            entry["verl_mean_at_k"] = round(100 * verl_means[source], 2)
        entry["split"] = splits.get(source)
        column = BY_BENCHMARK.get(source)
        if column:
            entry["paper"] = column.score
            entry["paper_split"] = column.split
            entry["comparable_to_paper"] = splits.get(source) == column.split
        benchmarks[source] = entry
    ours = [entry["mean_at_k"] for entry in benchmarks.values()]
    in_table = [source for source in benchmarks if source in BY_BENCHMARK]
    average = {"mean_at_k": round(sum(ours) / len(ours), 2) if ours else None, "benchmarks": len(ours)}
    if in_table:
        paper = [BY_BENCHMARK[source].score for source in in_table]
        average["paper_same_benchmarks"] = round(sum(paper) / len(paper), 2)
        average["paper_all"] = PAPER_AVERAGE
    return {"model": model, "settings": settings or {}, "benchmarks": benchmarks, "average": average}


def _cell(value) -> str:
    return "–" if value is None else f"{value:.1f}"


def markdown_table(report: dict, label: str = "this model") -> str:
    """Table 2's layout: a column per benchmark and the average; the paper's row where Table 2 has them."""
    sources = list(report["benchmarks"])
    titles = [BY_BENCHMARK[s].title if s in BY_BENCHMARK else s for s in sources]
    k = {entry["k"] for entry in report["benchmarks"].values()}
    k_text = f"mean@{k.pop()}" if len(k) == 1 else "mean@k"
    lines = ["| Model | " + " | ".join(titles) + " | Avg. |", "|---|" + "---:|" * (len(sources) + 1)]
    if any(s in BY_BENCHMARK for s in sources):
        paper = [_cell(BY_BENCHMARK[s].score) if s in BY_BENCHMARK else "–" for s in sources]
        average = report["average"].get("paper_same_benchmarks")
        lines.append("| ReVisual-R1-7B (paper) | " + " | ".join(paper) + f" | {_cell(average)} |")
    ours = [_cell(report["benchmarks"][s]["mean_at_k"]) for s in sources]
    lines.append(f"| {label} ({k_text}) | " + " | ".join(ours) + f" | {_cell(report['average']['mean_at_k'])} |")
    notes = []
    if any(s in BY_BENCHMARK for s in sources) and len([s for s in sources if s in BY_BENCHMARK]) < len(TABLE2):
        notes.append(f"Avg. is over the columns shown; the paper's average over all ten is {PAPER_AVERAGE}.")
    differing = [
        f"{BY_BENCHMARK[s].title} (ours: {entry['split'] or 'unknown split'}, paper: {entry['paper_split']})"
        for s, entry in report["benchmarks"].items()
        if s in BY_BENCHMARK and not entry["comparable_to_paper"]
    ]
    if differing:
        notes.append("Not the paper's split, so not comparable: " + ", ".join(differing) + ".")
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def details_table(report: dict) -> str:
    lines = [
        "| benchmark | problems | k | mean@k | std over runs | maj@k | pass@k |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for source, e in report["benchmarks"].items():
        lines.append(
            f"| {source} | {e['problems']} | {e['k']} | {e['mean_at_k']:.1f} | {e['std_over_runs']:.1f} | "
            f"{e['maj_at_k']:.1f} | {e['pass_at_k']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def read_verl_means(metrics: Path | None) -> tuple[dict[str, float], int | None]:
    """verl's own val-core/<source>/acc/mean@k of the last validation in a file logger's JSON lines, and k."""
    if metrics is None or not metrics.exists():
        return {}, None
    steps = read_metric_files(sorted(metrics.glob("*.jsonl")) if metrics.is_dir() else [metrics])
    by_step = heldout_by_step(steps)
    if not by_step:
        return {}, None
    last = max(by_step)
    return by_step[last], samples_per_problem({last: steps[last]})


def write_report(
    generations: Path,
    out: Path,
    metrics: Path | None = None,
    k: int | None = None,
    splits: dict[str, str] | None = None,
    model: str = "",
    settings: dict | None = None,
    label: str = "this model",
) -> dict:
    verl_means, verl_k = read_verl_means(metrics)
    k = k or verl_k
    if not k:
        raise ValueError("k (samples per problem) is unknown: pass --k or --metrics with verl's validation metrics")
    problems = group_problems(read_generations(generations), k)
    report = build_report({s: score_benchmark(p) for s, p in problems.items()}, verl_means, splits, model, settings)
    report["generations"] = str(generations)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "eval.md").write_text(markdown_table(report, label) + "\n" + details_table(report), encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m revisual_verl.evaluation.report",
        description="eval.json and eval.md (the paper's Table 2 layout) from verl's dumped validation generations",
    )
    parser.add_argument("--generations", required=True, type=Path, help="verl's trainer.validation_data_dir")
    parser.add_argument("--out", required=True, type=Path, help="folder for eval.json and eval.md")
    parser.add_argument("--metrics", type=Path, help="verl's file-logger JSON lines (a file or a folder of them)")
    parser.add_argument("--k", type=int, help="samples per problem (default: read from --metrics)")
    parser.add_argument("--split", action="append", default=[], metavar="SOURCE=SPLIT", help="the split evaluated")
    parser.add_argument("--model", default="", help="the model's path, recorded in eval.json")
    parser.add_argument("--label", default="this model", help="the model's row in the table")
    parser.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE", help="recorded in eval.json")
    args = parser.parse_args(argv)
    try:
        splits = dict(item.split("=", 1) for item in args.split)
        settings = dict(item.split("=", 1) for item in args.setting)
    except ValueError:
        parser.error("--split and --setting take KEY=VALUE")
    try:
        report = write_report(
            args.generations, args.out, args.metrics, args.k, splits, args.model, settings, args.label
        )
    except (OSError, ValueError) as error:
        print(f"evaluation report: error: {error}", file=sys.stderr)
        return 1
    print(markdown_table(report, args.label), end="")
    print(f"eval.json and eval.md in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
