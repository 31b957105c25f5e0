"""What a recipe's training command means to Hydra: which config it composes and with which overrides.

The shell recipes hand the dry run the exact argv they would execute, so the dry run composes
the same config from the same overrides instead of keeping a second copy of them.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Sequence

# Entry module -> (Python package holding its Hydra configs, config name), as each module's
# @hydra.main declares them.
ENTRY_CONFIGS: dict[str, tuple[str, str]] = {
    "revisual_verl.main_ppo": ("revisual_verl.config", "revisual_ppo"),
    "revisual_verl.sft_trainer": ("revisual_verl.config", "stage1_coldstart_sft"),
    "revisual_verl.sft_trainer_ray": ("revisual_verl.config", "stage1_coldstart_sft"),
    "verl.trainer.main_ppo": ("verl.trainer.config", "ppo_trainer"),
    "verl.trainer.sft_trainer": ("verl.trainer.config", "sft_trainer_engine"),
    "verl.trainer.sft_trainer_ray": ("verl.trainer.config", "sft_trainer_engine"),
    # The CPU mode's stage 1: verl's SFT trainer on a gloo group, the plugin's stage-1 config.
    "revisual_verl.cpu.sft": ("revisual_verl.config", "stage1_coldstart_sft"),
}

SFT_MODULES = (
    "verl.trainer.sft_trainer",
    "verl.trainer.sft_trainer_ray",
    "revisual_verl.sft_trainer",
    "revisual_verl.sft_trainer_ray",
    "revisual_verl.cpu.sft",
)

CONFIG_NAME_FLAG = "--config-name"


class CommandError(ValueError):
    """The command cannot be dry-run (no ``-m module``, an unknown module, or a Hydra flag)."""


@dataclasses.dataclass(frozen=True)
class TrainCommand:
    argv: tuple[str, ...]
    module: str
    overrides: tuple[str, ...]
    # --config-name given on the command line (a config of the module's config package), else None.
    config_name_flag: str | None = None

    @property
    def config_module(self) -> str:
        return ENTRY_CONFIGS[self.module][0]

    @property
    def config_name(self) -> str:
        return self.config_name_flag or ENTRY_CONFIGS[self.module][1]

    @property
    def is_sft(self) -> bool:
        return self.module in SFT_MODULES

    def shell(self) -> str:
        """The command as one line a shell would run unchanged."""
        return shlex.join(self.argv)


def parse_command(argv: Sequence[str]) -> TrainCommand:
    """Split ``[launcher ...] -m MODULE override...`` into the module and its Hydra overrides."""
    argv = tuple(argv)
    if "-m" not in argv[:-1]:
        raise CommandError(
            f"expected a command of the form '<python|torchrun> ... -m MODULE overrides...', got: {shlex.join(argv)}"
        )
    at = argv.index("-m")
    module, rest = argv[at + 1], list(argv[at + 2 :])
    if module not in ENTRY_CONFIGS:
        raise CommandError(f"cannot dry-run module {module!r}: known entry points are {', '.join(ENTRY_CONFIGS)}")
    config_name = None
    overrides = []
    while rest:
        arg = rest.pop(0)
        if arg == CONFIG_NAME_FLAG and rest:
            config_name = rest.pop(0)
        elif arg.startswith(CONFIG_NAME_FLAG + "="):
            config_name = arg.split("=", 1)[1]
        else:
            overrides.append(arg)
    if config_name is not None and not config_name:
        raise CommandError(f"{CONFIG_NAME_FLAG} needs a config name")
    flags = [arg for arg in overrides if arg.startswith("-")]
    if flags:
        # --config-path, --cfg, -m (multirun) and friends change what Hydra does, not the config.
        raise CommandError(
            f"Hydra command-line flags other than {CONFIG_NAME_FLAG} are not supported in a dry run: {' '.join(flags)}"
        )
    return TrainCommand(argv=argv, module=module, overrides=tuple(overrides), config_name_flag=config_name)
