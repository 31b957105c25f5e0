"""``python -m revisual_verl.sft_trainer_ray``: stage 1 on a Ray cluster (the multi-node route).

verl's ``verl.trainer.sft_trainer_ray`` calls a bare ``ray.init()``, so its workers never get
``VERL_ENGINE_VENDOR`` and build verl's stock engine, which fails on text-only Qwen2.5-VL batches.
This entry point runs the same trainer (verl's ``SFTTrainer`` of that module) after ``ray.init`` with
the vendor in the job's runtime environment, which Ray hands to every worker of the job, also when
the driver attaches to an existing cluster (``RAY_ADDRESS`` or ``ray start`` on this node).

With ``trainer.device=cpu`` (the CPU mode, docs/cpu.md) the same runtime environment also carries what
a CPU worker needs: verl's ``VERL_PLATFORM=cpu`` and the Ray start-up hook that opens the worker's gloo
process group (``revisual_verl.cpu.process_group``); the driver selects the CPU platform itself before
verl resolves it. Nothing has to be exported by the user, on any node.
"""

import os

import hydra

from revisual_verl.config import register_search_path
from revisual_verl.cpu.driver import CPU_DEVICE, CPU_SETUP_HOOK, PLATFORM_ENV, select_cpu_platform
from revisual_verl.engine.settings import ENGINE_VENDOR, VENDOR_ENV, check_sft_config


def ray_runtime_env(device: str | None = None) -> dict:
    """The job's runtime environment: the engine vendor (verl reads it in each worker), and for
    ``device == "cpu"`` the CPU platform and the gloo start-up hook."""
    runtime_env = {"env_vars": {VENDOR_ENV: os.environ.get(VENDOR_ENV, ENGINE_VENDOR)}}
    if device == CPU_DEVICE:
        runtime_env["env_vars"][PLATFORM_ENV] = CPU_DEVICE
        runtime_env["worker_process_setup_hook"] = CPU_SETUP_HOOK
    return runtime_env


def run_sft(config) -> None:
    import ray
    from verl.trainer.sft_trainer_ray import SFTTrainer

    os.environ.setdefault(VENDOR_ENV, ENGINE_VENDOR)
    check_sft_config(config)
    if not ray.is_initialized():
        ray.init(runtime_env=ray_runtime_env(config.trainer.device))
    SFTTrainer(config=config).fit()


# Before Hydra builds its search path: the stage configs extend verl's (revisual_verl/config/__init__.py).
register_search_path()


@hydra.main(config_path="config", config_name="stage1_coldstart_sft", version_base=None)
def main(config) -> None:
    if config.trainer.device == CPU_DEVICE:
        select_cpu_platform()
    from verl.utils.device import auto_set_device

    auto_set_device(config)
    run_sft(config)


if __name__ == "__main__":
    main()
