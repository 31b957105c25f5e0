"""Stage 1 on a Ray cluster: ``revisual_verl.sft_trainer_ray`` gives every worker the revisual engine vendor.

verl's own ``sft_trainer_ray`` calls a bare ``ray.init()``; its workers never see VERL_ENGINE_VENDOR and
build verl's stock engine. The entry point here starts Ray with the vendor in the job's runtime env.
"""

import os
import subprocess
import sys

from revisual_verl import sft_trainer_ray


def test_the_runtime_env_carries_the_vendor(monkeypatch):
    monkeypatch.delenv("VERL_ENGINE_VENDOR", raising=False)
    assert sft_trainer_ray.ray_runtime_env() == {"env_vars": {"VERL_ENGINE_VENDOR": "revisual"}}
    monkeypatch.setenv("VERL_ENGINE_VENDOR", "acme")
    assert sft_trainer_ray.ray_runtime_env() == {"env_vars": {"VERL_ENGINE_VENDOR": "acme"}}


def test_run_sft_starts_ray_with_the_vendor_then_runs_verls_trainer(monkeypatch):
    import ray
    import verl.trainer.sft_trainer_ray as verl_sft_ray

    calls = []
    monkeypatch.delenv("VERL_ENGINE_VENDOR", raising=False)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(("init", kwargs)))

    class FakeTrainer:
        def __init__(self, config):
            calls.append(("trainer", os.environ.get("VERL_ENGINE_VENDOR")))

        def fit(self):
            calls.append(("fit", None))

    monkeypatch.setattr(verl_sft_ray, "SFTTrainer", FakeTrainer)
    monkeypatch.setattr(sft_trainer_ray, "check_sft_config", lambda config: None)
    sft_trainer_ray.run_sft(config=None)
    assert calls == [
        ("init", {"runtime_env": {"env_vars": {"VERL_ENGINE_VENDOR": "revisual"}}}),
        ("trainer", "revisual"),
        ("fit", None),
    ]


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
    """A real local (CPU) Ray cluster, in a fresh process with the vendor unset: a worker of the job reads
    the variable verl reads, though the driver's own environment never had it."""
    env = {k: v for k, v in os.environ.items() if k not in ("VERL_ENGINE_VENDOR", "RAY_ADDRESS")}
    env["RAY_AUTH_MODE"] = "disabled"
    result = subprocess.run(
        [sys.executable, "-c", WORKER_SEES], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "worker revisual driver None" in result.stdout
