"""The reward's settings, read from ``reward.reward_kwargs`` with a clear error for a bad key or value."""

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, fields

from revisual_verl.typed_settings import settings_from_section


@dataclass(frozen=True)
class RewardSettings:
    """Every key of ``reward.reward_kwargs`` the ``revisual`` reward manager reads.

    Weights are non-negative and sum to at most 1, so the total reward lies in [0, 1].
    """

    accuracy_weight: float = 0.9
    format_weight: float = 0.05
    length_weight: float = 0.05
    length_budget: int = 8192  # = the recipe's max response length
    length_alpha: float = 0.005
    length_delta: float = 0.5
    length_needs_correct: bool = False  # True: the length bonus only for correct answers
    timeout_s: float = 5.0  # hard bound on one symbolic check; the worker is killed past it
    # Symbolic worker processes per reward worker; None = its share of the node's CPUs (reward/pool_size.py).
    workers: int | None = None
    max_answer_chars: int = 1000  # longer extracted answers score 0 without being parsed

    def __post_init__(self):
        for field in fields(self):
            value = getattr(self, field.name)
            # NaN passes every comparison below (nan <= 0 is False) and inf breaks the arithmetic, so both are refused.
            if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral) and not math.isfinite(value):
                raise ValueError(f"reward.reward_kwargs.{field.name} must be a finite number, got {value}")
        for name in ("accuracy_weight", "format_weight", "length_weight", "length_alpha"):
            if getattr(self, name) < 0:
                raise ValueError(f"reward.reward_kwargs.{name} must be >= 0, got {getattr(self, name)}")
        total = self.accuracy_weight + self.format_weight + self.length_weight
        if total > 1 + 1e-9:
            raise ValueError(
                "reward.reward_kwargs: accuracy_weight + format_weight + length_weight must be <= 1 so the reward "
                f"stays in [0, 1], got {self.accuracy_weight} + {self.format_weight} + {self.length_weight} = {total}"
            )
        if self.length_budget < 1:
            raise ValueError(f"reward.reward_kwargs.length_budget must be >= 1, got {self.length_budget}")
        if self.timeout_s <= 0:
            raise ValueError(f"reward.reward_kwargs.timeout_s must be > 0, got {self.timeout_s}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"reward.reward_kwargs.workers must be >= 1 or null, got {self.workers}")
        if self.max_answer_chars < 1:
            raise ValueError(f"reward.reward_kwargs.max_answer_chars must be >= 1, got {self.max_answer_chars}")

    @classmethod
    def from_mapping(cls, values: Mapping | None) -> "RewardSettings":
        """Build from a plain or OmegaConf mapping; unknown keys and wrong types are errors naming the key."""
        return settings_from_section(cls, values, path="reward.reward_kwargs")
