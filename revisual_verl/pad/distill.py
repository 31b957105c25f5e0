"""The distilled batch of the ``pad_sync`` trainer: PAD's selected rows as TransferQueue keys.

A row drawn m times (sampling with replacement) is either one row of weight m (``duplicates=weights``:
its advantage and its ``loss_mask`` are scaled by m, nothing is copied) or m rows, as in the authors'
trainer (``copies``: the first keeps its key, the others are stored under new keys, :func:`copy_key`,
holding the same fields). verl's padding rows get zero advantages and keep their all-zero masks, so
they never count in the loss.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import transfer_queue as tq
from tensordict import TensorDict
from transfer_queue import KVBatchMeta

# Marks the second and later copies of a row. verl's replay buffer reads a key's uid as the text before
# its first "_", so a copy's uid (``<uid>-padcopy<j>``) never names a real prompt group.
COPY_MARK = "-padcopy"


def distilled_rows(weights: torch.Tensor) -> list[int]:
    """Row indices of the distilled batch: row i repeated ``weights[i]`` times, ascending."""
    counts = weights.detach().round().to(torch.long).clamp(min=0).cpu()
    return torch.repeat_interleave(torch.arange(counts.numel()), counts).tolist()


def distinct_rows(weights: torch.Tensor) -> list[int]:
    """Row indices drawn at least once, ascending: the distilled batch when duplicates are weights."""
    return (weights.detach().round() > 0).nonzero().squeeze(1).cpu().tolist()


def copy_key(key: str, copy_number: int) -> str:
    """The key of the ``copy_number``-th extra copy (1, 2, ...) of the row stored under ``key``."""
    head, sep, rest = key.partition("_")
    return f"{head}{COPY_MARK}{copy_number}{sep}{rest}"


def compact_unsupported(config: Any, use_critic: bool) -> str | None:
    """Why the distilled mode cannot run with this config (None when it can).

    Selecting right after the reward needs advantages that depend only on rewards and GRPO groups.
    """
    algorithm = config.algorithm
    if use_critic:
        return "a critic is configured (its values and update need every row)"
    if algorithm.get("use_kl_in_reward", False):
        return "algorithm.use_kl_in_reward=true makes the rewards depend on the reference log-probs"
    correction = algorithm.get("rollout_correction", None)
    if correction is not None and not correction.get("bypass_mode", False):
        if correction.get("rollout_is", None) or correction.get("rollout_rs", None):
            return "rollout correction (rollout_is/rollout_rs) needs old log-probs of every row before advantages"
    return None


def put_distilled_batch(batch: KVBatchMeta, rows: list[int]) -> KVBatchMeta:
    """Store the extra copies of rows drawn more than once; return the distilled batch's metadata."""
    keys, tags, sources, new_keys, new_tags = [], [], [], [], []
    copies: dict[int, int] = {}
    for row in rows:
        number = copies.get(row, 0)
        copies[row] = number + 1
        if number == 0:
            keys.append(batch.keys[row])
            tags.append(batch.tags[row])
            continue
        key = copy_key(batch.keys[row], number)
        tag = {**copy.deepcopy(batch.tags[row]), "pad_copy_of": batch.keys[row]}
        keys.append(key)
        tags.append(tag)
        sources.append(batch.keys[row])
        new_keys.append(key)
        new_tags.append(tag)
    if new_keys:
        fields = tq.kv_batch_get(keys=sources, partition_id=batch.partition_id)
        tq.kv_batch_put(keys=new_keys, partition_id=batch.partition_id, fields=fields, tags=new_tags)
    return KVBatchMeta(
        keys=keys,
        tags=tags,
        partition_id=batch.partition_id,
        fields=batch.fields,
        extra_info=dict(batch.extra_info or {}),
    )


ADVANTAGE_FIELDS = ("advantages", "returns")


def put_row_advantages(partition_id: str, keys: list[str], values: torch.Tensor) -> KVBatchMeta:
    """Store ``advantages`` and ``returns`` (GRPO: equal) with every response token of row i at ``values[i]``."""
    stored = tq.kv_batch_get(keys=keys, partition_id=partition_id, select_fields=["response_mask"])
    mask = stored["response_mask"]
    values = values.to(torch.float32)
    if mask.is_nested:
        offsets = mask.offsets()
        per_token = torch.repeat_interleave(values, offsets.diff().cpu())
        advantages = torch.nested.nested_tensor_from_jagged(per_token, offsets)
        returns = torch.nested.nested_tensor_from_jagged(per_token.clone(), offsets)
    else:
        advantages = values.unsqueeze(-1) * mask.to(torch.float32)
        returns = advantages.clone()
    fields = TensorDict(dict(zip(ADVANTAGE_FIELDS, (advantages, returns), strict=True)), batch_size=len(keys))
    # The returned metadata names every field stored for these rows (what the next pass may read).
    return tq.kv_batch_put(keys=keys, partition_id=partition_id, fields=fields)


def scale_rows(mask: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """A copy of ``mask`` (jagged nested or padded, [batch, *]) with row i multiplied by ``weights[i]``."""
    weights = weights.to(mask.dtype)
    if not mask.is_nested:
        return mask * weights.view(-1, *([1] * (mask.dim() - 1)))
    offsets = mask.offsets()
    per_token = torch.repeat_interleave(weights.to(offsets.device), offsets.diff())
    return torch.nested.nested_tensor_from_jagged(mask.values() * per_token, offsets)


def scale_loss_mask(partition_id: str, keys: list[str], weights: torch.Tensor) -> None:
    """Multiply each row's stored ``loss_mask`` by its weight. The engine sums ``loss_mask`` for the
    token-mean denominator, so a row of weight m counts as m rows there; ``response_mask`` stays 0/1."""
    stored = tq.kv_batch_get(keys=keys, partition_id=partition_id, select_fields=["loss_mask"])
    fields = TensorDict({"loss_mask": scale_rows(stored["loss_mask"], weights)}, batch_size=len(keys))
    tq.kv_batch_put(keys=keys, partition_id=partition_id, fields=fields)


def bookkeeping_batch(batch: KVBatchMeta, distilled: KVBatchMeta) -> KVBatchMeta:
    """The step's rows for verl's metrics and clean-up: the rollout's rows as sampled, then the distilled
    batch's extra keys (copies and verl's padding) tagged as padding so that no metric counts them twice."""
    known = set(batch.keys)
    extra = [(key, tag) for key, tag in zip(distilled.keys, distilled.tags, strict=True) if key not in known]
    return KVBatchMeta(
        keys=batch.keys + [key for key, _ in extra],
        tags=batch.tags + [{**tag, "is_padding": True} for _, tag in extra],
        partition_id=batch.partition_id,
        fields=batch.fields,
        extra_info=batch.extra_info,
    )
