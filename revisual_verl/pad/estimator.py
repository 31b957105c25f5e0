"""``algorithm.adv_estimator=pad``: GRPO advantages followed by PAD's selection, registered in verl.

verl calls the estimator with tensors only. Two things it cannot express travel through this module:
the trainer's step (for the tau schedule, set with :func:`set_progress`) and the selection that the
PAD trainer writes back to the stored masks or turns into the distilled batch (read with
:func:`pop_latest_result`); both live in :mod:`revisual_verl.pad.handoff`, in the driver process.
:func:`pad_select_rows` is the selection on its own (per-row scalars, no [batch, length] output),
which the trainer's distilled mode calls right after the reward.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from verl.trainer.ppo import core_algos

from revisual_verl.pad import handoff
from revisual_verl.pad.config import PadConfig, check_loss_agg_mode
from revisual_verl.pad.group_advantage import group_ids, grpo_scalar_advantage, uniform_group_rows
from revisual_verl.pad.handoff import PadStepResult, TrainingProgress, pop_latest_result, set_progress
from revisual_verl.pad.selection import pad_select_detailed, pad_tau, sequence_advantage

logger = logging.getLogger(__name__)

__all__ = [
    "PAD_ESTIMATOR",
    "PadStepResult",
    "TrainingProgress",
    "compute_pad_advantage",
    "pad_select_rows",
    "pop_latest_result",
    "set_progress",
]

PAD_ESTIMATOR = "pad"
GRPO_EPSILON = 1e-6


def _progress_without_trainer(config: Any) -> TrainingProgress:
    # Only verl's legacy trainer (or a trainer other than pad_sync) gets here: it tells the estimator
    # nothing, so count calls. That count restarts at 0 after a checkpoint resume.
    calls = handoff.state()
    if calls.unmanaged_calls == 0:
        logger.warning(
            "PAD runs without the pad_sync trainer: the tau schedule counts estimator calls in this "
            "process (it restarts after a resume) and empty steps are not skipped. Use "
            "trainer.use_v1=true trainer.v1.trainer_mode=pad_sync for the full behaviour."
        )
        _check_root_config(config)
    total = _total_steps_from_root(config)
    progress = TrainingProgress(step=calls.unmanaged_calls, total_steps=total)
    calls.unmanaged_calls += 1
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


def pad_select_rows(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Any,
    config: Any,
) -> PadStepResult:
    """GRPO's per-response advantage, then PAD's draw; publishes and returns the result.

    Reads its step from the handoff (:func:`set_progress`), or counts calls without a trainer. Leaves
    its inputs untouched. Rows whose mask is all zero (verl's padding) are never selected and do not
    count in N.
    """
    if index is None:
        raise ValueError("adv_estimator=pad needs GRPO groups: the batch has no 'uid' column")
    progress = handoff.take_progress()
    if progress is None:
        progress = _progress_without_trainer(config)
    # The pad_sync trainer parsed algorithm.pad once, at start; without it the config verl passes is read here.
    pad = progress.settings if progress.settings is not None else PadConfig.from_algorithm(config)
    norm_by_std = bool(config.get("norm_adv_by_std_in_grpo", True)) if config is not None else True

    # sum is a faster reduction than any() over an int64 mask on CPU.
    valid = response_mask.sum(dim=-1) > 0
    scores = token_level_rewards.sum(dim=-1)
    groups = group_ids(index, device=scores.device)
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
        seq_adv = grpo_scalar_advantage(scores, groups, norm_by_std=norm_by_std, epsilon=GRPO_EPSILON)
    # A group whose responses all score the same has A = 0 (the method's stagnant rows), not float32's residue.
    uniform = uniform_group_rows(scores, groups)
    seq_adv = seq_adv.masked_fill(uniform, 0.0)

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
    metrics = {**_metrics(seq_adv, selection, tau), "pad/uniform_rows": float((uniform & valid).sum())}
    result = PadStepResult(weights=weights, metrics=metrics, seq_adv=seq_adv)
    handoff.publish(result)
    if result.empty:
        logger.warning("PAD: the effective set is empty this step (every group uniform or out of bounds)")
    return result


@core_algos.register_adv_est(PAD_ESTIMATOR)
def compute_pad_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Any = None,
    config: Any = None,
    **_unused: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GRPO outcome advantages, then Prioritized Advantage Distillation (masked form).

    Returns advantages that are 0 on unselected rows and multiplied by the row's multiplicity on
    selected ones, and zeroes ``response_mask`` of unselected rows in place.
    """
    result = pad_select_rows(token_level_rewards, response_mask, index, config)
    keep = result.keep
    row_adv = torch.where(keep, result.seq_adv * result.weights, torch.zeros_like(result.seq_adv))
    # The one new [batch, response_length] tensor on this path. Casting the mask first and scaling in
    # place is about twice as fast as a mixed-dtype broadcast multiply (int64 mask * float rows).
    advantages = response_mask.to(token_level_rewards.dtype, copy=True)
    advantages.mul_(row_adv.to(advantages.dtype).unsqueeze(-1))
    response_mask.index_fill_(0, (~keep).nonzero().squeeze(1), 0)
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
