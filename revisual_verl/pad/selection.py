"""Prioritized Advantage Distillation (PAD): the selection math, as pure torch.

This module must not import verl: it is the reference implementation of SPEC section 2 and is
tested on its own. The verl adapter lives in :mod:`revisual_verl.pad.estimator`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

PRIORITIES = ("softmax", "power")
TAU_SCHEDULES = ("linear", "cosine", "exponential", "constant")


class PadSelection(NamedTuple):
    """Everything one selection decided, for the adapter and its metrics."""

    indices: torch.Tensor
    """Selected row indices, ascending; repeated when drawn with replacement."""
    effective: torch.Tensor
    """Bool mask of the effective set E."""
    counted: torch.Tensor
    """Bool mask of the N rows that count (``valid`` and a finite advantage)."""
    num_rows: int
    """N."""
    num_nonfinite: int
    """Valid rows dropped because their advantage was NaN or infinite."""


def sequence_advantage(advantages: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Masked mean of the token advantages of each row; 0 for a row with an empty mask."""
    mask = response_mask.to(advantages.dtype)
    tokens = mask.sum(dim=-1)
    return (advantages * mask).sum(dim=-1) / tokens.clamp(min=1)


def num_to_draw(rho: float, num_rows: int) -> int:
    """ceil(rho * N), robust to float error (0.3 * 10 is 3.0000000000000004, not 4 rows)."""
    return max(0, math.ceil(round(rho * num_rows, 9)))


def _log_priority(abs_adv: torch.Tensor, priority: str, tau: float, alpha: float) -> torch.Tensor:
    # Log space keeps tiny temperatures exact: exp(a / 0.01) overflows float32 long before the
    # ordering of a / 0.01 stops being meaningful.
    if priority == "softmax":
        return abs_adv / tau
    if priority == "power":
        return alpha * torch.log(abs_adv)
    raise ValueError(f"priority must be one of {PRIORITIES}, got {priority!r}")


def pad_select_detailed(
    seq_adv: torch.Tensor,
    *,
    t_low: float,
    t_high: float | None,
    rho: float,
    tau: float,
    priority: str = "softmax",
    alpha: float = 1.5,
    replacement: bool = False,
    valid: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> PadSelection:
    """Algorithm 1 of the paper; see :func:`pad_select` for the arguments."""
    if seq_adv.dim() != 1:
        raise ValueError(f"seq_adv must be 1-D (one value per response), got shape {tuple(seq_adv.shape)}")
    if tau <= 0 or not math.isfinite(tau):
        raise ValueError(f"tau must be a positive finite number, got {tau}")
    if rho < 0:
        raise ValueError(f"rho must be >= 0, got {rho}")
    if t_low < 0:
        raise ValueError(f"t_low must be >= 0, got {t_low}")
    upper = math.inf if t_high is None else float(t_high)
    if upper < t_low:
        raise ValueError(f"t_high ({t_high}) must not be below t_low ({t_low})")

    # Bounds are compared in the advantages' own precision, so that t_low=0.03 admits a float32 0.03;
    # priorities are then computed in float64.
    abs_native = seq_adv.detach().abs().cpu()
    if not abs_native.is_floating_point():
        abs_native = abs_native.to(torch.float64)
    abs_adv = abs_native.to(torch.float64)
    valid_rows = torch.ones_like(abs_adv, dtype=torch.bool) if valid is None else valid.detach().cpu().bool()
    if valid_rows.shape != abs_adv.shape:
        raise ValueError(f"valid has shape {tuple(valid_rows.shape)}, seq_adv has {tuple(abs_adv.shape)}")
    finite = torch.isfinite(abs_adv)
    counted = valid_rows & finite
    num_rows = int(counted.sum())
    num_nonfinite = int((valid_rows & ~finite).sum())

    low = torch.tensor(t_low, dtype=abs_native.dtype)
    high = torch.tensor(upper, dtype=abs_native.dtype)
    effective = counted & (abs_native >= low) & (abs_native <= high)
    candidates = effective.nonzero(as_tuple=True)[0]
    num_effective = candidates.numel()
    k = num_to_draw(rho, num_rows)
    if not replacement:
        k = min(k, num_effective)
    if k == 0 or num_effective == 0:
        return PadSelection(torch.empty(0, dtype=torch.long), effective, counted, num_rows, num_nonfinite)

    log_p = _log_priority(abs_adv[candidates], priority, tau, alpha)
    if torch.isneginf(log_p).all():
        # The normaliser is 0 (e.g. power priority on all-zero |A| when t_low = 0): uniform over E.
        log_p = torch.zeros_like(log_p)

    if replacement:
        probs = torch.softmax(log_p, dim=0)
        drawn = torch.multinomial(probs, k, replacement=True, generator=generator)
    else:
        # Gumbel-top-k draws exactly like k successive draws without replacement (Algorithm 1),
        # in one pass and without ever leaving log space.
        uniform = torch.rand(num_effective, dtype=torch.float64, generator=generator)
        tiny = torch.finfo(torch.float64).tiny
        gumbel = -torch.log(-torch.log(uniform.clamp(min=tiny, max=1.0 - 1e-16)))
        drawn = torch.topk(log_p + gumbel, k).indices
    indices = torch.sort(candidates[drawn]).values
    return PadSelection(indices, effective, counted, num_rows, num_nonfinite)


def pad_select(
    seq_adv: torch.Tensor,
    *,
    t_low: float,
    t_high: float | None,
    rho: float,
    tau: float,
    priority: str = "softmax",
    alpha: float = 1.5,
    replacement: bool = False,
    valid: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Select the rows PAD trains on.

    Args:
        seq_adv: per-response advantage A_i, shape [N].
        t_low, t_high: inclusive bounds on |A_i| of the effective set E; ``t_high=None`` or inf: no bound.
        rho: distillation ratio; k' = min(ceil(rho * N), |E|) without replacement, ceil(rho * N) with.
        tau: softmax temperature, P(i) proportional to exp(|A_i| / tau).
        priority: ``"softmax"`` (paper) or ``"power"`` (authors' scripts, P(i) proportional to |A_i| ** alpha).
        alpha: exponent of the power priority.
        replacement: draw with replacement (indices may repeat).
        valid: bool mask of rows that may be counted in N and drawn (False for verl's padding rows).
        generator: torch generator for reproducible draws.

    Returns:
        LongTensor of selected row indices in ascending order. Rows with NaN/inf advantages are never
        selected and do not count in N.
    """
    return pad_select_detailed(
        seq_adv,
        t_low=t_low,
        t_high=t_high,
        rho=rho,
        tau=tau,
        priority=priority,
        alpha=alpha,
        replacement=replacement,
        valid=valid,
        generator=generator,
    ).indices


def pad_tau(step: int, total_steps: int, *, start: float = 1.0, end: float = 0.3, schedule: str = "linear") -> float:
    """Temperature after ``step`` of ``total_steps`` updates: ``start`` at step 0, ``end`` from total_steps on.

    ``constant`` holds ``end`` throughout (Table 5 lists a fixed tau = 0.3).
    """
    if schedule not in TAU_SCHEDULES:
        raise ValueError(f"tau schedule must be one of {TAU_SCHEDULES}, got {schedule!r}")
    if start <= 0 or end <= 0:
        raise ValueError(f"tau start and end must be positive, got start={start}, end={end}")
    if schedule == "constant":
        return float(end)
    progress = 1.0 if total_steps <= 0 else min(max(step / total_steps, 0.0), 1.0)
    if schedule == "linear":
        return start + (end - start) * progress
    if schedule == "cosine":
        return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return start * (end / start) ** progress
