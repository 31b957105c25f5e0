"""Stage 1 on the CPU: verl's own SFT trainer, launched by torchrun, on a gloo process group.

    VERL_PLATFORM=cpu torchrun --standalone --nproc_per_node=1 -m revisual_verl.cpu.sft [verl sft overrides]

verl's ``run_sft`` opens its group with ``cpu:gloo,<device>:<backend>`` (verl/utils/distributed.py,
``initialize_global_process_group``), which torch refuses as a duplicate on a CPU platform. This entry
point takes verl's ``sft_trainer_engine`` config unchanged, opens a gloo group itself, and runs verl's
``SFTTrainer``: the training loop, engine, dataset and checkpoints are verl's.
"""

import hydra


@hydra.main(config_path="pkg://verl.trainer.config", config_name="sft_trainer_engine", version_base=None)
def main(config) -> None:
    import torch.distributed as dist
    from verl.trainer.sft_trainer import SFTTrainer

    dist.init_process_group(backend="gloo")
    try:
        SFTTrainer(config=config).fit()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
