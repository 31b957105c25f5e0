"""The two settings lines a dry run prints per stage: the PAD settings and the engine settings that will act.

One line each, ``name=value`` pairs, so a user sees before a run what PAD selects with and what the
revisual engine does on the workers (vision-tower freezing, the entropy schedule and its unit).
"""

from __future__ import annotations

import dataclasses
import os

from omegaconf import DictConfig

WARMUP_UNIT = "optimizer updates"


def _pairs(values: dict) -> str:
    return " ".join(f"{key}={value}" for key, value in values.items())


def pad_line(config: DictConfig, *, is_sft: bool) -> str:
    """``PAD settings: ...``: every field of the PAD config this stage trains with, or why none acts."""
    if is_sft:
        return "PAD settings: none (SFT stage)"
    estimator = config.algorithm.adv_estimator
    estimator = getattr(estimator, "value", estimator)
    from revisual_verl.pad.estimator import PAD_ESTIMATOR

    if estimator != PAD_ESTIMATOR:
        return f"PAD settings: off (algorithm.adv_estimator={estimator})"
    from revisual_verl.pad.config import PadConfig

    try:
        pad = PadConfig.from_algorithm(config.algorithm)
    except Exception as error:  # noqa: BLE001  the algorithm.pad check reports it as an error
        return f"PAD settings: invalid ({error})"
    values = dataclasses.asdict(pad)
    # Only what acts: the temperature drives the softmax priority, the exponent the power priority.
    if values.get("priority") == "power":
        values = {k: v for k, v in values.items() if not k.startswith("tau_")}
    elif values.get("priority") == "softmax":
        values.pop("alpha", None)
    return "PAD settings: " + _pairs(values)


def engine_line(config: DictConfig, *, is_sft: bool, sets_vendor: bool = False) -> str:
    """``engine settings: ...``: the engine the workers build and what it applies.

    RL workers get ``VERL_ENGINE_VENDOR`` from the config's Ray runtime environment; SFT processes
    from the launcher's environment, or from the entry point itself (``sets_vendor``).
    """
    from omegaconf import OmegaConf

    from revisual_verl.engine.config import EngineSettings
    from revisual_verl.engine.settings import (
        ACTOR_ENGINE_KEY,
        ENGINE_VENDOR,
        VENDOR_ENV,
        convert_engine_section,
        runtime_env_vars,
    )

    if is_sft:
        key, section = "engine", config.get("engine", None)
        vendor = os.environ.get(VENDOR_ENV) or (ENGINE_VENDOR if sets_vendor else None)
    else:
        key, section = ACTOR_ENGINE_KEY, OmegaConf.select(config, ACTOR_ENGINE_KEY, default=None)
        vendor = runtime_env_vars(config).get(VENDOR_ENV)
    vendor = vendor or "verl default"
    if vendor != ENGINE_VENDOR:
        return f"engine settings: vendor={vendor} (verl's FSDP engine: no freezing, no entropy schedule)"
    try:
        engine_config = convert_engine_section(section, key)
    except ValueError as error:
        return f"engine settings: vendor={vendor} invalid ({error})"
    return f"engine settings: vendor={vendor} {EngineSettings.from_engine_config(engine_config).summary()}"
