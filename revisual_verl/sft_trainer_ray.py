"""``python -m revisual_verl.sft_trainer_ray``: stage 1 on a Ray cluster (the multi-node route).

verl's ``verl.trainer.sft_trainer_ray`` calls a bare ``ray.init()``, so its workers never get
``VERL_ENGINE_VENDOR`` and build verl's stock engine, which fails on text-only Qwen2.5-VL batches.
This entry point runs the same trainer (verl's ``SFTTrainer`` of that module) after ``ray.init`` with
the vendor in the job's runtime environment, which Ray hands to every worker of the job, also when
the driver attaches to an existing cluster (``RAY_ADDRESS`` or ``ray start`` on this node).
"""

import os

import hydra

from revisual_verl.engine.settings import ENGINE_VENDOR, VENDOR_ENV, check_sft_config


def ray_runtime_env() -> dict:
    """The job's runtime environment: the engine vendor (verl reads it in each worker)."""
    return {"env_vars": {VENDOR_ENV: os.environ.get(VENDOR_ENV, ENGINE_VENDOR)}}


def run_sft(config) -> None:
    import ray
    from verl.trainer.sft_trainer_ray import SFTTrainer

    os.environ.setdefault(VENDOR_ENV, ENGINE_VENDOR)
    check_sft_config(config)
    if not ray.is_initialized():
        ray.init(runtime_env=ray_runtime_env())
    SFTTrainer(config=config).fit()


@hydra.main(config_path="config", config_name="stage1_coldstart_sft", version_base=None)
def main(config) -> None:
    from verl.utils.device import auto_set_device

    auto_set_device(config)
    run_sft(config)


if __name__ == "__main__":
    main()
