"""Optimizer updates per training step under PAD: what the settings that act allow, before a run.

verl steps the optimizer once per PPO mini-batch (``ppo_mini_batch_size * rollout.n`` rows) and epoch, over
the rows the update pass receives, padded with verl's padding rows to whole mini-batches. Under PAD's
distilled mode that is the distilled batch, whose size follows the effective set, so the count varies
per step; the bound here is what the settings allow, and ``pad/optimizer_updates`` logs each step's count.
"""

from __future__ import annotations

import dataclasses
import math

from revisual_verl.pad.config import PadConfig


@dataclasses.dataclass(frozen=True)
class UpdateCount:
    most: int
    """Optimizer updates per step at most."""
    rows: int
    """Rows of the update pass at most, before verl's padding."""
    varies: bool
    """True when PAD's effective set decides the count step by step (any PAD step without an effective
    row makes no update at all)."""
    rule: str
    """Where the rows come from, in words."""


def rows_drawn(pad: PadConfig, rollout_rows: int) -> int:
    """k' when every row is in the effective set: ceil(rho * N), capped at N without replacement."""
    drawn = math.ceil(pad.rho * rollout_rows)
    return drawn if pad.replacement else min(drawn, rollout_rows)


def updates_per_step(
    *, rollout_rows: int, mini_batch_rows: int, epochs: int = 1, pad: PadConfig | None = None, compact: bool = True
) -> UpdateCount:
    """The most optimizer updates one step makes; ``pad`` None: an estimator that keeps every row."""
    if rollout_rows <= 0 or mini_batch_rows <= 0 or epochs <= 0:
        sizes = f"rollout_rows={rollout_rows}, mini_batch_rows={mini_batch_rows}, epochs={epochs}"
        raise ValueError(f"{sizes}: each must be > 0")
    if pad is None:
        rows, varies, rule = rollout_rows, False, "every rollout row"
    elif not compact:
        rows, varies, rule = rollout_rows, False, "PAD masked mode: every rollout row, unselected ones masked"
    elif pad.replacement and pad.duplicates == "copies":
        rows, varies = rows_drawn(pad, rollout_rows), False
        rule = f"PAD distilled, copies: ceil(rho * N) = {rows} drawn rows every step with an effective row"
    else:
        rows, varies = min(rows_drawn(pad, rollout_rows), rollout_rows), True
        rule = "PAD distilled: the distinct rows drawn, at most the effective set"
    return UpdateCount(most=math.ceil(rows / mini_batch_rows) * epochs, rows=rows, varies=varies, rule=rule)


def first_step_after_warmup(warmup_updates: int, updates_per_step: int) -> int:
    """The first training step (from 1) whose updates include update number ``warmup_updates`` (from 0),
    i.e. the first step with a non-zero entropy coefficient, at ``updates_per_step`` updates every step."""
    if updates_per_step <= 0:
        raise ValueError(f"updates_per_step={updates_per_step} must be > 0")
    return warmup_updates // updates_per_step + 1
