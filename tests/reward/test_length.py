import pytest

from revisual_verl.reward.length import efficient_length_reward


def test_equals_delta_at_the_budget():
    assert efficient_length_reward(8192, 8192) == pytest.approx(0.5)
    assert efficient_length_reward(1000, 1000, alpha=0.01, delta=0.3) == pytest.approx(0.3)


def test_linear_between_the_clips():
    # alpha * (budget - L) + delta with the paper's alpha = 0.005, delta = 0.5
    assert efficient_length_reward(8092, 8192) == pytest.approx(0.5 + 0.005 * 100)
    assert efficient_length_reward(8292, 8192) == pytest.approx(0.5 - 0.005 * 100)


def test_clipped_at_one_for_short_responses():
    assert efficient_length_reward(8092, 8192) == pytest.approx(1.0)  # exactly (1 - delta) / alpha below
    assert efficient_length_reward(10, 8192) == 1.0
    assert efficient_length_reward(0, 8192) == 1.0


def test_clipped_at_zero_past_budget_plus_delta_over_alpha():
    assert efficient_length_reward(8192 + 100, 8192) == pytest.approx(0.0)
    assert efficient_length_reward(8192 + 101, 8192) == 0.0
    assert efficient_length_reward(100_000, 8192) == 0.0


def test_negative_length_is_an_error():
    with pytest.raises(ValueError, match="num_tokens"):
        efficient_length_reward(-1, 8192)
