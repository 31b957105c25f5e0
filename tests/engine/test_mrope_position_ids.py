"""3-D position ids rebuilt ragged along the sequence, checked through verl's own workaround and batch split."""

import pickle

import pytest
import torch
from tensordict import TensorDict
from verl.utils.tensordict_utils import chunk_tensordict, maybe_fix_3d_position_ids

from revisual_verl.engine.mrope_position_ids import fix_position_ids, needs_rebuild, sequence_ragged


def rows_of(lengths):
    # Distinct values in every row and rope axis, so a row or axis swapped shows.
    return [torch.arange(4 * n).reshape(4, n) + 1000 * i for i, n in enumerate(lengths)]


def offsets_of(lengths):
    return torch.tensor([0, *lengths]).cumsum(0)


def packed(rows):
    """As TransferQueue packs a field of a batch."""
    return torch.nested.as_nested_tensor(rows, layout=torch.jagged)


def after_verls_workaround(rows):
    data = TensorDict({"position_ids": packed(rows)}, batch_size=[len(rows)])
    maybe_fix_3d_position_ids(data)
    return data["position_ids"]


def split_rows(position_ids, chunks):
    rows = len(position_ids)
    data = TensorDict({"position_ids": position_ids, "row": torch.arange(rows)}, batch_size=[rows])
    maybe_fix_3d_position_ids(data)
    return [row for part in chunk_tensordict(data, chunks) for row in part["position_ids"].unbind(0)]


# [8, 8] and [16] * 4: the length equals 4 x the rows, so the rope-axis packing's values are square.
LENGTHS = [[6, 6], [6, 6, 6, 6], [8, 8], [16, 16, 16, 16], [4, 4], [7], [5, 6], [3, 9, 4, 8]]


@pytest.mark.parametrize("lengths", LENGTHS)
@pytest.mark.parametrize("state", ["as packed", "after verl's workaround"])
def test_rebuilt_rows_are_the_rows_and_survive_verls_split(lengths, state):
    rows = rows_of(lengths)
    position_ids = packed(rows) if state == "as packed" else after_verls_workaround(rows)
    rebuilt = sequence_ragged(position_ids, offsets_of(lengths))
    assert not needs_rebuild(rebuilt, offsets_of(lengths))
    assert all(torch.equal(got, want) for got, want in zip(rebuilt.unbind(0), rows, strict=True))
    for chunks in {1, len(rows)}:
        assert all(torch.equal(got, want) for got, want in zip(split_rows(rebuilt, chunks), rows, strict=True))


@pytest.mark.parametrize("lengths", [[6, 6], [6, 6, 6, 6]])
def test_equal_lengths_break_verls_split_without_the_rebuild(lengths):
    # What the engine meets: torch packs equal-length rows ragged along the rope axes, and verl's
    # workaround then labels them ragged along the sequence.
    assert packed(rows_of(lengths))._ragged_idx == 1
    with pytest.raises(RuntimeError, match="must match the size of tensor b"):
        split_rows(packed(rows_of(lengths)), 1)


def test_sequence_packed_tensors_are_left_alone_whatever_their_label():
    right = packed(rows_of([5, 6]))
    assert not needs_rebuild(right, offsets_of([5, 6])) and sequence_ragged(right, offsets_of([5, 6])) is right
    # A tensordict pickled and back labels it ragged at dim 1 (the bug verl's workaround is for): same values.
    data = TensorDict({"position_ids": right}, batch_size=[2]).consolidate()
    relabelled = pickle.loads(pickle.dumps(data))["position_ids"]
    assert relabelled._ragged_idx == 1 and not needs_rebuild(relabelled, offsets_of([5, 6]))


def test_fix_reads_the_sequence_from_input_ids_and_touches_nothing_else():
    lengths = [8, 8]
    input_ids = torch.nested.nested_tensor_from_jagged(torch.arange(16), offsets=offsets_of(lengths))
    data = TensorDict({"position_ids": after_verls_workaround(rows_of(lengths)), "input_ids": input_ids}, [2])
    fix_position_ids(data)
    assert all(torch.equal(got, want) for got, want in zip(data["position_ids"].unbind(0), rows_of(lengths)))
    assert data["input_ids"] is input_ids
    flat = torch.nested.as_nested_tensor([torch.arange(5), torch.arange(5)], layout=torch.jagged)  # 2-D ids
    assert not needs_rebuild(flat, offsets_of([5, 5])) and not needs_rebuild(torch.zeros(2, 4, 6), offsets_of([6, 6]))
    untouched = after_verls_workaround(rows_of(lengths))
    without_sequence = TensorDict({"position_ids": untouched}, [2])
    fix_position_ids(without_sequence)  # no input_ids: nothing to decide from, nothing changed
    assert without_sequence["position_ids"] is untouched


def test_offsets_that_fit_neither_layout_are_an_error_naming_them():
    with pytest.raises(ValueError, match="fit neither the sequence"):
        sequence_ragged(packed(rows_of([5, 6])), offsets_of([4, 7]))


def test_verls_mini_batch_split_before_the_engine_still_fails_on_equal_lengths():
    # The limit of the engine-side fix (docs/engine.md): verl's TrainingWorker.train_mini_batch relabels and
    # splits the update batch into mini-batches before the engine sees it. When this stops failing, verl packs
    # these ids right and the rebuild can go.
    from verl.utils.tensordict_utils import make_iterator

    data = TensorDict({"position_ids": packed(rows_of([6] * 4))}, batch_size=[4])
    maybe_fix_3d_position_ids(data)
    with pytest.raises(RuntimeError):
        next(make_iterator(data, mini_batch_size=4, epochs=1, seed=0, dataloader_kwargs={"shuffle": False}))
