"""Entropy-coefficient annealing (SPEC section 4), as a pure function of the optimizer update count.

The coefficient is 0 for the first ``warmup_updates`` updates, ``beta0`` at update ``warmup_updates``,
then decays each update: geometrically (``beta <- max(beta_min, beta * decay)``, paper Table 5) or
linearly to ``beta_min`` over ``linear_updates`` updates. ``constant`` holds ``beta0`` after warm-up.
"""

from __future__ import annotations

import dataclasses
import math

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
