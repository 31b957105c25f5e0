"""GRESO's skipping rule as pure functions (no torch, no verl)."""

from __future__ import annotations

EASY = "easy"
HARD = "hard"


def group_kind(
    mean_accuracy: float,
    easy_threshold: float,
    hard_threshold: float,
    score_spread: float = 0.0,
    tolerance: float = 0.0,
) -> str | None:
    """``easy`` (uniform-correct), ``hard`` (uniform-wrong) or None for a group that can teach.

    Uniform means every response scored the same (spread of the scores within ``tolerance``): GRPO then gives
    every row A = 0 and PAD drops the group. A group whose accuracy is uniform but whose scores differ (a
    length bonus among correct answers) still trains, and is not skipped."""
    if score_spread > tolerance:
        return None
    if mean_accuracy >= easy_threshold:
        return EASY
    if mean_accuracy <= hard_threshold:
        return HARD
    return None


def extend_streak(current: tuple[str | None, int], kind: str | None) -> tuple[str | None, int]:
    """The streak after one more epoch's group of ``kind``: one longer when it repeats the streak's kind,
    a new streak of 1 when it changes, (None, 0) when the group taught."""
    if kind is None:
        return None, 0
    last, count = current
    return (kind, count + 1) if kind == last else (kind, 1)


def skip_probability(p: float, z: int, keep_floor: float) -> float:
    """1 - max(p^z, floor): z = 0 (no uniform streak) is never skipped."""
    if z <= 0:
        return 0.0
    return 1.0 - max(p**z, keep_floor)


def adjust_p(p: float, observed_share: float, target_share: float, step: float, low: float, high: float) -> float:
    """One step of the adaptive p: more uniform groups than the target lowers p (skips more), fewer raises it."""
    moved = p - step if observed_share > target_share else p + step
    return min(high, max(low, moved))
