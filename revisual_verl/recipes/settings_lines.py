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


def engine_line(config: DictConfig, *, is_sft: bool) -> str:
    """``engine settings: ...``: the engine the workers build and what it applies."""
    from revisual_verl.engine.settings import ENGINE_VENDOR, VENDOR_ENV, EngineSettings

    env = dict(os.environ)
    if not is_sft:
        from omegaconf import OmegaConf

        env_vars = OmegaConf.select(config, "ray_kwargs.ray_init.runtime_env.env_vars", default=None)
        if env_vars is not None:
            env.update({str(k): str(v) for k, v in OmegaConf.to_container(env_vars, resolve=True).items()})
    vendor = env.get(VENDOR_ENV) or "verl default"
    if vendor != ENGINE_VENDOR:
        return f"engine settings: vendor={vendor} (verl's FSDP engine: no freezing, no entropy schedule)"
    try:
        settings = EngineSettings.from_env(env)
    except ValueError as error:
        return f"engine settings: vendor={vendor} invalid ({error})"
    values = {"vendor": vendor, "freeze_vision_tower": settings.freeze_vision_tower}
    if settings.freeze_vision_tower:
        values["vision_prefixes"] = ",".join(settings.vision_prefixes)
    schedule = settings.entropy_schedule
    if schedule is None:
        values["entropy_schedule"] = "none"
    else:
        values.update(
            {
                "entropy_schedule": schedule.schedule,
                "beta0": schedule.beta0,
                "beta_min": schedule.beta_min,
                "decay": schedule.decay,
                "warmup_updates": f"{schedule.warmup_updates} ({WARMUP_UNIT})",
            }
        )
        if schedule.linear_updates is not None:
            values["linear_updates"] = schedule.linear_updates
    return "engine settings: " + _pairs(values)
