"""``torchrun ... -m revisual_verl.sft_trainer``: verl's SFT trainer with the plugin's stage-1 config.

    torchrun --standalone --nproc_per_node=8 -m revisual_verl.sft_trainer --config-name=stage1_coldstart_sft \
        data.train_files=... model.path=...

verl's ``verl.trainer.sft_trainer`` (its training loop, engine, dataset and checkpoints) on
``config/stage1_coldstart_sft.yaml``. The revisual engine is picked by ``VERL_ENGINE_VENDOR``, which
verl reads from the environment: set here for every rank torchrun starts (they all run this module).
"""

import os

import hydra

from revisual_verl.config import register_search_path
from revisual_verl.engine.settings import ENGINE_VENDOR, VENDOR_ENV, check_sft_config

# Before Hydra builds its search path: the stage configs extend verl's (revisual_verl/config/__init__.py).
register_search_path()


@hydra.main(config_path="config", config_name="stage1_coldstart_sft", version_base=None)
def main(config) -> None:
    from verl.trainer import sft_trainer

    os.environ.setdefault(VENDOR_ENV, ENGINE_VENDOR)
    check_sft_config(config)
    # verl's main is itself a hydra.main; __wrapped__ is the plain function behind it.
    sft_trainer.main.__wrapped__(config)


if __name__ == "__main__":
    main()
