"""``algorithm.adv_estimator=pad``: GRPO advantages followed by PAD's selection, registered in verl.

verl calls the estimator with tensors only. Two things it cannot express travel through this module:
the trainer's step (for the tau schedule, set with :func:`set_progress`) and the selection that the
PAD trainer writes back to the stored masks (read with :func:`pop_latest_result`). Both live in the
driver process, where verl computes advantages.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import torch
from verl.trainer.ppo import core_algos

from revisual_verl.pad.config import PadConfig, check_loss_agg_mode
from revisual_verl.pad.group_advantage import group_ids, grpo_scalar_advantage
from revisual_verl.pad.selection import pad_select_detailed, pad_tau, sequence_advantage

logger = logging.getLogger(__name__)

PAD_ESTIMATOR = "pad"
GRPO_EPSILON = 1e-6


@dataclasses.dataclass(frozen=True)
class TrainingProgress:
    step: int
    """Updates completed before this one (verl's global_steps - 1)."""
    total_steps: int
    """Updates over which tau is annealed (verl's total_training_steps - 1)."""
    draw: int = 0
    """Distinguishes several advantage computations within one step (parameter_sync_step > 1)."""


@dataclasses.dataclass(frozen=True)
class PadStepResult:
    weights: torch.Tensor
    """Per-row multiplicity in the distilled batch (0 = not selected), float [batch]."""
    metrics: dict

    @property
    def keep(self) -> torch.Tensor:
        return self.weights > 0

    @property
    def empty(self) -> bool:
        return not bool(self.keep.any())


class _Handoff:
    """Driver-local state shared between the PAD trainer and the estimator."""

    def __init__(self):
        self.progress: TrainingProgress | None = None
        self.latest: PadStepResult | None = None
        self.unmanaged_calls = 0
        self.checked_root = False


_handoff = _Handoff()


def set_progress(step: int, total_steps: int, draw: int = 0) -> None:
    """Called by the trainer before verl computes advantages; consumed by the next estimator call."""
    _handoff.progress = TrainingProgress(step=step, total_steps=total_steps, draw=draw)


def pop_latest_result() -> PadStepResult | None:
    """The selection of the last estimator call, once; None if PAD did not run since the last pop."""
    result, _handoff.latest = _handoff.latest, None
    return result


def _progress_without_trainer(config: Any) -> TrainingProgress:
    # Only verl's legacy trainer (or a trainer other than pad_sync) gets here: it tells the estimator
    # nothing, so count calls. That count restarts at 0 after a checkpoint resume.
    if _handoff.unmanaged_calls == 0:
        logger.warning(
            "PAD runs without the pad_sync trainer: the tau schedule counts estimator calls in this "
            "process (it restarts after a resume) and empty steps are not skipped. Use "
            "trainer.use_v1=true trainer.v1.trainer_mode=pad_sync for the full behaviour."
        )
        _check_root_config(config)
    total = _total_steps_from_root(config)
    progress = TrainingProgress(step=_handoff.unmanaged_calls, total_steps=total)
    _handoff.unmanaged_calls += 1
    return progress


def _root(config: Any):
    get_root = getattr(config, "_get_root", None)
    return get_root() if callable(get_root) else None


def _total_steps_from_root(config: Any) -> int:
    root = _root(config)
    try:
        total = root.actor_rollout_ref.actor.optim.total_training_steps
    except Exception:
        total = None
    return int(total) - 1 if total else 0


def _check_root_config(config: Any) -> None:
    root = _root(config)
    try:
        mode = root.actor_rollout_ref.actor.loss_agg_mode
    except Exception:
        return
    check_loss_agg_mode(mode)


@core_algos.register_adv_est(PAD_ESTIMATOR)
def compute_pad_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Any = None,
    config: Any = None,
    **_unused: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GRPO outcome advantages, then Prioritized Advantage Distillation.

    Returns advantages that are 0 on unselected rows and multiplied by the row's multiplicity on
    selected ones, and zeroes ``response_mask`` of unselected rows in place. Rows whose mask is all
    zero (verl's padding) are never selected and do not count in N.
    """
    if index is None:
        raise ValueError("adv_estimator=pad needs GRPO groups: the batch has no 'uid' column")
    pad = PadConfig.from_algorithm(config)
    norm_by_std = bool(config.get("norm_adv_by_std_in_grpo", True)) if config is not None else True

    # sum is a faster reduction than any() over an int64 mask on CPU.
    valid = response_mask.sum(dim=-1) > 0
    if pad.grpo_impl == "verl":
        token_adv, _ = core_algos.compute_grpo_outcome_advantage(
            token_level_rewards=token_level_rewards,
            response_mask=response_mask,
            index=index,
            epsilon=GRPO_EPSILON,
            norm_adv_by_std_in_grpo=norm_by_std,
        )
        seq_adv = sequence_advantage(token_adv, response_mask)
    else:
        scores = token_level_rewards.sum(dim=-1)
        seq_adv = grpo_scalar_advantage(scores, group_ids(index), norm_by_std=norm_by_std, epsilon=GRPO_EPSILON)

    progress, _handoff.progress = _handoff.progress, None
    if progress is None:
        progress = _progress_without_trainer(config)
    tau = pad_tau(progress.step, progress.total_steps, start=pad.tau_start, end=pad.tau_end, schedule=pad.tau_schedule)
    generator = torch.Generator().manual_seed(pad.seed * 1_000_003 + progress.step * 101 + progress.draw)
    selection = pad_select_detailed(
        seq_adv,
        t_low=pad.t_low,
        t_high=pad.t_high,
        rho=pad.rho,
        tau=tau,
        priority=pad.priority,
        alpha=pad.alpha,
        replacement=pad.replacement,
        valid=valid,
        generator=generator,
    )

    weights = torch.bincount(selection.indices, minlength=seq_adv.numel()).to(seq_adv.dtype)
    keep = weights > 0
    row_adv = torch.where(keep, seq_adv * weights, torch.zeros_like(seq_adv))
    # The one new [batch, response_length] tensor on this path. Casting the mask first and scaling in
    # place is about twice as fast as a mixed-dtype broadcast multiply (int64 mask * float rows).
    advantages = response_mask.to(token_level_rewards.dtype, copy=True)
    advantages.mul_(row_adv.to(advantages.dtype).unsqueeze(-1))
    response_mask.index_fill_(0, (~keep).nonzero().squeeze(1), 0)

    _handoff.latest = PadStepResult(weights=weights, metrics=_metrics(seq_adv, selection, tau))
    if _handoff.latest.empty:
        logger.warning("PAD: the effective set is empty this step (every group uniform or out of bounds)")
    return advantages, advantages


def _metrics(seq_adv: torch.Tensor, selection, tau: float) -> dict:
    abs_adv = seq_adv.detach().abs().to(torch.float64)
    n = selection.num_rows
    num_effective = int(selection.effective.sum())
    picked = selection.indices
    all_mean = float(abs_adv[selection.counted].mean()) if n else 0.0
    return {
        "pad/rows": float(n),
        "pad/effective_rows": float(num_effective),
        "pad/effective_fraction": num_effective / n if n else 0.0,
        "pad/selected_rows": float(picked.numel()),
        "pad/distinct_selected_rows": float(torch.unique(picked).numel()),
        "pad/abs_adv_mean_selected": float(abs_adv[picked].mean()) if picked.numel() else 0.0,
        "pad/abs_adv_mean_all": all_mean,
        "pad/nonfinite_rows": float(selection.num_nonfinite),
        "pad/tau": float(tau),
        "pad/empty_effective_set": float(picked.numel() == 0),
    }
