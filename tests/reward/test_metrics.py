import numpy as np

from revisual_verl.reward.metrics import reward_metrics


def test_means_and_counts_under_reward_prefix():
    extra = {
        "score": np.array([1.0, 0.0, 0.5, 0.0]),
        "acc": np.array([1.0, 0.0, 1.0, 0.0]),
        "num_tokens": np.array([10, 20, 30, 40]),
        "timed_out": np.array([0, 1, 0, 1]),
        "bad_ground_truth": np.array([0, 0, 0, 1]),
    }
    metrics = reward_metrics(extra)
    assert metrics == {
        "reward/score/mean": 0.375,
        "reward/accuracy/mean": 0.5,
        "reward/num_tokens/mean": 25.0,
        "reward/timeouts": 2.0,
        "reward/bad_ground_truth": 1.0,
    }


def test_batches_from_other_managers_give_no_metrics():
    assert reward_metrics({"correct": [1.0], "answer_len": [3.0]}) == {}


def test_non_numeric_values_are_left_out_instead_of_crashing():
    extra = {
        "score": [1.0, None, "oops", float("nan"), 0.0],
        "timed_out": [True, None, "x", False],
        "acc": [None, None],
    }
    metrics = reward_metrics(extra)
    assert metrics == {"reward/score/mean": 0.5, "reward/timeouts": 1.0}
