"""Stage 1 on the CPU: verl's own SFT trainer, launched by torchrun, on a gloo process group.

    VERL_PLATFORM=cpu torchrun --standalone --nproc_per_node=1 -m revisual_verl.cpu.sft [verl sft overrides]

verl's ``run_sft`` opens its group with ``cpu:gloo,<device>:<backend>`` (verl/utils/distributed.py,
``initialize_global_process_group``), which torch refuses as a duplicate on a CPU platform. This entry
point takes the plugin's stage-1 config (``config/stage1_coldstart_sft.yaml``, verl's
``sft_trainer_engine`` plus the stage's settings), opens a gloo group itself, and runs verl's
``SFTTrainer``: the training loop, engine, dataset and checkpoints are verl's.
"""

import hydra

from revisual_verl.config import register_search_path

# Before Hydra builds its search path: the stage configs extend verl's (revisual_verl/config/__init__.py).
register_search_path()


@hydra.main(config_path="pkg://revisual_verl.config", config_name="stage1_coldstart_sft", version_base=None)
def main(config) -> None:
    import os

    import torch.distributed as dist
    from verl.trainer.sft_trainer import SFTTrainer

    from revisual_verl.engine.settings import ENGINE_VENDOR, VENDOR_ENV, check_sft_config

    os.environ.setdefault(VENDOR_ENV, ENGINE_VENDOR)
    check_sft_config(config)

    dist.init_process_group(backend="gloo")
    try:
        SFTTrainer(config=config).fit()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
