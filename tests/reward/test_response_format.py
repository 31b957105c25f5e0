from adversarial_text import adversarial_texts, slowest

from revisual_verl.reward.response_format import format_reward


def test_think_then_boxed_answer():
    assert format_reward("<think>reasoning</think>\nThe answer is \\boxed{4}.") == 1.0
    assert format_reward("  \n<think>r</think>\\boxed{\\frac{1}{2}}") == 1.0


def test_missing_or_misplaced_parts():
    assert format_reward("reasoning \\boxed{4}") == 0.0  # no think block
    assert format_reward("<think>r \\boxed{4}</think> done") == 0.0  # answer only inside the think block
    assert format_reward("<think>r</think> the answer is 4") == 0.0  # no boxed answer
    assert format_reward("<think>   </think> \\boxed{4}") == 0.0  # empty reasoning
    assert format_reward("intro <think>r</think> \\boxed{4}") == 0.0  # think must open the response
    assert format_reward("<think>r</think><think>s</think> \\boxed{4}") == 0.0  # one think block only
    assert format_reward("<think>r \\boxed{4}") == 0.0  # never closed
    assert format_reward("<think>r</think> \\boxed{4") == 0.0  # unclosed box


def test_non_text_scores_zero():
    assert format_reward(None) == 0.0


def test_format_check_is_linear_on_every_adversarial_shape_of_response_length():
    """Hang guard: the think block is well formed, so every text reaches the boxed-answer scan."""
    texts = ("<think>r</think>" + text for text in adversarial_texts(40_000, 2))
    seconds, text = slowest(format_reward, texts)
    assert seconds < 0.5, f"{seconds:.2f} s on {text[:60]!r}..."
