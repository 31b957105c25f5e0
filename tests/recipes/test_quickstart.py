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


def test_on_gpus_without_a_model_the_quickstart_is_a_tiny_model_smoke_run_of_the_gpu_path(tmp_path):
    """What can be checked here of the GPU smoke run: the tiny model is built, and every stage's command,
    with the GPU device group (vLLM, FSDP2, bf16, fused kernels), composes and validates in the dry run."""
    smi = tmp_path / "nvidia-smi"
    smi.write_text(
        "#!/usr/bin/env bash\necho 'GPU 0: NVIDIA H100 (UUID: GPU-x)'\necho 'GPU 1: NVIDIA H100 (UUID: GPU-y)'\n"
    )
    smi.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("DRY_RUN", "MODEL_PATH", "STAGES", "NNODES", "DEVICE")}
    env.update(
        WORK_DIR=str(tmp_path / "qs"),
        DRY_RUN="1",
        NVIDIA_SMI=str(smi),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
    )
    result = subprocess.run(
        ["bash", str(ROOT / "recipes" / "quickstart.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "DRY_RUN=1 (DEVICE=gpu)" in result.stderr
    tiny = tmp_path / "qs" / "tiny-qwen2.5-vl"
    assert (tiny / "config.json").is_file()
    passed = [line for line in result.stdout.splitlines() if line.startswith("[dry-run]") and "passed" in line]
    assert len(passed) == 3
    # No placeholder: the tiny model is there to be checked.
    assert "placeholder" not in result.stderr + result.stdout
    commands = result.stdout.replace("'", "")  # the printed commands quote their arguments for the shell
    # Stage 1 starts from the tiny model, stages 2 and 3 from the merged model before them.
    assert f" model.path={tiny}" in commands
    assert f" actor_rollout_ref.model.path={tmp_path / 'qs' / 'run' / 'stage1' / 'hf'}" in commands
    # The GPU path, on one GPU: vLLM without tensor parallelism, verl's torchrun SFT, no CPU overlay.
    for key in ("actor_rollout_ref.rollout.name=vllm", "tensor_model_parallel_size=1", "trainer.n_gpus_per_node=1"):
        assert key in result.stdout, key
    assert "device=cpu" not in result.stdout and "revisual_verl.cpu.sft" not in result.stdout
    assert "revisual_verl.sft_trainer" in result.stdout and "trainer.total_training_steps=2" in result.stdout
