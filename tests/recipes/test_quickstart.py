"""recipes/quickstart.sh with DRY_RUN=1 on a machine without GPUs: sample data prepared, all three stages dry-run.

Without DRY_RUN the same command trains on the CPU: tests/recipes/test_cpu_end_to_end.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_prepares_the_samples_and_dry_runs_every_stage(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DRY_RUN", "MODEL_PATH", "STAGES", "NNODES")}
    # The console script next to this interpreter, and an nvidia-smi that is surely absent.
    env.update(
        WORK_DIR=str(tmp_path / "qs"),
        DRY_RUN="1",
        NVIDIA_SMI="/nonexistent/nvidia-smi",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
    )
    result = subprocess.run(
        ["bash", str(ROOT / "recipes" / "quickstart.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,  # hang guard; it takes well under a minute
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "DRY_RUN=1 (DEVICE=cpu): compose and validate every stage, train nothing" in result.stderr
    for part in ("coldstart", "mmrl", "textrl"):
        assert pq.ParquetFile(tmp_path / "qs" / "data" / part / "train.parquet").metadata.num_rows > 0
    assert "stages 1 2 3 compose and validate" in result.stderr
    passed = [line for line in result.stdout.splitlines() if line.startswith("[dry-run]") and "passed" in line]
    assert len(passed) == 3
    # The smoke sizes reach the stages: the sample data fills every RL batch, so no "no full batch" warning.
    assert "no full batch" not in result.stdout
    assert "data.train_batch_size=4" in result.stdout
    assert not (tmp_path / "qs" / "run").exists()  # a dry run trains and merges nothing
    # The CPU mode's settings are what was validated.
    assert "actor_rollout_ref.rollout.name=hf" in result.stdout and "revisual_verl.cpu.sft" in result.stdout
