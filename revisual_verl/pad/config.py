"""The ``algorithm.pad`` settings: defaults (SPEC section 2) and validation with messages that name the key."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from revisual_verl.pad.selection import PRIORITIES, TAU_SCHEDULES
from revisual_verl.typed_settings import settings_from_section

GRPO_IMPLS = ("fast", "verl")
DUPLICATES = ("weights", "copies")
# Loss aggregation modes whose denominator counts sequences (global batch size): a masked row would
# still dilute the loss, so PAD would no longer train on the selected rows only.
ROW_COUNTING_LOSS_AGG_MODES = ("seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm")


@dataclasses.dataclass(frozen=True)
class PadConfig:
    t_low: float = 0.03
    t_high: float | None = None
    rho: float = 1.0
    tau_start: float = 1.0
    tau_end: float = 0.3
    tau_schedule: str = "linear"
    priority: str = "softmax"
    alpha: float = 1.5
    replacement: bool = False
    seed: int = 0
    grpo_impl: str = "fast"
    compact: bool = True
    """pad_sync trains on the distilled batch (the selected rows only); false: masks the full batch."""
    duplicates: str = "weights"
    """A row drawn m times: ``weights`` trains it once with weight m; ``copies`` stores and trains m copies."""

    def __post_init__(self):
        # Hydra and YAML spell "no upper bound" as null or inf; one value inside.
        if self.t_high is not None and math.isinf(self.t_high) and self.t_high > 0:
            object.__setattr__(self, "t_high", None)

        def bad(key: str, why: str):
            raise ValueError(f"algorithm.pad.{key}={getattr(self, key)!r}: {why}")

        if not (self.t_low >= 0 and math.isfinite(self.t_low)):
            bad("t_low", "must be a finite number >= 0")
        if self.t_high is not None and not self.t_high >= self.t_low:
            bad("t_high", f"must be >= t_low ({self.t_low}), or null for no upper bound")
        if not (self.rho > 0 and math.isfinite(self.rho)):
            bad("rho", "must be a finite number > 0")
        for key in ("tau_start", "tau_end"):
            if not (getattr(self, key) > 0 and math.isfinite(getattr(self, key))):
                bad(key, "must be a finite number > 0")
        if self.tau_schedule not in TAU_SCHEDULES:
            bad("tau_schedule", f"must be one of {TAU_SCHEDULES}")
        if self.priority not in PRIORITIES:
            bad("priority", f"must be one of {PRIORITIES}")
        if not (self.alpha > 0 and math.isfinite(self.alpha)):
            bad("alpha", "must be a finite number > 0")
        if self.grpo_impl not in GRPO_IMPLS:
            bad("grpo_impl", f"must be one of {GRPO_IMPLS}")
        if self.duplicates not in DUPLICATES:
            bad("duplicates", f"must be one of {DUPLICATES}")

    @classmethod
    def from_algorithm(cls, algorithm: Any) -> PadConfig:
        """Read ``algorithm.pad`` from verl's algorithm section (DictConfig, dict or None).

        The one parser of the PAD settings: OmegaConf's structured merge (typed keys, unknown keys
        refused), then the range checks of ``__post_init__``.
        """
        section = None
        if algorithm is not None:
            section = algorithm.get("pad", None) if hasattr(algorithm, "get") else getattr(algorithm, "pad", None)
        return cls.from_mapping(section)

    @classmethod
    def from_mapping(cls, section: Mapping | None) -> PadConfig:
        return settings_from_section(cls, section, path="algorithm.pad")


def check_loss_agg_mode(loss_agg_mode: str) -> None:
    """Refuse aggregation modes under which masked-out rows still count (see VERL_NOTES)."""
    if loss_agg_mode in ROW_COUNTING_LOSS_AGG_MODES:
        raise ValueError(
            f"actor_rollout_ref.actor.loss_agg_mode={loss_agg_mode!r} divides by the global batch size, so the "
            "rows PAD masks out would still count in the loss denominator. Use loss_agg_mode=token-mean "
            "(or token-sum) with algorithm.adv_estimator=pad."
        )
