"""The symbolic check, math-verify's parse + verify, for answers the cheap rules leave open.

Runs inside :mod:`killable_pool` workers, which bound it with a hard timeout; math-verify's own
``signal.alarm`` timeouts are switched off (they only work in a main thread, and a silent alarm would
hide a timeout from the metric). Only LaTeX extraction is used: math-verify's plain-expression extractor
hands text to sympy's ``parse_expr``, which evaluates Python, and model text must never be evaluated.
"""

import logging
from functools import lru_cache

import math_verify.grader
import math_verify.parser
from math_verify import parse, verify
from math_verify.parser import LatexExtractionConfig

# The "timeout disabled" notice is expected here: the pool's kill is the timeout.
math_verify.parser.TIMEOUT_WARNING_SHOWN = True
math_verify.grader.TIMEOUT_WARNING_SHOWN = True
logging.getLogger("math_verify").setLevel(logging.ERROR)

_LATEX = (LatexExtractionConfig(),)


def _parse_boxed(answer: str) -> list:
    return parse("\\boxed{" + answer + "}", _LATEX, parsing_timeout=None)


@lru_cache(maxsize=4096)
def parsed_ground_truth(ground_truth: str) -> tuple:
    """Parsed once per worker and ground truth: the rollouts of one prompt share it."""
    return tuple(_parse_boxed(ground_truth))


def symbolic_verdict(answer: str, ground_truth: str) -> bool:
    """Whether an extracted answer equals a ground truth, by math-verify's rules."""
    gold = parsed_ground_truth(ground_truth)
    pred = _parse_boxed(answer)
    return bool(gold and pred and verify(list(gold), pred, timeout_seconds=None))
