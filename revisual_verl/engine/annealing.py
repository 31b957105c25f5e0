"""Feeding the scheduled entropy coefficient into verl's loss (no verl import).

verl's actor loss is ``functools.partial(ppo_loss, config=<ActorConfig>)`` and ``ppo_loss`` reads
``config.entropy_coeff``. ActorConfig fields are frozen, so the coefficient is changed by handing
the engine a new partial whose config is a ``dataclasses.replace`` copy: the worker's own config
object is never mutated.

The update count ``u`` is the number of optimizer updates already taken, read from the optimizer's
own state (``state[param]["step"]``): it is saved in verl's checkpoints with the optimizer, so a
resumed run continues the schedule where it stopped, and an update skipped for a non-finite
gradient norm does not advance it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import torch


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
