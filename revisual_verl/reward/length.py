"""Efficient-length reward (SPEC section 3): a bonus that grows as a response gets shorter than its budget."""


def efficient_length_reward(num_tokens: int, budget: int, alpha: float = 0.005, delta: float = 0.5) -> float:
    """``clip(alpha * (budget - num_tokens) + delta, 0, 1)``.

    Equals ``delta`` at the budget, reaches 1 at ``budget - (1 - delta) / alpha`` tokens and 0 at
    ``budget + delta / alpha`` tokens.
    """
    if num_tokens < 0:
        raise ValueError(f"num_tokens must be >= 0, got {num_tokens}")
    raw = alpha * (budget - num_tokens) + delta
    return min(1.0, max(0.0, raw))
