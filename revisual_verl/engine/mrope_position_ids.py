"""Qwen2-VL's 3-D (mRoPE) position ids in a nested batch, ragged along the sequence as verl 0.9.1 assumes.

Each row's position ids are a (4, L) tensor. TransferQueue (and verl's ``left_right_2_no_padding``) pack a
batch's rows with ``torch.nested.as_nested_tensor(rows, layout=torch.jagged)``. When every row has the same
length L, torch finds no ragged dimension and makes dim 1, the four rope axes, the ragged one (values (4B, L),
offsets 0, 4, 8, ...). verl sets ``_ragged_idx = 2`` on every 3-D nested ``position_ids``
(``tensordict_utils.maybe_fix_3d_position_ids``, its workaround for a tensordict pickling bug), which leaves
offsets that count rope axes under an index that says sequence; the next split of the batch
(``chunk_tensordict``'s fallback) then fails with ``The size of tensor a (4) must match the size of tensor b``.
On the learning run's task this came in the first steps of verl's GRPO (``trainer_mode=sync``).

Neither ``_ragged_idx`` nor the tensor's shape tells the two layouts apart (pickling relabels both), so the
sequence lengths decide: the rows are ragged along the sequence when the tensor's offsets are the batch's
sequence offsets (``input_ids``') and its values hold every token, (axes, total length). Anything else with
offsets that count whole rows of the values is the rope-axis packing, rebuilt by :func:`sequence_ragged`.
"""

from __future__ import annotations

import torch

# Dimension of the sequence in a nested (batch, axes, sequence) tensor.
SEQUENCE_DIM = 2


def _is_nested_3d(position_ids) -> bool:
    return (
        isinstance(position_ids, torch.Tensor)
        and position_ids.is_nested
        and position_ids.layout == torch.jagged
        and position_ids.dim() == 3
    )


def needs_rebuild(position_ids, sequence_offsets: torch.Tensor) -> bool:
    """Whether ``position_ids`` is packed ragged along the rope axes rather than along the sequence, whose
    offsets (one per row, from 0 to the batch's token count) are ``sequence_offsets``."""
    if not _is_nested_3d(position_ids):
        return False
    values, offsets = position_ids.values(), position_ids.offsets()
    along_sequence = torch.equal(offsets.cpu(), sequence_offsets.cpu()) and values.shape[1] == int(offsets[-1])
    return not along_sequence


def sequence_ragged(position_ids: torch.Tensor, sequence_offsets: torch.Tensor) -> torch.Tensor:
    """``position_ids`` (nested, jagged, 3-D) rebuilt with the sequence as its ragged dimension, the rows
    unchanged; returned as it is when it already is."""
    if not needs_rebuild(position_ids, sequence_offsets):
        return position_ids
    values, offsets = position_ids.values(), position_ids.offsets()
    if int(offsets[-1]) != values.shape[0]:
        raise ValueError(
            f"position_ids: offsets {offsets.tolist()[:8]}... fit neither the sequence (token count "
            f"{int(sequence_offsets[-1])}) nor the rope axes (values {tuple(values.shape)})"
        )
    bounds = offsets.tolist()
    rows = [values[start:end] for start, end in zip(bounds[:-1], bounds[1:], strict=True)]
    lengths = [row.shape[1] for row in rows]
    expected = sequence_offsets.diff().tolist()
    if lengths != expected:
        raise ValueError(f"position_ids: row lengths {lengths[:8]} are not the sequence lengths {expected[:8]}")
    return torch.nested.nested_tensor_from_jagged(
        torch.cat(rows, dim=1), offsets=sequence_offsets.to(values.device), jagged_dim=SEQUENCE_DIM
    )


def fix_position_ids(data) -> None:
    """Rebuild ``data["position_ids"]`` in place when it is packed along the rope axes; the sequence offsets
    come from the nested ``input_ids`` beside it (without them nothing is changed)."""
    if "position_ids" not in data.keys() or "input_ids" not in data.keys():
        return
    input_ids = data["input_ids"]
    if not (isinstance(input_ids, torch.Tensor) and input_ids.is_nested and input_ids.layout == torch.jagged):
        return
    if needs_rebuild(data["position_ids"], input_ids.offsets()):
        data["position_ids"] = sequence_ragged(data["position_ids"], input_ids.offsets())
