"""GRPO's outcome advantage on per-response scalars, with verl's group statistics.

verl's ``compute_grpo_outcome_advantage`` loops over rows in Python and writes a full
[batch, response_length] tensor; for outcome rewards the advantage is one scalar per response,
so PAD needs only N scalars (the caller broadcasts once, if at all). The group statistics are
verl's own ``verl.utils.groupwise`` (the ones its ``grpo_vectorized`` estimator uses): group mean,
unbiased std, (s - mean) / (std + eps), and a group of one gets mean 0 and std 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from verl.utils.groupwise import as_torch_index, group_mean_std


def group_ids(index: Sequence | np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """Dense group ids 0..G-1 for a GRPO ``uid`` array (any hashable values), as verl numbers them."""
    # An explicit device: verl's default would pick CUDA whenever it is present, wherever the scores are.
    ids = as_torch_index(index, device=device)
    # verl passes integer and numeric-string labels through as they are ("-1", "10**9"): made dense here.
    return torch.unique(ids, return_inverse=True)[1] if ids.numel() else ids


def grpo_scalar_advantage(
    scores: torch.Tensor,
    groups: torch.Tensor,
    *,
    norm_by_std: bool = True,
    epsilon: float = 1e-6,
) -> torch.Tensor:
    """Per-response GRPO advantage from per-response scores ``[N]`` and dense group ids ``[N]``."""
    if scores.shape != groups.shape or scores.dim() != 1:
        raise ValueError(f"scores {tuple(scores.shape)} and groups {tuple(groups.shape)} must be the same 1-D shape")
    # eps=0: no variance floor, so a uniform group's std is 0 and its advantages exactly 0, as in verl's GRPO.
    mean, std, _ = group_mean_std(scores, groups, eps=0.0, device=scores.device)
    centred = scores - mean[groups].to(scores.dtype)
    if not norm_by_std:
        return centred
    return centred / (std[groups].to(scores.dtype) + epsilon)


def uniform_group_rows(scores: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """True on every row of a group of two or more whose scores are all exactly equal.

    Such a group's GRPO advantage is 0 by definition (its std is 0), and PAD's t_low exists to drop it. In float32 it
    is not 0 for most scores: the group mean of eight 0.95s misses 0.95 by an ulp, and (s - mean) / (std + eps) turns
    that residue into |A| = 0.056 on every row, all of one sign, above t_low = 0.03 (0.9 and 0.7 the same; the learning
    run's length-scored right answers up to 0.106; dyadic scores such as 0, 0.5 and 1 come out exactly 0). verl's GRPO
    gives the same numbers; PAD sets them to 0. Equal means exactly equal: a spread of one ulp is a group that
    GRPO's normalisation blows up, not a uniform one. A group of one keeps verl's convention (mean 0, std 1), and a
    group of infinite scores is left to the non-finite path, which flags it.
    """
    if scores.shape != groups.shape or scores.dim() != 1:
        raise ValueError(f"scores {tuple(scores.shape)} and groups {tuple(groups.shape)} must be the same 1-D shape")
    if not scores.numel():
        return torch.zeros(0, dtype=torch.bool, device=scores.device)
    count = int(groups.max()) + 1
    highest = torch.full((count,), float("-inf"), dtype=scores.dtype, device=scores.device)
    highest = highest.scatter_reduce(0, groups, scores, reduce="amax")
    lowest = torch.full((count,), float("inf"), dtype=scores.dtype, device=scores.device)
    lowest = lowest.scatter_reduce(0, groups, scores, reduce="amin")
    sizes = torch.bincount(groups, minlength=count)
    return ((highest == lowest) & torch.isfinite(highest) & (sizes > 1))[groups]
