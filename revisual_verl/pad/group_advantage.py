"""GRPO's outcome advantage on per-response scalars, vectorised.

verl's ``compute_grpo_outcome_advantage`` loops over rows in Python and writes a full
[batch, response_length] tensor; for outcome rewards the advantage is one scalar per response,
so the group statistics are computed here on N scalars and broadcast once by the caller.
The numbers are verl's: group mean, unbiased std, (s - mean) / (std + eps), and a group of one
gets mean 0 and std 1. Pure torch/numpy; does not import verl.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch


def group_ids(index: Sequence | np.ndarray) -> torch.Tensor:
    """Dense group ids 0..G-1 for a GRPO ``uid`` array (any hashable values)."""
    codes, _ = pd.factorize(np.asarray(index, dtype=object), use_na_sentinel=False)
    return torch.from_numpy(codes.astype(np.int64))


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
    num_groups = int(groups.max()) + 1 if groups.numel() else 0
    counts = torch.bincount(groups, minlength=num_groups).to(scores.dtype)
    sums = torch.zeros(num_groups, dtype=scores.dtype).index_add_(0, groups, scores)
    singleton = counts <= 1
    mean = torch.where(singleton, torch.zeros_like(sums), sums / counts)
    centred = scores - mean[groups]
    if not norm_by_std:
        return centred
    sq = torch.zeros(num_groups, dtype=scores.dtype).index_add_(0, groups, centred * centred)
    std = torch.where(singleton, torch.ones_like(sq), (sq / (counts - 1).clamp(min=1)).sqrt())
    return centred / (std[groups] + epsilon)
