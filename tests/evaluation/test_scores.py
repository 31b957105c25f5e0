"""mean@k, the spread over runs, maj@k and pass@k of k samples per problem."""

import itertools
import math
import random

import pytest

from revisual_verl.evaluation.scores import Sample, majority_correct, pass_at_k, score_benchmark


def brute_pass_at_k(n: int, c: int, k: int) -> float:
    """The share of k-subsets of n samples (c correct) holding a correct one, counted one subset at a time."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in subset) for subset in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_pass_at_k_is_the_share_of_k_subsets_with_a_correct_sample(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k))


def test_pass_at_1_is_the_accuracy_and_bad_counts_are_refused():
    assert pass_at_k(8, 3, 1) == pytest.approx(3 / 8)
    for n, c, k in ((4, 5, 1), (4, -1, 1), (4, 2, 0), (4, 2, 5)):
        with pytest.raises(ValueError):
            pass_at_k(n, c, k)


def s(correct, pred):
    return Sample(bool(correct), pred)


def test_majority_vote_counts_answers_not_responses_without_one():
    # A tie goes to the answer seen first.
    assert majority_correct([s(0, "3"), s(1, "4"), s(1, "4"), s(0, "3"), s(0, "5")]) is False
    assert majority_correct([s(1, "4"), s(0, "3"), s(1, "4"), s(0, "3"), s(0, "5")]) is True
    assert majority_correct([s(0, "3"), s(0, "3"), s(1, "4")]) is False
    # Three responses gave no answer: they do not outvote the one right answer.
    assert majority_correct([s(0, ""), s(0, ""), s(0, ""), s(1, "7")]) is True
    assert majority_correct([s(0, ""), s(0, "")]) is False
    assert majority_correct([s(0, "9"), s(0, "9"), s(1, "1/2")]) is False
    assert majority_correct([s(0, "9"), s(1, "1/2"), s(1, "1/2")]) is True


def test_score_of_a_benchmark_by_hand():
    # Two problems, k = 3; run j is the j-th sample of each: runs score 1/2, 1, 1/2.
    problems = [[s(1, "2"), s(1, "2"), s(0, "3")], [s(0, "5"), s(1, "4"), s(1, "4")]]
    score = score_benchmark(problems)
    assert (score.problems, score.k) == (2, 3)
    assert score.mean == pytest.approx(4 / 6)
    assert score.std_over_runs == pytest.approx(math.sqrt(((1 / 6) ** 2 + (1 / 3) ** 2 + (1 / 6) ** 2) / 2))
    assert score.maj == pytest.approx(1.0)  # the majorities "2" and "4" are both right
    assert score.pass_at_k == pytest.approx(1.0)
    assert score.as_percent()["mean_at_k"] == pytest.approx(66.67)
    # One problem never solved: pass@k and maj@k fall with it.
    score = score_benchmark([*problems, [s(0, "1"), s(0, "1"), s(0, "")]])
    assert (score.pass_at_k, score.maj) == (pytest.approx(2 / 3), pytest.approx(2 / 3))


def test_random_benchmarks_agree_with_a_direct_count():
    rng = random.Random(0)
    for _ in range(50):
        k = rng.randint(1, 6)
        problems = [[s(rng.random() < 0.4, str(rng.randint(0, 3))) for _ in range(k)] for _ in range(rng.randint(1, 9))]
        score = score_benchmark(problems)
        flat = [sample.correct for samples in problems for sample in samples]
        assert score.mean == pytest.approx(sum(flat) / len(flat))
        assert score.pass_at_k == pytest.approx(sum(any(x.correct for x in p) for p in problems) / len(problems))
        assert score.std_over_runs >= 0 and (k > 1 or score.std_over_runs == 0)


def test_uneven_or_empty_benchmarks_are_refused():
    with pytest.raises(ValueError, match="same number"):
        score_benchmark([[s(1, "1")], [s(1, "1"), s(0, "2")]])
    with pytest.raises(ValueError, match="without problems"):
        score_benchmark([])
