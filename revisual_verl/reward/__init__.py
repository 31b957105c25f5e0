"""The stage-2/3 reward of the recipe: accuracy + format + efficient length (SPEC section 3).

Everything importable from here is pure Python and does not import verl; the verl adapter, which
registers reward manager ``revisual``, is :mod:`revisual_verl.reward.manager`.
"""

from revisual_verl.reward.accuracy import AccuracyChecker, AccuracyResult, accuracy_reward, clean_ground_truth
from revisual_verl.reward.composite import (
    RewardBreakdown,
    combined_reward,
    revisual_reward,
    revisual_reward_async,
)
from revisual_verl.reward.extract import extract_answer, final_boxed, last_answer_tag, last_boxed
from revisual_verl.reward.length import efficient_length_reward
from revisual_verl.reward.metrics import REWARD_EXTRA_KEYS, reward_metrics
from revisual_verl.reward.quick_verdict import quick_verdict
from revisual_verl.reward.response_format import format_reward
from revisual_verl.reward.settings import RewardSettings

__all__ = [
    "REWARD_EXTRA_KEYS",
    "AccuracyChecker",
    "AccuracyResult",
    "RewardBreakdown",
    "RewardSettings",
    "accuracy_reward",
    "clean_ground_truth",
    "combined_reward",
    "efficient_length_reward",
    "extract_answer",
    "final_boxed",
    "format_reward",
    "last_answer_tag",
    "last_boxed",
    "quick_verdict",
    "revisual_reward",
    "revisual_reward_async",
    "reward_metrics",
]
