"""The README's first command on a machine without GPUs: all three stages train through verl's real trainers.

`scripts/quickstart.sh --no-setup` runs in a temporary WORK_DIR exactly as a user runs it: the bundled
samples are prepared, a tiny Qwen2.5-VL is built, stage 1 (verl's SFT trainer), stage 2 (GRPO + PAD on the
image samples, the revisual reward in verl's reward workers) and stage 3 (text, frozen vision tower,
entropy annealing, low_var_kl) train on the CPU, and each stage is merged with verl.model_merger. A second
run is killed (SIGKILL) after stage 2's first checkpoint and resumed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from revisual_verl.recipes.reap import session_processes

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "scripts" / "quickstart.sh"
# A whole chain takes a few minutes on 2 cores; this bound only turns a hang into a failure.
CHAIN_TIMEOUT_S = 1800
# verl's training/rollout_probs_diff_max: max |p_rollout - p_actor| over the response tokens, where p_actor
# comes from the actor's recomputed old log-prob (fp32 on both sides). After an update the rollout must run
# the updated weights: a rollout one update behind differs by about 1e-4 here (lr 1e-4), a synced one by
# float32 rounding (about 1e-7). tests/cpu/test_hf_rollout.py checks the log-probs themselves to 1e-4.
ON_POLICY_PROB_TOLERANCE = 1e-5


def environment(work_dir: Path, **extra) -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # The environment running the tests is the one the quickstart uses (scripts/quickstart.sh's VENV).
    env.update(
        VENV=sys.prefix, WORK_DIR=str(work_dir), PYTHON=sys.executable, NVIDIA_SMI="/nonexistent/nvidia-smi", **extra
    )
    # The sample-data run (2 steps per stage); the default CPU quickstart is the learning run (test_learning_run.py).
    env.setdefault("QUICKSTART_PROFILE", "smoke")
    for key in ("DRY_RUN", "DEVICE", "MODEL_PATH", "RESUME", "STAGES", "VERL_PLATFORM"):
        if key not in extra:
            env.pop(key, None)
    return env


def run_quickstart(work_dir: Path, **extra) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(QUICKSTART), "--no-setup"],
        env=environment(work_dir, **extra),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=CHAIN_TIMEOUT_S,
    )


def metrics(stage_dir: Path) -> dict[int, dict]:
    steps: dict[int, dict] = {}
    for path in sorted((stage_dir / "metrics").glob("*.jsonl"), key=lambda p: p.stat().st_mtime):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            steps.setdefault(record["step"], {}).update(record["data"])
    return steps


def tensors(model_dir: Path) -> dict[str, torch.Tensor]:
    out = {}
    for file in sorted(model_dir.glob("*.safetensors")):
        out.update(load_file(file))
    return out


def is_vision(name: str) -> bool:
    return name.startswith(("visual.", "model.visual."))


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp("quickstart")
    result = run_quickstart(work_dir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return work_dir, result


def test_all_three_stages_train_and_merge(chain):
    work_dir, result = chain
    run = work_dir / "run"
    for stage in (1, 2, 3):
        hf = run / f"stage{stage}" / "hf"
        assert (hf / "config.json").is_file() and (hf / "processor_config.json").is_file(), hf
    assert sorted(metrics(run / "stage1")) == [1, 2, 3, 4, 5]  # one epoch of 2-sequence SFT steps
    for stage in (2, 3):
        steps = metrics(run / f"stage{stage}")
        assert sorted(steps) == [1, 2]
        for step in steps.values():
            # verl's reward workers ran the revisual reward; PAD ran in the pad_sync trainer.
            assert "reward/length_reward/mean" in step and "pad/selected_rows" in step
    # The tables the quickstart prints, one per stage, and the frozen-tower check.
    for title in ("Stage 1", "Stage 2", "Stage 3", "vision tower, stage 3"):
        assert title in result.stdout
    assert "FAILED" not in result.stderr


def test_stage2_trains_on_images_with_pad_on_policy(chain):
    work_dir, _ = chain
    steps = metrics(work_dir / "run" / "stage2")
    # Stage 2 trains on the multimodal samples, which carry images.
    import pyarrow.parquet as pq

    images = pq.read_table(work_dir / "data" / "mmrl" / "train.parquet", columns=["images"]).column("images")
    assert sum(1 for row in images.to_pylist() if row) >= len(images) // 2
    assert any(step["pad/selected_rows"] > 0 and step["pad/skipped_step"] == 0 for step in steps.values())
    # Step 2 was generated after step 1's update was synced to the rollout.
    assert steps[2]["training/rollout_probs_diff_valid"] == 1.0
    assert steps[2]["training/rollout_probs_diff_max"] < ON_POLICY_PROB_TOLERANCE
    assert steps[1]["actor/grad_norm"] > 0


def test_stage3_freezes_the_vision_tower_anneals_entropy_and_uses_low_var_kl(chain):
    work_dir, _ = chain
    run = work_dir / "run"
    before, after = tensors(run / "stage2" / "hf"), tensors(run / "stage3" / "hf")
    assert before.keys() == after.keys()
    vision = [name for name in before if is_vision(name)]
    language = [name for name in before if not is_vision(name)]
    assert vision and language
    assert all(torch.equal(before[name], after[name]) for name in vision)
    assert any(not torch.equal(before[name], after[name]) for name in language)
    steps = metrics(run / "stage3")
    # The quickstart cuts the warm-up to 1 update; each step's logged coefficient is verl's mean over its
    # optimizer updates, which must be the schedule's mean over the same updates (Table 5 otherwise).
    from revisual_verl.cpu.report import entropy_per_step
    from revisual_verl.engine.entropy import EntropySchedule

    schedule = EntropySchedule(schedule="exponential", beta0=0.02, beta_min=0.0, decay=0.985, warmup_updates=1)
    per_step = entropy_per_step(steps, schedule)
    assert [row[0] for row in per_step] == [1, 2]
    assert per_step[0][1] == 0  # the first update of the stage is update 0
    for _, _, _, logged, expected in per_step:
        assert logged == pytest.approx(expected, rel=1e-6)
    assert per_step[-1][3] > 0  # past the warm-up: the annealed coefficient acts
    assert "actor/kl_loss" in steps[2]


def test_merged_models_load_with_transformers(chain):
    from transformers import AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

    work_dir, _ = chain
    for stage in (1, 2, 3):
        hf = work_dir / "run" / f"stage{stage}" / "hf"
        AutoTokenizer.from_pretrained(hf)
        AutoProcessor.from_pretrained(hf)
        model = AutoModelForImageTextToText.from_pretrained(hf)
        assert sum(p.numel() for p in model.parameters()) > 0


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True).stdout
    children: dict[int, list[tuple[int, str]]] = {}
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) >= 2:
            children.setdefault(int(parts[1]), []).append((int(parts[0]), parts[2] if len(parts) > 2 else ""))
    found, todo = [], [pid]
    while todo:
        for child, args in children.get(todo.pop(), []):
            found.append((child, args))
            todo.append(child)
    return found


def ps_args(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120]
    except OSError:
        return f"{pid} (gone)"


def test_killed_stage2_driver_resumes_with_the_same_draws(chain, tmp_path):
    chain_dir, _ = chain
    work_dir = tmp_path / "quickstart"
    run = work_dir / "run"
    # Stage 1 is finished (copied from the chain): it must be neither re-run nor rewritten.
    shutil.copytree(chain_dir / "run" / "stage1", run / "stage1")
    shutil.copytree(chain_dir / "tiny-qwen2.5-vl", work_dir / "tiny-qwen2.5-vl")
    (run / "stage1" / "input_model.txt").write_text(str(work_dir / "tiny-qwen2.5-vl"))
    stage1_files = {p: p.stat().st_mtime_ns for p in (run / "stage1").rglob("*") if p.is_file()}

    proc = subprocess.Popen(
        ["bash", str(QUICKSTART), "--no-setup"],
        env=environment(work_dir),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    tracker = run / "stage2" / "checkpoints" / "latest_checkpointed_iteration.txt"
    deadline = time.monotonic() + CHAIN_TIMEOUT_S
    try:
        while not (tracker.exists() and tracker.read_text().strip() == "1"):
            assert proc.poll() is None, "the run ended before stage 2 saved its first checkpoint"
            assert time.monotonic() < deadline, "stage 2 never saved its first checkpoint"
            time.sleep(0.5)
        drivers = [pid for pid, args in _descendants(proc.pid) if "revisual_verl.main_ppo" in args]
        assert drivers, "no stage-2 driver process found"
        for pid in drivers:
            os.kill(pid, signal.SIGKILL)
        output, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0
    assert not (run / "stage2" / "hf").exists()
    # Nothing of the killed launch survives it: its local Ray cluster stayed in the driver's session, stopped
    # once the driver died.
    for pid in drivers:
        assert session_processes(pid) == [], [ps_args(p) for p in session_processes(pid)]
    assert not (run / "stage2" / ".driver_session").exists()
    # A second launch refuses to guess; RESUME=1 continues stage 2 from its checkpoint.
    refused = run_quickstart(work_dir)
    assert refused.returncode != 0 and "RESUME=1" in refused.stderr
    resumed = run_quickstart(work_dir, RESUME="1")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-6000:]
    assert "stage 1: finished" in resumed.stderr
    assert {p: p.stat().st_mtime_ns for p in (run / "stage1").rglob("*") if p.is_file()} == stage1_files

    launches = sorted((run / "stage2" / "metrics").glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
    assert len(launches) >= 2
    resumed_steps = [json.loads(line)["step"] for line in launches[-1].read_text().splitlines()]
    assert resumed_steps == [2], "the resumed launch must start at the step after the checkpoint"
    # The resumed step draws what the uninterrupted chain drew at that step.
    uninterrupted = metrics(chain_dir / "run" / "stage2")[2]
    again = metrics(run / "stage2")[2]
    # The same draw: tau and the row counts exactly; the means up to float32 noise (std-normalised advantages
    # of near-equal rewards carry their rounding), far below what another draw would change.
    for key in ("pad/tau", "pad/effective_rows", "pad/selected_rows", "pad/distinct_selected_rows"):
        assert again[key] == uninterrupted[key], key
    for key in ("pad/abs_adv_mean_selected", "critic/score/mean"):
        assert again[key] == pytest.approx(uninterrupted[key], rel=1e-4), key
    assert (run / "stage3" / "hf" / "config.json").is_file()


def test_a_reward_worker_killed_mid_step_ends_the_run_with_an_error_naming_it(chain, tmp_path):
    chain_dir, _ = chain
    work_dir = tmp_path / "quickstart"
    proc = subprocess.Popen(
        ["bash", str(QUICKSTART), "--no-setup"],
        env=environment(work_dir, STAGES="2", MODEL_PATH=str(chain_dir / "run" / "stage1" / "hf")),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + CHAIN_TIMEOUT_S
    killed = []
    try:
        # Generation has started once the rollout server exists; the reward worker scores as it goes.
        while not killed:
            assert proc.poll() is None, "the run ended before its reward worker could be killed"
            assert time.monotonic() < deadline, "no reward worker and rollout server appeared"
            found = _ray_workers_of(proc.pid)
            if found.get("HFRolloutServer") and found.get("RewardLoopWorker"):
                time.sleep(2.0)
                killed = _ray_workers_of(proc.pid).get("RewardLoopWorker", [])
                for pid in killed:
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        output, _ = proc.communicate(timeout=900)  # never a hang: the run must end on its own
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert "RewardLoopWorker" in output and ("died" in output or "ActorDiedError" in output), output[-4000:]
    stage2 = work_dir / "run" / "stage2"
    steps = metrics(stage2)
    if proc.returncode == 0:
        # verl pads the trajectories of failed groups: nothing unscored may be trained on.
        assert all(step["pad/selected_rows"] == 0 for step in steps.values()), steps
    else:
        assert not (stage2 / "hf").exists()


def _ray_workers_of(pid: int) -> dict[str, list[int]]:
    """This run's Ray worker processes by actor class (Ray names them ray::<Class>.<method>): descendants of
    the run only, never a leftover of another run on the same machine."""
    found: dict[str, list[int]] = {}
    for child, args in _descendants(pid):
        if args.startswith("ray::"):
            name = args[5:].split(".")[0].split(":")[-1].split()[0]
            found.setdefault(name, []).append(child)
    return found
