"""GRESO's rule as pure functions: the streak, the skip probability with its floor, the adaptive p."""

import pytest

from revisual_verl.presample.config import PresampleConfig
from revisual_verl.presample.rule import EASY, HARD, adjust_p, extend_streak, group_kind, skip_probability


def test_group_kind_uses_both_thresholds_inclusively():
    assert group_kind(1.0, 0.98, 0.11) == EASY
    assert group_kind(0.98, 0.98, 0.11) == EASY
    assert group_kind(0.97, 0.98, 0.11) is None
    assert group_kind(0.125, 0.98, 0.11) is None  # one right answer in eight still teaches
    assert group_kind(0.11, 0.98, 0.11) == HARD
    assert group_kind(0.0, 0.98, 0.11) == HARD


def test_a_group_whose_scores_differ_is_never_uniform_whatever_its_accuracy():
    # All correct, but the length bonus differs: GRPO's advantages are not 0, PAD trains it.
    assert group_kind(1.0, 0.98, 0.11, score_spread=0.002, tolerance=1e-6) is None
    assert group_kind(0.0, 0.98, 0.11, score_spread=0.05, tolerance=1e-6) is None
    assert group_kind(1.0, 0.98, 0.11, score_spread=5e-7, tolerance=1e-6) == EASY


@pytest.mark.parametrize(
    "kinds, expected",
    [
        ([], (None, 0)),
        ([HARD], (HARD, 1)),
        ([HARD, HARD, HARD], (HARD, 3)),
        ([EASY, HARD, HARD], (HARD, 2)),
        ([HARD, HARD, None], (None, 0)),  # the latest epoch taught: the streak is broken
        ([HARD, None, EASY, EASY], (EASY, 2)),
        ([EASY, HARD], (HARD, 1)),
        ([HARD] * 200, (HARD, 200)),  # no cap: p^z keeps falling to the floor
    ],
)
def test_streak_counts_the_latest_run_of_one_kind(kinds, expected):
    streak = (None, 0)
    for kind in kinds:
        streak = extend_streak(streak, kind)
    assert streak == expected


def test_skip_probability_is_one_minus_p_to_the_streak_with_a_floor():
    assert skip_probability(0.5, 0, 0.01) == 0.0
    assert skip_probability(0.5, 1, 0.01) == pytest.approx(0.5)
    assert skip_probability(0.5, 3, 0.01) == pytest.approx(0.875)
    assert skip_probability(0.9, 2, 0.01) == pytest.approx(1 - 0.81)
    # p^z below the floor: kept with the floor's probability, never skipped for good.
    assert skip_probability(0.5, 10, 0.01) == pytest.approx(0.99)
    assert skip_probability(0.05, 3, 0.01) == pytest.approx(0.99)


def test_adjust_p_skips_more_when_too_many_groups_are_uniform_and_stays_in_bounds():
    assert adjust_p(0.5, observed_share=0.3, target_share=0.1, step=0.01, low=0.05, high=0.95) == pytest.approx(0.49)
    assert adjust_p(0.5, observed_share=0.0, target_share=0.1, step=0.01, low=0.05, high=0.95) == pytest.approx(0.51)
    assert adjust_p(0.05, observed_share=1.0, target_share=0.1, step=0.01, low=0.05, high=0.95) == 0.05
    assert adjust_p(0.95, observed_share=0.0, target_share=0.1, step=0.01, low=0.05, high=0.95) == 0.95


def test_default_targets_split_alpha_one_third_easy_two_thirds_hard():
    settings = PresampleConfig()
    assert settings.target_easy_share == pytest.approx(0.25 / 3)
    assert settings.target_hard_share == pytest.approx(0.5 / 3)


@pytest.mark.parametrize(
    "section, key",
    [
        ({"keep_floor": 1.5}, "keep_floor"),
        ({"keep_floor": 0.0}, "keep_floor"),
        ({"hard_threshold": 0.99}, "hard_threshold"),
        ({"p_start": 0.99}, "p_start"),
        ({"p_step": 0}, "p_step"),
        ({"p_min": 0.0}, "p_min"),
    ],
)
def test_bad_settings_name_the_key(section, key):
    with pytest.raises(ValueError, match=f"algorithm.presample.{key}"):
        PresampleConfig.from_mapping(section)


def test_unknown_key_is_refused_with_its_full_name():
    with pytest.raises(ValueError, match="algorithm.presample"):
        PresampleConfig.from_mapping({"p_easy": 0.5})
