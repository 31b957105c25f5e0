"""Per-benchmark statistics of k samples per problem: mean@k, its spread over the k runs, maj@k and pass@k.

Pure functions over (prediction, correct) samples; no verl import. A problem's k samples are its k "runs": run j
is the j-th sample of every problem, as the paper averages AIME over 8 runs.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    correct: bool
    pred: str  # the extracted answer, "" when the response gave none


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimator of pass@k from n samples of which c are correct: 1 - C(n-c, k) / C(n, k)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def majority_correct(samples: Sequence[Sample]) -> bool:
    """Whether the most frequent non-empty answer is a correct one (a tie goes to the answer seen first).

    Responses without an answer do not vote; a problem where none answered counts as wrong.
    """
    votes = Counter(sample.pred for sample in samples if sample.pred)
    if not votes:
        return False
    top = max(votes.values())
    winner = next(sample.pred for sample in samples if sample.pred and votes[sample.pred] == top)
    return any(sample.correct for sample in samples if sample.pred == winner)


@dataclass(frozen=True)
class BenchmarkScore:
    problems: int
    k: int
    mean: float  # mean@k: accuracy over every sample
    std_over_runs: float  # sample standard deviation of the k runs' accuracies (0 for k = 1)
    maj: float  # maj@k
    pass_at_k: float

    def as_percent(self) -> dict:
        return {
            "problems": self.problems,
            "k": self.k,
            "mean_at_k": round(100 * self.mean, 2),
            "std_over_runs": round(100 * self.std_over_runs, 2),
            "maj_at_k": round(100 * self.maj, 2),
            "pass_at_k": round(100 * self.pass_at_k, 2),
        }


def score_benchmark(problems: Sequence[Sequence[Sample]]) -> BenchmarkScore:
    """The statistics of one benchmark; every problem holds the same number k >= 1 of samples."""
    if not problems:
        raise ValueError("a benchmark without problems has no score")
    k = len(problems[0])
    if k < 1 or any(len(samples) != k for samples in problems):
        raise ValueError(f"every problem needs the same number of samples, got {sorted({len(p) for p in problems})}")
    runs = [sum(samples[j].correct for samples in problems) / len(problems) for j in range(k)]
    correct = [sum(sample.correct for sample in samples) for samples in problems]
    return BenchmarkScore(
        problems=len(problems),
        k=k,
        mean=sum(correct) / (k * len(problems)),
        std_over_runs=statistics.stdev(runs) if k > 1 else 0.0,
        maj=sum(majority_correct(samples) for samples in problems) / len(problems),
        pass_at_k=sum(pass_at_k(k, c, k) for c in correct) / len(problems),
    )
