"""Throughput and peak memory of ``revisual-data prepare`` on generated input of growing size.

    python benchmarks/data_prepare.py            # a few minutes: inputs up to ~400 MB
    python benchmarks/data_prepare.py --full     # adds the 2.2 GB cold-start file (the real file's size)

Each conversion runs in its own process pinned to one CPU core; peak RSS is that process's own (``wait4``).
Rows per second come from the converter's report (the pass itself, without interpreter start-up). As a baseline
in the same run, the cold-start file is also converted the naive way (``json.load`` of the whole file, then one
``pyarrow`` table), whose memory grows with the file. Targets: >= 1,000 text rows/s on one core; the 2.2 GB
cold-start file under 1 GB of RSS.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

COLDSTART_ROW_BYTES = 46_000  # the real file: ~2.2 GB over 47.4k rows
DEFAULT_SIZES = {"textrl": [20_000, 80_000, 320_000], "mmrl": [500, 2_000, 8_000], "coldstart_mb": [25, 100, 400]}
FULL_COLDSTART_MB = 2_200
BASELINE_MAX_MB = 400

NAIVE_COLDSTART = """
import json, sys, pyarrow as pa, pyarrow.parquet as pq
rows = json.load(open(sys.argv[1], encoding="utf-8"))
messages = [
    [{"role": "user", "content": r["instruction"]}, {"role": "assistant", "content": r["output"]}] for r in rows
]
pq.write_table(pa.table({"messages": messages}), sys.argv[2])
print(len(rows))
report_peak()
"""


def write_textrl(path: Path, rows: int) -> None:
    rng = random.Random(0)
    problems = [
        f"Let $x = {rng.randrange(99)}$. Compute $x^2 + {rng.randrange(99)}x$ for this value." for _ in range(997)
    ]
    table = pa.table(
        {
            "problem": [problems[i % 997] + f" (variant {i})" for i in range(rows)],
            "answer": [str(i % 1000) for i in range(rows)],
            "dataset": ["math"] * rows,
        }
    )
    pq.write_table(table, path, row_group_size=10_000)


def write_mmrl(path: Path, rows: int) -> None:
    from PIL import Image

    rng = random.Random(0)
    pngs = []
    for _ in range(16):
        image = Image.frombytes("RGB", (96, 96), rng.randbytes(96 * 96 * 3))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    struct = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    writer = None
    for start in range(0, rows, 1000):
        count = min(1000, rows - start)
        batch = pa.table(
            {
                "problem": [f"<image>\nHow many objects are there? ({start + i})" for i in range(count)],
                "answer": [str((start + i) % 10) for i in range(count)],
                "images": pa.array(
                    [[{"bytes": pngs[(start + i) % 16], "path": None}] for i in range(count)], pa.list_(struct)
                ),
                "dataset": ["iconqa"] * count,
            }
        )
        writer = writer or pq.ParquetWriter(path, batch.schema)
        writer.write_table(batch)
    writer.close()


def write_coldstart(path: Path, megabytes: int) -> int:
    """A JSON array of alpaca rows of ~46 KB, written in a stream; returns the row count."""
    rng = random.Random(0)
    traces = [
        "<think>\n" + " ".join(f"step {rng.randrange(10**6)}" for _ in range(COLDSTART_ROW_BYTES // 13))
        for _ in range(8)
    ]
    target, written, rows = megabytes * 1_000_000, 0, 0
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("[\n")
        while written < target:
            row = {
                "instruction": f"Problem {rows}: prove the claim.",
                "input": "",
                "output": traces[rows % 8] + f"\n</think>\nSo the answer is $\\boxed{{{rows}}}$.",
            }
            text = ("," if rows else "") + json.dumps(row) + "\n"
            handle.write(text)
            written += len(text)
            rows += 1
        handle.write("]\n")
    return rows


# A child's rusage maxrss also counts the parent's RSS at fork/exec time, so each child reports its own
# high-water mark (VmHWM, per address space) instead.
REPORT_PEAK = (
    "import sys\n"
    "def report_peak():\n"
    "    peak = [line for line in open('/proc/self/status') if line.startswith('VmHWM')][0].split()[1]\n"
    "    print(f'VmHWM {peak}', file=sys.stderr)\n"
)
RUN_CLI = (
    REPORT_PEAK + "from revisual_verl.data.cli import main\ncode = main(sys.argv[1:])\nreport_peak()\nsys.exit(code)\n"
)


def run_child(script: str, args: list[str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in bytes and stdout of a Python child pinned to one core."""
    core = str(min(os.sched_getaffinity(0)))
    started = time.perf_counter()
    done = subprocess.run(
        ["taskset", "-c", core, sys.executable, "-c", script, *args], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{done.stderr}")
    peak_kib = int(done.stderr.rsplit("VmHWM ", 1)[1].split()[0])
    return seconds, peak_kib * 1024, done.stdout


def prepare(part: str, source: Path, out: Path) -> dict:
    args = ["prepare", part, "-i", str(source), "-o", str(out), "--no-progress", "--val-size", "256"]
    seconds, rss, _ = run_child(RUN_CLI, args)
    report = json.loads((out / "report.json").read_text())
    return {
        "rows": report["rows_read"],
        "seconds": seconds,
        "rows_per_s": report["timing"]["rows_per_second"],
        "rss": rss,
        "skipped": report["skipped"]["total"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help=f"also convert a {FULL_COLDSTART_MB} MB cold-start file")
    parser.add_argument("--workdir", type=Path, help="where to write generated inputs (default: a temp dir)")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="revisual-data-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    sizes_mb = DEFAULT_SIZES["coldstart_mb"] + ([FULL_COLDSTART_MB] if args.full else [])

    results = []
    for rows in DEFAULT_SIZES["textrl"]:
        source = workdir / f"textrl-{rows}.parquet"
        write_textrl(source, rows)
        results.append(
            (
                "textrl",
                f"{source.stat().st_size / 1e6:.1f} MB",
                "revisual-data",
                prepare("textrl", source, workdir / "out"),
            )
        )
    for rows in DEFAULT_SIZES["mmrl"]:
        source = workdir / f"mmrl-{rows}.parquet"
        write_mmrl(source, rows)
        results.append(
            ("mmrl", f"{source.stat().st_size / 1e6:.1f} MB", "revisual-data", prepare("mmrl", source, workdir / "out"))
        )
    for megabytes in sizes_mb:
        source = workdir / f"coldstart-{megabytes}mb.json"
        write_coldstart(source, megabytes)
        size = f"{source.stat().st_size / 1e6:.1f} MB"
        results.append(("coldstart", size, "revisual-data", prepare("coldstart", source, workdir / "out")))
        if megabytes <= BASELINE_MAX_MB:
            seconds, rss, stdout = run_child(
                REPORT_PEAK + NAIVE_COLDSTART, [str(source), str(workdir / "naive.parquet")]
            )
            rows = int(stdout.strip())
            results.append(
                (
                    "coldstart",
                    size,
                    "naive json.load",
                    {
                        "rows": rows,
                        "seconds": seconds,
                        "rows_per_s": round(rows / seconds, 1),
                        "rss": rss,
                        "skipped": 0,
                    },
                )
            )
        source.unlink()

    print(f"{'part':<10} {'input':>8} {'method':<16} {'rows':>8} {'rows/s':>9} {'wall s':>7} {'peak RSS':>9}")
    for part, size, method, result in results:
        print(
            f"{part:<10} {size:>8} {method:<16} {result['rows']:>8} {result['rows_per_s']:>9.0f} "
            f"{result['seconds']:>7.1f} {result['rss'] / 2**20:>6.0f} MiB"
        )
    for part in ("textrl", "mmrl", "coldstart"):
        ours = [r for p, _, m, r in results if p == part and m == "revisual-data"]
        growth = ours[-1]["rss"] / ours[0]["rss"]
        print(
            f"{part}: input x{ours[-1]['rows'] / ours[0]['rows']:.0f} rows -> peak RSS x{growth:.2f}"
            + (" (flat)" if growth < 1.5 else " (GROWS)")
        )
    text_rate = min(r["rows_per_s"] for p, _, m, r in results if p == "textrl" and m == "revisual-data")
    print(f"target >= 1000 text rows/s on one core: {'met' if text_rate >= 1000 else 'MISSED'} ({text_rate:.0f})")
    if args.full:
        full = [r for p, s, m, r in results if p == "coldstart" and m == "revisual-data"][-1]
        print(
            f"target 2.2 GB cold start under 1 GiB RSS: {'met' if full['rss'] < 2**30 else 'MISSED'} "
            f"({full['rss'] / 2**20:.0f} MiB)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
