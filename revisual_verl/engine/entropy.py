"""The entropy bonus of stage 3 (SPEC section 4): its schedule and how it reaches verl's loss.

**The schedule**, a pure function of the optimizer update count: the coefficient is 0 for the first
``warmup_updates`` updates, ``beta0`` at update ``warmup_updates``, then decays each update:
geometrically (``beta <- max(beta_min, beta * decay)``, paper Table 5) or linearly to ``beta_min`` over
``linear_updates`` updates. ``constant`` holds ``beta0`` after warm-up.

**Feeding it to verl's loss** (no verl import): verl's actor loss is ``functools.partial(ppo_loss,
config=<ActorConfig>)`` and ``ppo_loss`` reads ``config.entropy_coeff``. ActorConfig fields are frozen, so
the coefficient is changed by handing the engine a new partial whose config is a ``dataclasses.replace``
copy: the worker's own config object is never mutated. The update count ``u`` is the number of optimizer
updates already taken, read from the optimizer's own state (``state[param]["step"]``): it is saved in
verl's checkpoints with the optimizer, so a resumed run continues the schedule where it stopped, and an
update skipped for a non-finite gradient norm does not advance it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

SCHEDULES = ("exponential", "linear", "constant")


class ScheduleError(ValueError):
    """A bad schedule setting; ``key`` names the field so callers can name their own key for it."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


@dataclasses.dataclass(frozen=True)
class EntropySchedule:
    """A validated schedule; :meth:`at` gives the coefficient for optimizer update ``u`` (0-based)."""

    schedule: str = "exponential"
    beta0: float = 0.02
    beta_min: float = 0.0
    decay: float = 0.985
    warmup_updates: int = 140
    linear_updates: int | None = None

    def __post_init__(self):
        def bad(key: str, why: str):
            raise ScheduleError(key, f"entropy schedule {key}={getattr(self, key)!r}: {why}")

        if self.schedule not in SCHEDULES:
            bad("schedule", f"must be one of {SCHEDULES}")
        for key in ("beta0", "beta_min"):
            value = getattr(self, key)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (value >= 0 and math.isfinite(value))
            ):
                bad(key, "must be a finite number >= 0")
        # The closed form below equals the paper's iteration max(beta_min, beta * decay) only when the
        # floor does not exceed the start; a floor above beta0 would make "decay" a jump upwards.
        if self.beta_min > self.beta0:
            bad("beta_min", f"must be <= beta0 ({self.beta0})")
        if isinstance(self.decay, bool) or not isinstance(self.decay, (int, float)) or not 0 < self.decay <= 1:
            bad("decay", "must be in (0, 1]")
        if not _is_count(self.warmup_updates):
            bad("warmup_updates", "must be an integer >= 0")
        if self.schedule == "linear":
            if not _is_count(self.linear_updates) or self.linear_updates == 0:
                bad("linear_updates", "the linear schedule needs the number of updates to decay over (an integer > 0)")
        elif self.linear_updates is not None and not _is_count(self.linear_updates):
            bad("linear_updates", "must be an integer >= 0 or unset")

    def at(self, update: int) -> float:
        """The coefficient used in the loss of optimizer update ``update`` (updates already taken)."""
        if not _is_count(update):
            raise ValueError(f"update must be an integer >= 0, got {update!r}")
        if update < self.warmup_updates:
            return 0.0
        since = update - self.warmup_updates
        if self.schedule == "constant":
            return float(self.beta0)
        if self.schedule == "linear":
            frac = min(1.0, since / self.linear_updates)
            return float(self.beta0 + (self.beta_min - self.beta0) * frac)
        # decay ** since underflows to 0.0 for long runs, which the floor then absorbs: no overflow path.
        return float(max(self.beta_min, self.beta0 * self.decay**since))


def entropy_coeff_at(
    update: int,
    *,
    warmup_updates: int = 140,
    beta0: float = 0.02,
    beta_min: float = 0.0,
    decay: float = 0.985,
    schedule: str = "exponential",
    linear_updates: int | None = None,
) -> float:
    """Entropy coefficient at optimizer update ``update``; defaults are the paper's Table 5."""
    return EntropySchedule(
        schedule=schedule,
        beta0=beta0,
        beta_min=beta_min,
        decay=decay,
        warmup_updates=warmup_updates,
        linear_updates=linear_updates,
    ).at(update)


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def optimizer_updates_taken(optimizer: torch.optim.Optimizer) -> int | None:
    """Optimizer steps taken so far: 0 before the first, None when the optimizer keeps no "step"."""
    steps = []
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param)
            if state and "step" in state:
                steps.append(state["step"])
    if not steps:
        return None if optimizer.state else 0
    # All trained parameters step together; max() also covers one that missed a step with grad None.
    return int(max(float(step) for step in steps))


def with_entropy_coeff(loss_function: Callable, coeff: float) -> Callable:
    """``loss_function`` (a partial carrying ``config=``) with ``config.entropy_coeff`` set to ``coeff``."""
    if not isinstance(loss_function, functools.partial) or "config" not in loss_function.keywords:
        raise TypeError(
            "entropy annealing needs verl's actor loss, a functools.partial with a config= keyword "
            f"(e.g. partial(ppo_loss, config=actor_config)); got {loss_function!r}"
        )
    config = loss_function.keywords["config"]
    if not dataclasses.is_dataclass(config) or not hasattr(config, "entropy_coeff"):
        raise TypeError(f"entropy annealing: the loss config has no entropy_coeff field: {type(config).__name__}")
    if config.entropy_coeff == coeff:
        return loss_function
    scheduled = dataclasses.replace(config, entropy_coeff=float(coeff))
    return functools.partial(loss_function.func, *loss_function.args, **{**loss_function.keywords, "config": scheduled})
