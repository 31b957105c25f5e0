"""Optimizer updates per step from the settings that act (revisual_verl.pad.updates)."""

import dataclasses

import pytest

from revisual_verl.pad.config import PadConfig
from revisual_verl.pad.updates import first_step_after_warmup, updates_per_step

# Table 5: 512 prompts x 8 responses, mini-batch 128 prompts; the authors' released PAD draw.
ROLLOUT, MINI = 512 * 8, 128 * 8
RELEASED = PadConfig(priority="power", alpha=1.5, rho=1.5, replacement=True, t_high=0.97)


def test_released_draw_with_weights_never_exceeds_the_rollouts_partition():
    count = updates_per_step(rollout_rows=ROLLOUT, mini_batch_rows=MINI, pad=RELEASED)
    assert (count.most, count.rows, count.varies) == (4, ROLLOUT, True)
    assert first_step_after_warmup(140, count.most) == 36


def test_released_draw_with_copies_makes_six_updates_and_ends_the_warmup_at_step_24():
    copies = dataclasses.replace(RELEASED, duplicates="copies")
    count = updates_per_step(rollout_rows=ROLLOUT, mini_batch_rows=MINI, pad=copies)
    assert (count.most, count.rows) == (6, 6144)
    # 23 steps x 6 = 138 updates; the 141st update (number 140) is the third of step 24.
    assert first_step_after_warmup(140, count.most) == 24


@pytest.mark.parametrize(
    "rho, replacement, rows, most",
    [(0.5, False, 2048, 2), (0.3, False, 1229, 2), (1.5, False, ROLLOUT, 4), (0.5, True, 2048, 2)],
)
def test_the_draw_size_sets_the_bound(rho, replacement, rows, most):
    pad = PadConfig(rho=rho, replacement=replacement)
    for duplicates in ("weights", "copies"):
        count = updates_per_step(
            rollout_rows=ROLLOUT, mini_batch_rows=MINI, pad=dataclasses.replace(pad, duplicates=duplicates)
        )
        assert (count.rows, count.most) == (rows, most), duplicates


def test_masked_mode_plain_estimators_and_epochs_use_the_whole_rollout():
    assert updates_per_step(rollout_rows=ROLLOUT, mini_batch_rows=MINI).most == 4
    masked = updates_per_step(rollout_rows=ROLLOUT, mini_batch_rows=MINI, pad=RELEASED, compact=False)
    assert (masked.most, masked.varies) == (4, False)
    assert updates_per_step(rollout_rows=ROLLOUT, mini_batch_rows=MINI, epochs=2, pad=RELEASED).most == 8
    # A partial last mini-batch is padded by verl into a whole update.
    assert updates_per_step(rollout_rows=ROLLOUT, mini_batch_rows=1000).most == 5


def test_warmup_boundaries_and_bad_sizes():
    assert [first_step_after_warmup(w, 4) for w in (0, 3, 4, 139, 140)] == [1, 1, 2, 35, 36]
    with pytest.raises(ValueError, match="mini_batch_rows=0"):
        updates_per_step(rollout_rows=8, mini_batch_rows=0)
    with pytest.raises(ValueError, match="updates_per_step"):
        first_step_after_warmup(140, 0)
