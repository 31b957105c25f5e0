"""What loading this plugin costs every verl process: ``import verl`` with its entry point active and inactive.

    python benchmarks/import_overhead.py [--runs 5]

Each run is a fresh interpreter that does ``import verl`` and reports the time of that import (wall
clock, and the process's CPU time, which other work on the machine disturbs less), its peak RSS, how
many modules are loaded and how many lines it printed. "inactive" hides this plugin's
``verl.plugins`` entry point with verl's own switch (``VERL_USE_EXTERNAL_PLUGINS`` set to the names
of the other plugins), so verl still scans the entry points exactly as it would with the plugin
uninstalled; "active" adds this plugin's name to the same list. The two modes alternate, after one
unmeasured warm-up run each. The table shows the fastest and the median wall time and the medians of
the rest. The last line, ``import overhead: +X s, +Y MB``, compares the fastest runs' times (other
work on the machine only ever adds time, so the fastest run is the cost with the least noise) and
the median peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from importlib.metadata import entry_points

PLUGIN_MODULE = "revisual_verl.plugin"
MARKER = "IMPORT-OVERHEAD "
CHILD = f"""
import resource, sys, time
start, start_cpu = time.perf_counter(), time.process_time()
import verl
elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
import json
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print({MARKER!r} + json.dumps({{"time_s": elapsed, "cpu_s": cpu, "peak_mb": peak_mb, "modules": len(sys.modules),
      "plugin_loaded": {PLUGIN_MODULE!r} in sys.modules}}))
"""


def plugin_policies() -> tuple[str, str]:
    """VERL_USE_EXTERNAL_PLUGINS values loading every other plugin without / with this one."""
    plugins = entry_points(group="verl.plugins")
    ours = [ep.name for ep in plugins if ep.value.split(":")[0] == PLUGIN_MODULE]
    if not ours:
        sys.exit(f"no verl.plugins entry point for {PLUGIN_MODULE}: install this package first (pip install -e .)")
    others = [ep.name for ep in plugins if ep.name not in ours]
    # An allow-list naming no installed plugin loads none of them (verl/__init__.py).
    inactive = ",".join(others) or "revisual-verl-benchmark-hidden"
    active = ",".join(others + ours)
    return inactive, active


def one_run(policy: str) -> dict:
    env = {**os.environ, "VERL_USE_EXTERNAL_PLUGINS": policy}
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, cwd="/", check=False)
    if out.returncode != 0:
        sys.exit(f"import verl failed ({policy=}):\n{out.stderr}")
    lines = out.stdout.splitlines() + out.stderr.splitlines()
    (report,) = [line for line in lines if line.startswith(MARKER)]
    result = json.loads(report[len(MARKER) :])
    result["printed_lines"] = len(lines) - 1
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs per mode (default 5)")
    args = parser.parse_args()

    inactive, active = plugin_policies()
    modes = {"inactive": inactive, "active": active}
    results: dict[str, list[dict]] = {mode: [] for mode in modes}
    for policy in modes.values():
        one_run(policy)  # warm-up: page cache and .pyc files, not measured
    for _ in range(args.runs):
        for mode, policy in modes.items():
            results[mode].append(one_run(policy))

    for mode, runs in results.items():
        expected = mode == "active"
        if any(run["plugin_loaded"] != expected for run in runs):
            sys.exit(f"{mode}: the plugin was {'not ' if expected else ''}loaded; the switch did not work")

    def median(mode: str, key: str) -> float:
        return statistics.median(run[key] for run in results[mode])

    print(f"import verl, {args.runs} fresh processes per mode (VERL_USE_EXTERNAL_PLUGINS: {modes})")

    def fastest(mode: str) -> float:
        return min(run["time_s"] for run in results[mode])

    header = ["mode", "fastest s", "median s", "CPU s", "peak RSS MB", "modules", "printed lines"]
    print(f"{header[0]:<9}" + "".join(f" {column:>12}" for column in header[1:]))
    for mode in results:
        row = [fastest(mode), median(mode, "time_s"), median(mode, "cpu_s")]
        row = [f"{value:.2f}" for value in row]
        row += [f"{median(mode, key):.0f}" for key in ("peak_mb", "modules", "printed_lines")]
        print(f"{mode:<9}" + "".join(f" {value:>12}" for value in row))
    seconds = fastest("active") - fastest("inactive")
    megabytes = round(median("active", "peak_mb") - median("inactive", "peak_mb"))
    if seconds < 0 or megabytes < 0:
        # Loading more cannot be faster or smaller: a negative difference is run-to-run noise.
        print(f"(measured {seconds:+.2f} s, {megabytes:+d} MB: noise, reported as 0)")
    print(f"import overhead: +{max(seconds, 0.0):.2f} s, +{max(megabytes, 0)} MB")


if __name__ == "__main__":
    main()
