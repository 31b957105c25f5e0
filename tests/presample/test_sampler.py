"""The presample sampler: the skip draws against the rule (chi-square), a prompt that teaches again is drawn at
once, full batches, and its state through torchdata's StatefulDataLoader and torch.save (what verl checkpoints)."""

import io

import numpy as np
import pytest
import torch
from scipy.stats import chisquare
from torchdata.stateful_dataloader import StatefulDataLoader

from revisual_verl.presample.config import PresampleConfig
from revisual_verl.presample.rule import EASY, HARD
from revisual_verl.presample.sampler import PresampleSampler


def draws_per_epoch(sampler, epochs):
    """How many epochs each prompt was drawn in, over ``epochs`` passes with the history held fixed."""
    counts = np.zeros(sampler.num_prompts, dtype=int)
    iterator = iter(sampler)
    while True:
        position = next(iterator)
        if sampler.epoch >= epochs:
            return counts
        counts[position] += 1


def test_each_prompt_is_drawn_with_probability_max_p_to_the_streak_and_the_floor():
    settings = PresampleConfig(p_start=0.5)
    sampler = PresampleSampler(5, settings, data_seed=3)
    sampler.p[EASY], sampler.p[HARD] = 0.6, 0.5
    sampler.streaks = {1: (EASY, 1), 2: (HARD, 2), 3: (HARD, 10), 4: (EASY, 2)}
    epochs = 4000
    counts = draws_per_epoch(sampler, epochs)
    keep = np.array([1.0, 0.6, 0.25, 0.01, 0.36])
    assert counts[0] == epochs  # no streak: never skipped
    for position in range(1, 5):
        observed = [counts[position], epochs - counts[position]]
        expected = [epochs * keep[position], epochs * (1 - keep[position])]
        assert chisquare(observed, expected).pvalue > 1e-4, (position, observed, expected)


def test_skip_counts_are_reported_by_kind_and_reset_each_step():
    sampler = PresampleSampler(4, PresampleConfig(), data_seed=0)
    sampler.streaks = {0: (EASY, 12), 1: (HARD, 12)}  # kept with the 1% floor only
    draws_per_epoch(sampler, 50)
    metrics = sampler.end_step([], generated_rows=0, trained_rows=0)
    assert 0.45 < metrics["presample/skipped_share"] < 0.5
    assert metrics["presample/skipped_easy_share"] == pytest.approx(metrics["presample/skipped_hard_share"], abs=0.03)
    assert sampler.end_step([], 0, 0)["presample/skipped_share"] == 0.0


def test_a_prompt_that_teaches_again_is_drawn_in_every_epoch_after():
    sampler = PresampleSampler(3, PresampleConfig(), data_seed=1)
    for _ in range(8):
        sampler.record(2, 0.0)
    assert sampler.streak_of(2) == (HARD, 8)
    assert draws_per_epoch(sampler, 200)[2] < 20
    sampler.record(2, 0.5)
    sampler.epoch, sampler.cursor = 0, 0
    assert draws_per_epoch(sampler, 200)[2] == 200


def test_end_step_moves_p_toward_the_target_shares():
    sampler = PresampleSampler(8, PresampleConfig(), data_seed=0)
    # 8 groups: 3 easy (0.375 > 0.083), none hard (0 < 0.167).
    metrics = sampler.end_step([EASY, EASY, EASY, None, None, None, None, None], generated_rows=64, trained_rows=16)
    assert metrics["presample/p_easy"] == pytest.approx(0.49)
    assert metrics["presample/p_hard"] == pytest.approx(0.51)
    assert metrics["presample/uniform_share"] == pytest.approx(3 / 8)
    assert metrics["presample/uniform_easy_share"] == pytest.approx(3 / 8)
    assert metrics["presample/rollouts_per_trained_row"] == pytest.approx(4.0)
    metrics = sampler.end_step([None] * 8, generated_rows=64, trained_rows=48)
    assert metrics["presample/rollouts_per_trained_row"] == pytest.approx(128 / 64)


def loader_for(sampler, batch_size=3):
    return StatefulDataLoader(list(range(sampler.num_prompts)), batch_size=batch_size, sampler=sampler, drop_last=True)


def run_steps(loader, sampler, steps, iterator=None):
    """Fetch a batch per step, record an outcome that depends on the prompt, end the step; the batches."""
    iterator = iterator or iter(loader)
    batches = []
    for _ in range(steps):
        batch = next(iterator).tolist()
        assert sampler.claim(len(batch)) == batch
        kinds = [sampler.record(p, 1.0 if p % 3 == 0 else (0.0 if p % 3 == 1 else 0.5)) for p in batch]
        sampler.end_step(kinds, generated_rows=8 * len(batch), trained_rows=8)
        batches.append(batch)
    return batches, iterator


def test_batches_stay_full_across_epochs_while_prompts_are_skipped():
    sampler = PresampleSampler(10, PresampleConfig(), data_seed=2)
    batches, _ = run_steps(loader_for(sampler), sampler, 60)
    assert all(len(batch) == 3 for batch in batches)
    assert sampler.epoch >= 20  # more epochs than 60 * 3 / 10 = 18: prompts were skipped
    late = [p for batch in batches[-30:] for p in batch]
    assert sum(p % 3 == 2 for p in late) > sum(p % 3 != 2 for p in late)  # the prompts that teach dominate


def test_a_resumed_loader_draws_what_the_uninterrupted_one_draws():
    settings = PresampleConfig(seed=7)
    straight = PresampleSampler(10, settings, data_seed=2)
    expected, _ = run_steps(loader_for(straight), straight, 40)

    first = PresampleSampler(10, settings, data_seed=2)
    loader = loader_for(first)
    head, _ = run_steps(loader, first, 17)
    saved = io.BytesIO()
    torch.save(loader.state_dict(), saved)  # what verl writes to data.pt
    saved.seek(0)

    resumed = PresampleSampler(10, settings, data_seed=2)
    loader = loader_for(resumed)
    loader.load_state_dict(torch.load(saved, weights_only=False))
    tail, _ = run_steps(loader, resumed, 23)
    assert head + tail == expected
    assert resumed.p == straight.p and resumed.streaks == straight.streaks


def test_a_checkpoint_of_other_data_is_refused():
    state = PresampleSampler(10, PresampleConfig()).state_dict()
    with pytest.raises(ValueError, match="10 prompts, the training dataset has 11"):
        PresampleSampler(11, PresampleConfig()).load_state_dict(state)


def test_claiming_more_than_was_drawn_says_why():
    sampler = PresampleSampler(4, PresampleConfig())
    next(iter(sampler))
    with pytest.raises(RuntimeError, match="dataloader_num_workers=0"):
        sampler.claim(2)
