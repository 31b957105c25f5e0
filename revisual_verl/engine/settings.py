"""Driver-side checks of the revisual engine's settings, which are verl config keys (engine/config.py).

Only what verl itself reads from the environment stays there: ``VERL_ENGINE_VENDOR`` picks the
engine class in every process that builds one. The RL stage configs put it in
``ray_kwargs.ray_init.runtime_env.env_vars`` (so a driver attached to an existing Ray cluster hands it
to the job's workers too); the SFT launchers export it (torchrun) or pass it to ``ray.init``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from revisual_verl.engine.config import ENGINE_CONFIG_TARGET, EngineConfigError, EngineSettings

ENGINE_VENDOR = "revisual"
VENDOR_ENV = "VERL_ENGINE_VENDOR"
RUNTIME_ENV_KEY = "ray_kwargs.ray_init.runtime_env.env_vars"
ACTOR_ENGINE_KEY = "actor_rollout_ref.actor.fsdp_config"
ACTOR_FREEZE_KEY = "actor_rollout_ref.actor.freeze_vision_tower"


def convert_engine_section(section: Any, key: str):
    """verl's conversion of an engine section (``omega_conf_to_dataclass``); errors name ``key``."""
    from omegaconf import DictConfig, OmegaConf
    from verl.utils.config import omega_conf_to_dataclass

    if section is None:
        raise ValueError(f"{key} is missing")
    try:
        # Resolved in place (interpolations see the whole config), then detached.
        container = OmegaConf.to_container(section, resolve=True) if isinstance(section, DictConfig) else dict(section)
        return omega_conf_to_dataclass(OmegaConf.create(container))
    except Exception as error:  # noqa: BLE001  hydra wraps the dataclass's own error
        cause = error
        while getattr(cause, "__cause__", None) is not None:
            cause = cause.__cause__
        raise ValueError(f"{key}.{cause}" if isinstance(cause, EngineConfigError) else f"{key}: {cause}") from None


def is_revisual_engine_section(section: Any) -> bool:
    return section is not None and section.get("_target_", None) == ENGINE_CONFIG_TARGET


def runtime_env_vars(config: Any) -> dict[str, str]:
    from omegaconf import OmegaConf

    env_vars = OmegaConf.select(config, RUNTIME_ENV_KEY, default=None)
    if env_vars is None:
        return {}
    return {str(k): v for k, v in OmegaConf.to_container(env_vars, resolve=True).items()}


def check_trainer_config(config: Any) -> EngineSettings:
    """The settings the actor's engine will apply, checked on the driver before Ray starts.

    Raises when a setting is bad (naming its key), when ``actor.freeze_vision_tower=True`` would be
    ignored (the actor's engine config is not the revisual one, or the engine is not selected), or
    when the engine's freeze flag was set apart from verl's key (one key only).
    """
    from omegaconf import OmegaConf

    section = OmegaConf.select(config, ACTOR_ENGINE_KEY, default=None)
    engine_config = convert_engine_section(section, ACTOR_ENGINE_KEY)
    settings = EngineSettings.from_engine_config(engine_config)
    verl_freeze = bool(OmegaConf.select(config, ACTOR_FREEZE_KEY, default=False))
    revisual = is_revisual_engine_section(section)
    if verl_freeze and not revisual:
        raise ValueError(
            f"{ACTOR_FREEZE_KEY}=True but {ACTOR_ENGINE_KEY}._target_ is {section.get('_target_')!r}: verl ignores "
            "the key, so the tower would train. Use a revisual stage config "
            f"(its engine section is {ENGINE_CONFIG_TARGET})"
        )
    if revisual and settings.freeze_vision_tower != verl_freeze:
        raise ValueError(
            f"{ACTOR_ENGINE_KEY}.freeze_vision_tower={settings.freeze_vision_tower} disagrees with "
            f"{ACTOR_FREEZE_KEY}={verl_freeze}: set only {ACTOR_FREEZE_KEY} (the engine key follows it)"
        )
    vendor = runtime_env_vars(config).get(VENDOR_ENV)
    if revisual and vendor != ENGINE_VENDOR:
        raise ValueError(
            f"{ACTOR_ENGINE_KEY} holds revisual engine settings but {RUNTIME_ENV_KEY}.{VENDOR_ENV}={vendor!r}: "
            f"the workers would build verl's engine and ignore them; set it to {ENGINE_VENDOR!r}"
        )
    return settings


def check_sft_config(config: Any, environ: Mapping[str, str] | None = None) -> EngineSettings:
    """The settings the SFT engine will apply; its vendor comes from the launcher's environment."""
    section = config.get("engine", None)
    engine_config = convert_engine_section(section, "engine")
    settings = EngineSettings.from_engine_config(engine_config)
    env = os.environ if environ is None else environ
    if is_revisual_engine_section(section) and env.get(VENDOR_ENV) != ENGINE_VENDOR:
        raise ValueError(
            f"engine holds revisual engine settings but {VENDOR_ENV}={env.get(VENDOR_ENV)!r} in this environment: "
            f"launch with {VENDOR_ENV}={ENGINE_VENDOR} (the recipes do)"
        )
    return settings
