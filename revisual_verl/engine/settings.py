"""The revisual engine's settings, carried to verl's workers in environment variables.

verl builds the actor engine from dataclass configs (engine, optimizer, model, checkpoint) that
refuse unknown keys, and the engine never sees the actor section: ``actor.freeze_vision_tower``
does not reach it, and there is no key for a schedule. Environment variables are how verl itself
picks the engine (``VERL_ENGINE_VENDOR``), so the settings travel the same way; pass them with
``+ray_kwargs.ray_init.runtime_env.env_vars.NAME=value`` so every Ray worker, on every node, has them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from revisual_verl.engine.entropy_schedule import EntropySchedule, ScheduleError
from revisual_verl.engine.vision_freeze import DEFAULT_VISION_PREFIXES, normalize_prefixes

ENGINE_VENDOR = "revisual"
VENDOR_ENV = "VERL_ENGINE_VENDOR"

FREEZE_ENV = "REVISUAL_FREEZE_VISION_TOWER"
VISION_PREFIXES_ENV = "REVISUAL_VISION_PREFIXES"
SCHEDULE_ENV = "REVISUAL_ENTROPY_SCHEDULE"
BETA0_ENV = "REVISUAL_ENTROPY_BETA0"
BETA_MIN_ENV = "REVISUAL_ENTROPY_BETA_MIN"
DECAY_ENV = "REVISUAL_ENTROPY_DECAY"
WARMUP_ENV = "REVISUAL_ENTROPY_WARMUP_UPDATES"
LINEAR_UPDATES_ENV = "REVISUAL_ENTROPY_LINEAR_UPDATES"

SCHEDULE_OFF = "none"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")
_RUNTIME_ENV_KEY = "ray_kwargs.ray_init.runtime_env.env_vars"


@dataclasses.dataclass(frozen=True)
class EngineSettings:
    freeze_vision_tower: bool = False
    vision_prefixes: tuple[str, ...] = DEFAULT_VISION_PREFIXES
    entropy_schedule: EntropySchedule | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EngineSettings:
        env = os.environ if environ is None else environ
        freeze = _parse_bool(env, FREEZE_ENV)
        prefixes = DEFAULT_VISION_PREFIXES
        if env.get(VISION_PREFIXES_ENV, "").strip():
            try:
                prefixes = normalize_prefixes(env[VISION_PREFIXES_ENV].split(","))
            except ValueError as err:
                raise ValueError(f"{VISION_PREFIXES_ENV}={env[VISION_PREFIXES_ENV]!r}: {err}") from None
        return cls(freeze_vision_tower=freeze, vision_prefixes=prefixes, entropy_schedule=_parse_schedule(env))

    def to_env(self) -> dict[str, str]:
        """The environment variables (VERL_ENGINE_VENDOR included) that reproduce these settings."""
        env = {VENDOR_ENV: ENGINE_VENDOR, FREEZE_ENV: "1" if self.freeze_vision_tower else "0"}
        if self.vision_prefixes != DEFAULT_VISION_PREFIXES:
            env[VISION_PREFIXES_ENV] = ",".join(self.vision_prefixes)
        schedule = self.entropy_schedule
        if schedule is None:
            env[SCHEDULE_ENV] = SCHEDULE_OFF
            return env
        env.update(
            {
                SCHEDULE_ENV: schedule.schedule,
                BETA0_ENV: repr(float(schedule.beta0)),
                BETA_MIN_ENV: repr(float(schedule.beta_min)),
                DECAY_ENV: repr(float(schedule.decay)),
                WARMUP_ENV: str(schedule.warmup_updates),
            }
        )
        if schedule.linear_updates is not None:
            env[LINEAR_UPDATES_ENV] = str(schedule.linear_updates)
        return env

    def hydra_overrides(self) -> list[str]:
        """``+ray_kwargs.ray_init.runtime_env.env_vars.NAME="value"`` overrides for verl's main_ppo.

        Values are quoted because Ray refuses non-string env_vars and Hydra would read 1 or 0.02 as numbers.
        """
        return [f'+{_RUNTIME_ENV_KEY}.{name}="{value}"' for name, value in self.to_env().items()]


def check_trainer_config(config: Any, environ: Mapping[str, str] | None = None) -> EngineSettings:
    """Driver-side start-up check: the settings the workers will see, and agreement with verl's keys.

    The workers' environment is the driver's (a local Ray cluster inherits it) overlaid with
    ``ray_kwargs.ray_init.runtime_env.env_vars``. Raises when ``actor.freeze_vision_tower=True`` would
    be ignored (the revisual engine is not selected or not told to freeze), or when the engine
    would freeze although verl's key says not to, so the two never disagree silently.
    """
    env = dict(os.environ if environ is None else environ)
    env.update({str(k): str(v) for k, v in (_select(config, _RUNTIME_ENV_KEY) or {}).items()})
    settings = EngineSettings.from_env(env)
    verl_freeze = bool(_select(config, "actor_rollout_ref.actor.freeze_vision_tower") or False)
    engine_used = env.get(VENDOR_ENV) == ENGINE_VENDOR
    wants_engine = settings.freeze_vision_tower or settings.entropy_schedule is not None
    if wants_engine and not engine_used:
        raise ValueError(
            f"revisual engine settings are set but {VENDOR_ENV}={env.get(VENDOR_ENV)!r}: "
            f"add +{_RUNTIME_ENV_KEY}.{VENDOR_ENV}={ENGINE_VENDOR} or nothing of them takes effect"
        )
    if verl_freeze != settings.freeze_vision_tower:
        raise ValueError(
            f"actor_rollout_ref.actor.freeze_vision_tower={verl_freeze} but {FREEZE_ENV}="
            f"{env.get(FREEZE_ENV)!r}: verl does not read its key, the revisual engine reads {FREEZE_ENV}; "
            f"set both (and {VENDOR_ENV}={ENGINE_VENDOR})"
        )
    return settings


def _parse_bool(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(f"{name}={env.get(name)!r}: expected one of {_TRUE + _FALSE[1:]}")


def _parse_schedule(env: Mapping[str, str]) -> EntropySchedule | None:
    kind = env.get(SCHEDULE_ENV, "").strip().lower()
    if kind in ("", SCHEDULE_OFF):
        return None
    defaults = EntropySchedule()
    fields = {
        "beta0": (BETA0_ENV, float, defaults.beta0),
        "beta_min": (BETA_MIN_ENV, float, defaults.beta_min),
        "decay": (DECAY_ENV, float, defaults.decay),
        "warmup_updates": (WARMUP_ENV, int, defaults.warmup_updates),
        "linear_updates": (LINEAR_UPDATES_ENV, int, None),
    }
    values = {}
    for key, (name, kind_of, default) in fields.items():
        raw = env.get(name, "").strip()
        if not raw:
            values[key] = default
            continue
        try:
            values[key] = kind_of(raw)
        except ValueError:
            raise ValueError(f"{name}={raw!r}: expected {'an integer' if kind_of is int else 'a number'}") from None
    try:
        return EntropySchedule(schedule=kind, **values)
    except ScheduleError as err:
        name = SCHEDULE_ENV if err.key == "schedule" else fields[err.key][0]
        raise ValueError(f"{name}: {err}") from None


def _select(config: Any, dotted: str) -> Any:
    node = config
    for part in dotted.split("."):
        if node is None:
            return None
        node = node.get(part, None) if hasattr(node, "get") else getattr(node, part, None)
    return node
