"""The stage-2/3 reward: weighted accuracy + format + efficient length, in [0, 1]."""

import threading
from dataclasses import dataclass

from revisual_verl.reward.accuracy import AccuracyChecker, AccuracyResult
from revisual_verl.reward.length import efficient_length_reward
from revisual_verl.reward.response_format import format_reward
from revisual_verl.reward.settings import RewardSettings


@dataclass(frozen=True)
class RewardBreakdown:
    """The total and its parts; :meth:`extra_info` is what verl stores per sample (same keys every time).

    verl's validation names two of them: ``acc`` (reported as ``val-core/<data_source>/acc/mean@N``) and
    ``pred`` (the extracted answer, which its ``maj@N`` votes on), so the accuracy part travels as ``acc``.
    """

    score: float
    accuracy: float
    format: float
    length_reward: float
    num_tokens: int
    timed_out: bool
    bad_ground_truth: bool
    symbolic: bool  # the verdict needed the symbolic parser
    pred: str = ""  # the extracted final answer; "" when the response gave none

    def extra_info(self) -> dict:
        return {
            "score": self.score,
            "acc": self.accuracy,
            "format": self.format,
            "length_reward": self.length_reward,
            "num_tokens": self.num_tokens,
            "timed_out": int(self.timed_out),
            "bad_ground_truth": int(self.bad_ground_truth),
            "symbolic": int(self.symbolic),
            "pred": self.pred,
        }


def combined_reward(accuracy: float, format_score: float, length_score: float, settings: RewardSettings) -> float:
    """``w_acc * accuracy + w_fmt * format + w_len * length``, clipped to [0, 1]."""
    length_part = length_score if (accuracy > 0 or not settings.length_needs_correct) else 0.0
    total = (
        settings.accuracy_weight * accuracy
        + settings.format_weight * format_score
        + settings.length_weight * length_part
    )
    return min(1.0, max(0.0, total))


def breakdown(text: str, num_tokens: int, verdict: AccuracyResult, settings: RewardSettings) -> RewardBreakdown:
    """Assemble the reward from an accuracy verdict. A timed-out check scores 0 outright, and so does an
    empty response (a rollout that produced no token): the length term would otherwise pay it its maximum."""
    accuracy = 1.0 if verdict.correct else 0.0
    format_score = format_reward(text)
    length_score = efficient_length_reward(
        num_tokens, settings.length_budget, settings.length_alpha, settings.length_delta
    )
    empty = num_tokens <= 0
    score = 0.0 if verdict.timed_out or empty else combined_reward(accuracy, format_score, length_score, settings)
    return RewardBreakdown(
        score=score,
        accuracy=accuracy,
        format=format_score,
        length_reward=length_score,
        num_tokens=int(num_tokens),
        timed_out=verdict.timed_out,
        bad_ground_truth=verdict.bad_ground_truth,
        symbolic=verdict.decided_by in ("symbolic", "timeout", "worker_error"),
        pred=verdict.answer or "",
    )


def revisual_reward(
    text: str,
    ground_truth,
    num_tokens: int,
    settings: RewardSettings | None = None,
    checker: AccuracyChecker | None = None,
    choices=None,
) -> RewardBreakdown:
    """The whole reward for one response (blocking; see :func:`revisual_reward_async` for asyncio callers).

    ``choices``: a multiple-choice row's options in letter order (:mod:`revisual_verl.reward.choices`)."""
    settings = settings or RewardSettings()
    checker = checker or checker_for(settings)
    return breakdown(text, num_tokens, checker.check(text, ground_truth, choices), settings)


async def revisual_reward_async(
    text: str,
    ground_truth,
    num_tokens: int,
    settings: RewardSettings | None = None,
    checker: AccuracyChecker | None = None,
    choices=None,
) -> RewardBreakdown:
    settings = settings or RewardSettings()
    checker = checker or checker_for(settings)
    return breakdown(text, num_tokens, await checker.check_async(text, ground_truth, choices), settings)


_checkers: dict[tuple, AccuracyChecker] = {}
_checkers_lock = threading.Lock()


def checker_for(settings: RewardSettings) -> AccuracyChecker:
    """One checker (and so one verdict cache) per distinct accuracy setting in this process."""
    key = (settings.timeout_s, settings.workers, settings.max_answer_chars)
    with _checkers_lock:
        if key not in _checkers:
            _checkers[key] = AccuracyChecker(settings.timeout_s, settings.workers, settings.max_answer_chars)
        return _checkers[key]
