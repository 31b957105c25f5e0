import pytest

from revisual_verl.reward.length import efficient_length_reward


def test_equals_delta_at_the_budget():
    assert efficient_length_reward(8192, 8192) == pytest.approx(0.5)
    assert efficient_length_reward(1000, 1000, alpha=0.01, delta=0.3) == pytest.approx(0.3)


def test_linear_between_the_clips():
    # alpha * (budget - L) + delta with the paper's alpha = 0.005, delta = 0.5
    assert efficient_length_reward(8092, 8192) == pytest.approx(0.5 + 0.005 * 100)
    assert efficient_length_reward(8292, 8192) == pytest.approx(0.5 - 0.005 * 100)
    # Interior points, away from both clips: the slope and the offset each show.
    assert efficient_length_reward(8192, 8192) == pytest.approx(0.5)
    assert efficient_length_reward(8142, 8192) == pytest.approx(0.75)
    assert efficient_length_reward(8262, 8192) == pytest.approx(0.15)
    assert efficient_length_reward(500, 1000, alpha=0.001, delta=0.2) == pytest.approx(0.7)


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


@pytest.mark.parametrize(
    ("num_tokens", "expected"),
    [(8152, 0.7), (8172, 0.6), (8191, 0.505), (8193, 0.495), (8212, 0.4), (8232, 0.3)],
)
def test_slope_is_alpha_strictly_between_the_clips(num_tokens, expected):
    # Points where neither clip is active: a slope of 2 * alpha (or alpha / 2) moves every one of them.
    assert efficient_length_reward(num_tokens, 8192) == pytest.approx(expected, abs=1e-12)
    assert efficient_length_reward(num_tokens, 8192, alpha=0.01) == pytest.approx(
        0.5 + 0.01 * (8192 - num_tokens), abs=1e-12
    )


def test_the_clip_points_are_exactly_where_the_line_leaves_zero_to_one():
    # Reaches 1 at budget - (1 - delta) / alpha = 8092 tokens and 0 at budget + delta / alpha = 8292 tokens.
    assert efficient_length_reward(8093, 8192) == pytest.approx(0.995, abs=1e-12)
    assert efficient_length_reward(8092, 8192) == pytest.approx(1.0, abs=1e-12)
    assert efficient_length_reward(8091, 8192) == 1.0
    assert efficient_length_reward(8291, 8192) == pytest.approx(0.005, abs=1e-12)
    assert efficient_length_reward(8292, 8192) == pytest.approx(0.0, abs=1e-12)
    assert efficient_length_reward(8293, 8192) == 0.0
    # With delta = 0.2 and alpha = 0.01 the clip points move to budget - 80 and budget + 20.
    assert efficient_length_reward(920, 1000, alpha=0.01, delta=0.2) == pytest.approx(1.0, abs=1e-12)
    assert efficient_length_reward(921, 1000, alpha=0.01, delta=0.2) == pytest.approx(0.99, abs=1e-12)
    assert efficient_length_reward(1019, 1000, alpha=0.01, delta=0.2) == pytest.approx(0.01, abs=1e-12)
    assert efficient_length_reward(1021, 1000, alpha=0.01, delta=0.2) == 0.0


def test_result_always_in_unit_interval():
    values = [efficient_length_reward(n, 8192) for n in range(0, 20_000, 7)]
    assert min(values) == 0.0 and max(values) == 1.0
    assert all(0.0 <= v <= 1.0 for v in values)
