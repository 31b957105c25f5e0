"""Stage 1 on a Ray cluster: ``revisual_verl.sft_trainer_ray`` gives every worker the revisual engine vendor.

verl's own ``sft_trainer_ray`` calls a bare ``ray.init()``; its workers never see VERL_ENGINE_VENDOR and
build verl's stock engine. The entry point here starts Ray with the vendor in the job's runtime env (and, for
``trainer.device=cpu``, the CPU platform and the gloo start-up hook).

The main test is the multi-node route as a user runs it, on one machine: a private Ray head started with
``ray start --head`` (its own process session, ports and temp dir, no verl variable in its environment),
a driver attached to it through ``RAY_ADDRESS`` running ``python -m revisual_verl.sft_trainer_ray``, and
verl's ``SFTTrainer`` training a tiny Qwen2.5-VL for two steps on a CPU worker of that cluster.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from revisual_verl import sft_trainer_ray

ROOT = Path(__file__).resolve().parents[1]
COLDSTART_SAMPLES = ROOT / "examples" / "data" / "raw" / "coldstart.json"
# Neither the head nor the driver may carry these: a worker can get them only from the job's runtime env.
VERL_ENV = ("VERL_ENGINE_VENDOR", "VERL_PLATFORM", "RAY_ADDRESS")
# What each revisual engine logs when it is built (revisual_verl/engine/fsdp_engine.py).
ENGINE_LINE = "revisual engine, rank 0, trained model (RevisualFSDPEngineConfig)"
HOOK_LINE = "revisual engine: vision-output hook on model.visual"
HEAD_START_TIMEOUT_S = 90
# About 20 s on 2 cores; the bound only turns a hang into a failure.
DRIVER_TIMEOUT_S = 180
STEPS = 2
# Ray's unix socket paths (temp dir + session_<date>_<pid>/sockets/plasma_store) must stay under ~107 chars.
MAX_TEMP_DIR_LEN = 40


def test_the_runtime_env_carries_the_vendor(monkeypatch):
    monkeypatch.delenv("VERL_ENGINE_VENDOR", raising=False)
    assert sft_trainer_ray.ray_runtime_env() == {"env_vars": {"VERL_ENGINE_VENDOR": "revisual"}}
    assert sft_trainer_ray.ray_runtime_env("cuda") == {"env_vars": {"VERL_ENGINE_VENDOR": "revisual"}}
    monkeypatch.setenv("VERL_ENGINE_VENDOR", "acme")
    assert sft_trainer_ray.ray_runtime_env() == {"env_vars": {"VERL_ENGINE_VENDOR": "acme"}}


def test_the_cpu_runtime_env_also_carries_the_platform_and_the_gloo_hook(monkeypatch):
    monkeypatch.delenv("VERL_ENGINE_VENDOR", raising=False)
    assert sft_trainer_ray.ray_runtime_env("cpu") == {
        "env_vars": {"VERL_ENGINE_VENDOR": "revisual", "VERL_PLATFORM": "cpu"},
        "worker_process_setup_hook": "revisual_verl.cpu.process_group.init_gloo_process_group",
    }


def test_run_sft_starts_ray_with_the_runtime_env_of_its_device(monkeypatch):
    import ray
    import verl.trainer.sft_trainer_ray as verl_sft_ray
    from omegaconf import OmegaConf

    calls = []
    monkeypatch.delenv("VERL_ENGINE_VENDOR", raising=False)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs["runtime_env"]))
    monkeypatch.setattr(verl_sft_ray, "SFTTrainer", lambda config: type("Fit", (), {"fit": lambda self: None})())
    monkeypatch.setattr(sft_trainer_ray, "check_sft_config", lambda config: None)
    for device in ("cuda", "cpu"):
        sft_trainer_ray.run_sft(OmegaConf.create({"trainer": {"device": device}}))
    assert calls == [sft_trainer_ray.ray_runtime_env("cuda"), sft_trainer_ray.ray_runtime_env("cpu")]
    assert "worker_process_setup_hook" not in calls[0] and calls[1]["env_vars"]["VERL_PLATFORM"] == "cpu"


WORKER_SEES = """
import os, ray
from revisual_verl import sft_trainer_ray
ray.init(runtime_env=sft_trainer_ray.ray_runtime_env(), num_cpus=1, include_dashboard=False)
try:
    @ray.remote(num_cpus=0)
    def worker_vendor():
        return os.environ.get("VERL_ENGINE_VENDOR")
    print("worker", ray.get(worker_vendor.remote()), "driver", os.environ.get("VERL_ENGINE_VENDOR"))
finally:
    ray.shutdown()
"""


def test_workers_of_a_local_ray_cluster_see_the_vendor():
    """A local Ray instance started by ``ray.init`` itself, in a fresh process with the vendor unset: a worker
    of the job reads the variable verl reads, though the driver's own environment never had it."""
    env = {k: v for k, v in os.environ.items() if k not in VERL_ENV}
    env["RAY_AUTH_MODE"] = "disabled"
    result = subprocess.run(
        [sys.executable, "-c", WORKER_SEES], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "worker revisual driver None" in result.stdout


# --- a private Ray head, started with `ray start`, and a driver attached to it ---------------------------------


@dataclass
class RayHead:
    address: str
    temp_dir: Path
    process: subprocess.Popen
    log: Path

    def worker_logs(self) -> str:
        logs = sorted((self.temp_dir / "session_latest" / "logs").glob("worker-*"))
        return "\n".join(path.read_text(errors="replace") for path in logs)


def free_ports(count: int) -> list[int]:
    """Ports nobody listens on now (held open together, so they differ)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("", 0))
        return [sock.getsockname()[1] for sock in sockets]


def checkout_env(**extra: str) -> dict:
    """This environment without verl's variables, importing this checkout first (head, workers, driver)."""
    env = {k: v for k, v in os.environ.items() if k not in VERL_ENV}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0", TOKENIZERS_PARALLELISM="false", **extra)
    return env


def live_session_members(sid: int) -> list[tuple[int, str]]:
    """Processes of the session ``sid`` that are not zombies: (pid, command)."""
    out = subprocess.run(["ps", "-eo", "pid=,sid=,stat=,args="], capture_output=True, text=True, check=True).stdout
    members = []
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) >= 3 and int(parts[1]) == sid and not parts[2].startswith("Z"):
            members.append((int(parts[0]), parts[3] if len(parts) > 3 else ""))
    return members


def wait_for_no_members(sid: int, timeout_s: float) -> list[tuple[int, str]]:
    deadline = time.monotonic() + timeout_s
    while (members := live_session_members(sid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return members


def stop_head(process: subprocess.Popen) -> list[tuple[int, str]]:
    """SIGTERM to the head's process group, SIGKILL to whatever of its session is left; returns the survivors.

    Only this session's processes are signalled (the head leads it: start_new_session); never `ray stop`,
    which would stop every Ray instance of the machine.
    """
    sid = process.pid
    try:
        os.killpg(sid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    # Workers have process groups of their own inside the session; the raylet stops them on SIGTERM.
    left = wait_for_no_members(sid, 15)
    for pid, _ in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)
    return wait_for_no_members(sid, 10)


@pytest.fixture
def ray_head(tmp_path):
    """A Ray head of this test only, as `ray start --head --block` on a user's head node, with no verl variable
    in its environment: every port its own (fixed ones free now, the rest chosen by the OS), its own temp dir,
    a process session of its own."""
    temp_dir = Path(tempfile.mkdtemp(prefix="rvh-", dir="/tmp"))
    assert len(str(temp_dir)) <= MAX_TEMP_DIR_LEN, temp_dir
    gcs_port, client_port, dashboard_port = free_ports(3)
    ray = Path(sys.executable).with_name("ray")
    command = [
        str(ray), "start", "--head", "--block", "--disable-usage-stats",
        f"--port={gcs_port}", f"--ray-client-server-port={client_port}",
        "--include-dashboard=false", f"--dashboard-port={dashboard_port}",
        # 0: the OS picks a free port, so no clash with another Ray instance on this machine.
        "--node-manager-port=0", "--object-manager-port=0", "--min-worker-port=0", "--max-worker-port=0",
        "--dashboard-agent-listen-port=0", "--dashboard-agent-grpc-port=0", "--runtime-env-agent-port=0",
        "--metrics-export-port=0",
        f"--temp-dir={temp_dir}", "--num-cpus=4",
    ]  # fmt: skip
    log = tmp_path / "ray_head.log"
    # Ray drains a node for up to 30 s on SIGTERM by default; nothing here needs draining.
    env = checkout_env(RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0")
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        address_file = temp_dir / "ray_current_cluster"  # written by `ray start` once the head is up
        deadline = time.monotonic() + HEAD_START_TIMEOUT_S
        while not (address_file.exists() and address_file.read_text().strip()):
            assert process.poll() is None, f"ray start exited {process.returncode}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"the Ray head did not start:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        yield RayHead(address_file.read_text().strip(), temp_dir, process, log)
    finally:
        survivors = stop_head(process)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not survivors, f"processes of the Ray head's session survived: {survivors}"


@pytest.fixture
def tiny_stage1_inputs(tmp_path):
    """A tiny Qwen2.5-VL (random weights) and the bundled cold-start samples prepared as stage-1 data."""
    from revisual_verl.cpu.tiny_model import build_tiny_qwen25_vl
    from revisual_verl.data.cli import main as data_cli

    model = build_tiny_qwen25_vl(tmp_path / "tiny-qwen2.5-vl")
    data = tmp_path / "coldstart"
    cli = ["prepare", "coldstart", "--input", str(COLDSTART_SAMPLES), "--output", str(data), "--val-size", "2"]
    assert data_cli([*cli, "--no-progress"]) == 0
    return model, data / "train.parquet"


def stage1_cpu_overrides(model: Path, train_file: Path, checkpoints: Path) -> list[str]:
    """The stage-1 config (revisual_verl/config/stage1_coldstart_sft.yaml) cut to two 2-sequence steps on one CPU
    worker, with the CPU mode's config group (sft_device=cpu: fp32, sdpa, no remove-padding, FSDP2,
    trainer.device=cpu), from which the entry point derives everything a CPU worker needs."""
    return [
        f"data.train_files={train_file}",
        "data.val_files=null",
        "data.max_length=1024",
        "data.micro_batch_size_per_gpu=2",
        "data.train_batch_size=2",
        f"model.path={model}",
        "sft_device=cpu",
        "trainer.nnodes=1",
        "trainer.n_gpus_per_node=1",
        "trainer.total_epochs=1",
        f"trainer.total_training_steps={STEPS}",
        "trainer.logger=[console]",
        f"trainer.default_local_dir={checkpoints}",
    ]


def run_driver(command: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    """The driver in a session of its own, so that a hang (e.g. a placement group asking for a GPU that the
    cluster lacks) ends with the driver and its data-loader processes killed, not orphaned."""
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=DRIVER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"the driver did not finish in {DRIVER_TIMEOUT_S} s:\n{(stdout + stderr)[-6000:]}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def test_stage1_trains_on_an_existing_ray_cluster_with_the_revisual_engine(ray_head, tiny_stage1_inputs, tmp_path):
    """`ray start --head`, then the entry point attached to it through RAY_ADDRESS, as on a multi-node cluster:
    verl's SFTTrainer trains two steps on a worker of that cluster, which built the revisual engine, and saves
    a checkpoint. Neither the head nor the driver had VERL_ENGINE_VENDOR or VERL_PLATFORM in its environment."""
    model, train_file = tiny_stage1_inputs
    checkpoints = tmp_path / "checkpoints"
    driver = run_driver(
        [sys.executable, "-m", "revisual_verl.sft_trainer_ray", *stage1_cpu_overrides(model, train_file, checkpoints)],
        env=checkout_env(RAY_ADDRESS=ray_head.address),
        cwd=tmp_path,  # Hydra's outputs/
    )
    output = driver.stdout + driver.stderr
    assert driver.returncode == 0, output[-6000:]
    assert f"Connecting to existing Ray cluster at address: {ray_head.address}" in output, output[-3000:]

    # The worker ran on the head's raylet (its log is in the head's temp dir) and built the revisual engine,
    # on the CPU platform, with the hook that lets verl's Qwen2-VL forward run text-only batches.
    worker_logs = ray_head.worker_logs()
    assert ENGINE_LINE in worker_logs, worker_logs[-6000:]
    assert HOOK_LINE in worker_logs, worker_logs[-6000:]
    assert "Platform override from VERL_PLATFORM: cpu" in worker_logs, worker_logs[-6000:]

    # verl's trainer logged both steps (a finite loss) and saved the last one.
    for step in range(1, STEPS + 1):
        assert f"step:{step} - " in driver.stdout, driver.stdout[-3000:]
    assert "train/loss:nan" not in driver.stdout
    assert (checkpoints / "latest_checkpointed_iteration.txt").read_text().strip() == str(STEPS)
    step_dir = checkpoints / f"global_step_{STEPS}"
    assert (step_dir / "model_world_size_1_rank_0.pt").is_file(), sorted(p.name for p in step_dir.iterdir())
    assert (step_dir / "huggingface" / "config.json").is_file()
