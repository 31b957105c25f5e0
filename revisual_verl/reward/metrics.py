"""Step metrics from the per-sample extra info the ``revisual`` manager returns.

verl 0.9.1 stores a reward manager's extra info per sample (in the batch, the rollout dumps and the
validation metrics) but does not aggregate it into training metrics; a trainer calls this on the step
batch's ``non_tensor_batch`` to log them under ``reward/``.
"""

import math
from collections.abc import Mapping, Sequence

REWARD_EXTRA_KEYS = (
    "score",
    "acc",
    "format",
    "length_reward",
    "num_tokens",
    "timed_out",
    "bad_ground_truth",
    "symbolic",
    "pred",
    # The manager adds the row's data source: verl's dump of validation generations keeps only extra info.
    "data_source",
)


def _numbers(values) -> list[float]:
    # Extra info comes from whatever reward manager ran; a value that is not a finite number (None, a
    # string) is left out rather than allowed to crash the step after its checkpoint was saved.
    out = []
    for value in values if values is not None else ():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out.append(number)
    return out


def reward_metrics(extra_info: Mapping[str, Sequence]) -> dict[str, float]:
    """Means of the reward parts, plus counts of timeouts and broken ground truths, keyed ``reward/...``.

    Keys that are absent (another reward manager ran) are skipped, so any batch can be passed.
    """
    metrics: dict[str, float] = {}
    # The accuracy part is stored as ``acc`` (the name verl's validation reports) and logged as accuracy.
    for key, name in (
        ("score", "score"),
        ("acc", "accuracy"),
        ("format", "format"),
        ("length_reward", "length_reward"),
        ("num_tokens", "num_tokens"),
        ("symbolic", "symbolic"),
    ):
        values = _numbers(extra_info.get(key, ()))
        if values:
            metrics[f"reward/{name}/mean"] = sum(values) / len(values)
    for key, name in (("timed_out", "timeouts"), ("bad_ground_truth", "bad_ground_truth")):
        if key in extra_info:
            metrics[f"reward/{name}"] = float(sum(1 for v in _numbers(extra_info[key]) if v))
    return metrics
