"""Refuse answers whose value is an integer too large to compute, before they reach sympy.

A model can write ``(10^{100})!`` or ``9^{9^{9}}`` in a dozen characters; sympy evaluates such
numbers eagerly and would run until the pool's timeout kills it, a worker restart for each. No real
answer has that shape, so these score 0 at once. Symbolic forms stay allowed (``n!``, ``e^{x^2}``,
``2^{2^{n}}``, ``10^{100}``): only numeric operands trip the rules.
"""

import re

# A factorial of an integer with 4+ digits (1000!) or of a purely numeric group holding a power or such an
# integer ((10^{100})!); (n+1)! has a letter and passes.
_BIG_FACTORIAL = re.compile(r"(?:[({][\d\s^{}+*-]*(?:\^|\d{4})[\d\s^{}+*-]*[)}]|\d{4,})\s*!")
# A numeric power tower: 9^{9^{9}}, 10^{10^10}, 2^3^4.
_NUMERIC_TOWER = re.compile(r"\d\s*\^\s*\{?\s*\(?\s*\d+\s*\)?\s*\^\s*\{?\s*\(?\s*\d")
# A numeric exponent with 7+ digits: 2^{1000000}.
_HUGE_EXPONENT = re.compile(r"\^\s*\{?\s*\d{7,}")

_RULES = (
    (_BIG_FACTORIAL, "factorial of a large or composite number"),
    (_NUMERIC_TOWER, "numeric power tower"),
    (_HUGE_EXPONENT, "exponent with 7 or more digits"),
)


def too_costly(answer: str) -> str | None:
    """Why the answer would be too costly to evaluate, or None when it may go to the symbolic check."""
    for pattern, reason in _RULES:
        if pattern.search(answer):
            return reason
    return None
