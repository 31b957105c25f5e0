"""The revisual engine's settings as verl config keys: an ``FSDPEngineConfig`` subclass.

verl builds each worker's engine config from the engine section of its Hydra config with
``omega_conf_to_dataclass``, i.e. ``hydra.utils.instantiate`` of the section's ``_target_``. Naming
this class there (``actor_rollout_ref.actor.fsdp_config._target_`` for RL, ``engine._target_`` for
SFT) carries the settings to every worker, on every node, by verl's own config conversion:

    actor_rollout_ref.actor.fsdp_config:
      _target_: revisual_verl.engine.config.RevisualFSDPEngineConfig
      freeze_vision_tower: ${oc.select:actor_rollout_ref.actor.freeze_vision_tower,false}
      vision_prefixes: [visual., model.visual.]
      entropy:
        _target_: revisual_verl.engine.config.EntropyScheduleConfig
        schedule: exponential      # none | exponential | linear | constant
        beta0: 0.02
        beta_min: 0.0
        decay: 0.985
        warmup_updates: 140        # optimizer updates, not training steps
        linear_updates: null

Being dataclass fields, a misspelled key fails at composition (Hydra's struct mode) and a bad
value when the config is converted, on the driver (``revisual_verl.main_ppo``, the dry run) before
any worker starts.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from verl.base_config import BaseConfig
from verl.workers.config import FSDPEngineConfig

from revisual_verl.engine.entropy import EntropySchedule, ScheduleError
from revisual_verl.engine.vision_freeze import DEFAULT_VISION_PREFIXES, normalize_prefixes
from revisual_verl.typed_settings import SettingsError, settings_from_section

SCHEDULE_OFF = "none"
ENGINE_CONFIG_TARGET = "revisual_verl.engine.config.RevisualFSDPEngineConfig"
ENTROPY_CONFIG_TARGET = "revisual_verl.engine.config.EntropyScheduleConfig"


class EngineConfigError(ValueError):
    """A bad engine setting; the message names the key (relative to the engine section)."""


@dataclasses.dataclass
class EntropyScheduleConfig(BaseConfig):
    """The entropy-coefficient schedule of SPEC section 4; ``schedule: none`` leaves verl's coefficient."""

    schedule: str = SCHEDULE_OFF
    # The schedule's own defaults (paper Table 5), one home for them: revisual_verl/engine/entropy.py.
    beta0: float = EntropySchedule.beta0
    beta_min: float = EntropySchedule.beta_min
    decay: float = EntropySchedule.decay
    # Counted in optimizer updates (one per PPO mini-batch), not in training steps.
    warmup_updates: int = EntropySchedule.warmup_updates
    linear_updates: int | None = EntropySchedule.linear_updates

    def __post_init__(self):
        self.build()

    def build(self) -> EntropySchedule | None:
        """The validated schedule, or None when it is off."""
        kind = str(self.schedule).strip().lower()
        if kind == SCHEDULE_OFF:
            return None
        try:
            return EntropySchedule(
                schedule=kind,
                beta0=_number(self.beta0),
                beta_min=_number(self.beta_min),
                decay=_number(self.decay),
                warmup_updates=self.warmup_updates,
                linear_updates=self.linear_updates,
            )
        except ScheduleError as error:
            if error.key == "schedule":
                raise EngineConfigError(
                    f"entropy.schedule={self.schedule!r}: must be one of {(SCHEDULE_OFF,) + _schedules()}"
                ) from None
            raise EngineConfigError(str(error).replace("entropy schedule ", "entropy.", 1)) from None


@dataclasses.dataclass
class RevisualFSDPEngineConfig(FSDPEngineConfig):
    """verl's FSDP engine config plus the revisual engine's settings (read by ``RevisualFSDPEngine``)."""

    # Freeze the vision tower (requires_grad False, out of the optimizer). In the RL configs this is
    # an interpolation of verl's actor_rollout_ref.actor.freeze_vision_tower: that is the one key to set.
    freeze_vision_tower: bool = False
    # Module-path prefixes of the vision tower's parameters.
    vision_prefixes: list[str] = dataclasses.field(default_factory=lambda: list(DEFAULT_VISION_PREFIXES))
    entropy: EntropyScheduleConfig = dataclasses.field(default_factory=EntropyScheduleConfig)

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.freeze_vision_tower, bool):
            raise EngineConfigError(f"freeze_vision_tower={self.freeze_vision_tower!r}: expected true or false")
        if isinstance(self.vision_prefixes, str):
            raise EngineConfigError(f"vision_prefixes={self.vision_prefixes!r}: expected a list of module prefixes")
        try:
            normalize_prefixes(list(self.vision_prefixes))
        except ValueError as error:
            raise EngineConfigError(f"vision_prefixes: {error}") from None
        if not isinstance(self.entropy, EntropyScheduleConfig):
            # A section without its _target_ (hydra left it a mapping): OmegaConf's typed read of it.
            try:
                entropy = settings_from_section(EntropyScheduleConfig, self.entropy, path="entropy")
            except SettingsError as error:
                raise EngineConfigError(str(error)) from None
            object.__setattr__(self, "entropy", entropy)


@dataclasses.dataclass(frozen=True)
class EngineSettings:
    """What the revisual engine applies on a worker, from whatever engine config that worker got."""

    freeze_vision_tower: bool = False
    vision_prefixes: tuple[str, ...] = DEFAULT_VISION_PREFIXES
    entropy_schedule: EntropySchedule | None = None

    @classmethod
    def from_engine_config(cls, engine_config: Any) -> EngineSettings:
        """Settings of a ``RevisualFSDPEngineConfig``; verl's plain ``FSDPEngineConfig`` (e.g. the
        reference model's) gives the defaults: no freezing, no schedule."""
        if not isinstance(engine_config, RevisualFSDPEngineConfig):
            return cls()
        return cls(
            freeze_vision_tower=bool(engine_config.freeze_vision_tower),
            vision_prefixes=normalize_prefixes(list(engine_config.vision_prefixes)),
            entropy_schedule=engine_config.entropy.build(),
        )

    def summary(self) -> str:
        """One line of ``name=value`` pairs: what acts."""
        values: dict[str, Any] = {"freeze_vision_tower": self.freeze_vision_tower}
        if self.freeze_vision_tower:
            values["vision_prefixes"] = ",".join(self.vision_prefixes)
        schedule = self.entropy_schedule
        if schedule is None:
            values["entropy.schedule"] = SCHEDULE_OFF
        else:
            values.update(
                {
                    "entropy.schedule": schedule.schedule,
                    "entropy.beta0": schedule.beta0,
                    "entropy.beta_min": schedule.beta_min,
                    "entropy.decay": schedule.decay,
                    "entropy.warmup_updates": f"{schedule.warmup_updates} (optimizer updates)",
                }
            )
            if schedule.linear_updates is not None:
                values["entropy.linear_updates"] = schedule.linear_updates
        return " ".join(f"{key}={value}" for key, value in values.items())


def _number(value: Any) -> Any:
    # YAML and Hydra give ints for "0" or "1"; the schedule wants numbers, not bools.
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _schedules() -> tuple[str, ...]:
    from revisual_verl.engine.entropy import SCHEDULES

    return SCHEDULES
