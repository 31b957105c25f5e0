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
