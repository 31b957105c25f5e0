"""Format reward: the response reasons inside ``<think>...</think>`` and then gives a boxed answer."""

from revisual_verl.reward.extract import last_boxed

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


def format_reward(text: str) -> float:
    """1.0 when the response is ``<think>`` reasoning ``</think>`` followed by a ``\\boxed{}`` answer, else 0.0.

    Exactly one non-empty think block, opening the response (leading whitespace allowed), and a complete
    boxed answer after it. Plain string search only: linear in the response length whatever it holds.
    """
    if not isinstance(text, str):
        return 0.0
    body = text.lstrip()
    if not body.startswith(THINK_OPEN) or body.count(THINK_OPEN) != 1 or body.count(THINK_CLOSE) != 1:
        return 0.0
    close = body.find(THINK_CLOSE)
    if not body[len(THINK_OPEN) : close].strip():
        return 0.0
    return 1.0 if last_boxed(body[close + len(THINK_CLOSE) :]) else 0.0
