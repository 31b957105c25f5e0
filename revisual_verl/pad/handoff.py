"""What the PAD trainer and the PAD estimator tell each other, in the driver process.

verl calls an advantage estimator with tensors only. Two things it cannot express travel through
this module: the trainer's step (for the tau schedule and the seed of the draw, set with
:func:`set_progress` before each selection, together with the PAD settings the trainer parsed
once) and the selection itself (read back with :func:`pop_latest_result`), which the trainer turns
into masks (masked mode) or into the distilled batch (distilled mode). Pure torch; does not import verl.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from revisual_verl.pad.config import PadConfig


@dataclasses.dataclass(frozen=True)
class TrainingProgress:
    step: int
    """Updates completed before this one (verl's global_steps - 1)."""
    total_steps: int
    """Updates over which tau is annealed (verl's total_training_steps - 1)."""
    draw: int = 0
    """Distinguishes several advantage computations within one step (parameter_sync_step > 1)."""
    settings: PadConfig | None = None
    """The trainer's parsed ``algorithm.pad``; None: the estimator reads its own config argument."""


@dataclasses.dataclass(frozen=True)
class PadStepResult:
    weights: torch.Tensor
    """Per-row multiplicity in the distilled batch (0 = not selected), float [batch]."""
    metrics: dict
    seq_adv: torch.Tensor | None = None
    """One draw's advantage of each row (GRPO's scalar), float [batch]; the row's tokens all carry it."""

    @property
    def keep(self) -> torch.Tensor:
        return self.weights > 0

    @property
    def empty(self) -> bool:
        return not bool(self.keep.any())


class Handoff:
    """Driver-local state shared between the PAD trainer and the estimator."""

    def __init__(self):
        self.progress: TrainingProgress | None = None
        self.latest: PadStepResult | None = None
        self.unmanaged_calls = 0


_state = Handoff()


def state() -> Handoff:
    return _state


def set_progress(step: int, total_steps: int, draw: int = 0, settings: PadConfig | None = None) -> None:
    """Called by the trainer before a selection; consumed by the next one."""
    _state.progress = TrainingProgress(step=step, total_steps=total_steps, draw=draw, settings=settings)


def take_progress() -> TrainingProgress | None:
    """The progress the trainer announced for this selection, once; None if it announced none."""
    progress, _state.progress = _state.progress, None
    return progress


def publish(result: PadStepResult) -> None:
    _state.latest = result


def pop_latest_result() -> PadStepResult | None:
    """The selection of the last estimator call, once; None if PAD did not run since the last pop."""
    result, _state.latest = _state.latest, None
    return result
