import asyncio

import pytest

from revisual_verl.reward.accuracy import AccuracyResult
from revisual_verl.reward.composite import breakdown, combined_reward, revisual_reward, revisual_reward_async
from revisual_verl.reward.settings import RewardSettings

GOOD = "<think>work</think> \\boxed{12}"


def test_default_weights_combine_the_three_parts():
    settings = RewardSettings()
    assert combined_reward(1.0, 1.0, 1.0, settings) == 1.0
    assert combined_reward(1.0, 0.0, 0.5, settings) == pytest.approx(0.9 + 0.05 * 0.5)
    assert combined_reward(0.0, 1.0, 1.0, settings) == pytest.approx(0.1)
    assert combined_reward(0.0, 0.0, 0.0, settings) == 0.0


@pytest.mark.parametrize(
    ("weights", "parts", "expected"),
    [
        # Each weight alone (distinct values, so a weight read from the wrong setting shows), then mixed parts.
        ((0.6, 0.3, 0.1), (1, 0, 0), 0.6),
        ((0.6, 0.3, 0.1), (0, 1, 0), 0.3),
        ((0.6, 0.3, 0.1), (0, 0, 1), 0.1),
        ((0.6, 0.3, 0.1), (0, 0, 0.5), 0.05),
        ((0.6, 0.3, 0.1), (1, 0, 0.25), 0.625),
        ((0.2, 0.7, 0.05), (0, 1, 1), 0.75),
        ((0.2, 0.7, 0.05), (1, 0, 0.4), 0.22),
        ((0.9, 0.05, 0.05), (0, 1, 0.5), 0.075),
    ],
)
def test_each_weight_multiplies_its_own_part(weights, parts, expected):
    settings = RewardSettings(accuracy_weight=weights[0], format_weight=weights[1], length_weight=weights[2])
    assert combined_reward(*parts, settings) == pytest.approx(expected, abs=1e-12)


def test_the_total_is_clipped_to_the_unit_interval():
    # Settings accept weights summing to 1 + 1e-9 (float slack), so a perfect response would score just over 1.
    settings = RewardSettings(accuracy_weight=1.0, format_weight=5e-10, length_weight=0.0)
    assert combined_reward(1.0, 1.0, 0.0, settings) == 1.0
    # The clip holds whatever the parts: a part outside [0, 1] from a caller cannot push the total out.
    assert combined_reward(0.0, 0.0, -1.0, RewardSettings()) == 0.0
    assert combined_reward(1.0, 1.0, 3.0, RewardSettings()) == 1.0


def test_total_stays_in_unit_interval_for_any_valid_weights():
    for weights in [(1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.3, 0.3, 0.4), (0.2, 0.1, 0.1)]:
        settings = RewardSettings(accuracy_weight=weights[0], format_weight=weights[1], length_weight=weights[2])
        for parts in [(0, 0, 0), (1, 1, 1), (1, 0, 1), (0, 1, 0.5)]:
            assert 0.0 <= combined_reward(*parts, settings) <= 1.0


def test_length_bonus_can_require_a_correct_answer():
    # Distinct weights (the defaults give format and length 0.05 each, so a swap would not show).
    settings = RewardSettings(accuracy_weight=0.7, format_weight=0.2, length_weight=0.1, length_needs_correct=True)
    assert combined_reward(0.0, 1.0, 1.0, settings) == pytest.approx(0.2)
    assert combined_reward(1.0, 1.0, 0.5, settings) == pytest.approx(0.7 + 0.2 + 0.05)
    assert combined_reward(1.0, 0.0, 1.0, settings) == pytest.approx(0.8)


def test_whole_reward_for_a_response():
    settings = RewardSettings(length_budget=1000, accuracy_weight=0.7, format_weight=0.2, length_weight=0.1)
    result = revisual_reward(GOOD, "12", num_tokens=1040, settings=settings)
    assert (result.accuracy, result.format, result.length_reward) == (1.0, 1.0, pytest.approx(0.3))
    assert result.score == pytest.approx(0.7 + 0.2 + 0.1 * 0.3)
    assert result.pred == "12" and result.extra_info()["acc"] == 1.0
    assert not result.timed_out and not result.symbolic
    wrong = asyncio.run(revisual_reward_async("\\boxed{13}", "12", num_tokens=900, settings=settings))
    assert (wrong.accuracy, wrong.format, wrong.length_reward) == (0.0, 0.0, pytest.approx(1.0))
    assert wrong.score == pytest.approx(0.1)


def test_a_timeout_scores_zero_whatever_the_other_parts():
    verdict = AccuracyResult(correct=False, answer="x", decided_by="timeout", latency_s=5.0)
    result = breakdown(GOOD, 10, verdict, RewardSettings())
    assert result.score == 0.0 and result.format == 1.0 and result.timed_out and result.symbolic
    assert result.extra_info()["timed_out"] == 1
