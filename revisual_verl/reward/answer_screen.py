"""Refuse answers whose value is an integer too large to compute, before they reach sympy.

A model can write ``(10^{100})!`` or ``9^{9^{9}}`` in a dozen characters; sympy evaluates such
numbers eagerly and would run until the pool's timeout kills it, a worker restart for each. No real
answer has that shape, so these score 0 at once. Symbolic forms stay allowed (``n!``, ``e^{x^2}``,
``2^{2^{n}}``, ``10^{100}``): only numeric operands trip the rules.

This runs in-process, outside the pool's timeout, on untrusted text, so every rule is linear in the
answer's length: whitespace runs are first collapsed to one space (so no two optional spaces in a pattern
can share out a long run between them), the patterns have one unbounded quantifier at most, over digits
only, and the factorial rule is a backward scan from each ``!`` rather than a pattern.
"""

import re

_WHITESPACE = re.compile(r"\s+")
# A numeric power tower: 9^{9^{9}}, 10^{10^10}, 2^3^4 (whitespace already collapsed to single spaces).
_NUMERIC_TOWER = re.compile(r"\d ?\^ ?\{? ?\(? ?\d+ ?\)? ?\^ ?\{? ?\(? ?\d")
# A numeric exponent with 7+ digits: 2^{1000000}.
_HUGE_EXPONENT = re.compile(r"\^ ?\{? ?\d{7}")
_FOUR_DIGITS = re.compile(r"\d{4}")
# What a purely numeric factorial operand may hold: digits, spaces, powers, braces, + * -.
_OPERAND_SYMBOLS = frozenset(" ^{}+*-")


def _is_operand_char(char: str) -> bool:
    return char in _OPERAND_SYMBOLS or char.isdecimal()


def _big_factorial(text: str) -> bool:
    """A factorial of an integer with 4+ digits (``1000!``) or of a numeric group holding a power or such an
    integer (``(10^{100})!``, ``{10^{9}}!``); ``(n+1)!`` has a letter and passes.

    Each ``!`` looks back only as far as the previous ``!`` (which is no operand character), so the whole scan
    reads every character a bounded number of times.
    """
    bang = text.find("!")
    while bang >= 0:
        end = bang - 1
        if end >= 0 and text[end] == " ":
            end -= 1
        if end >= 0 and text[end].isdecimal():
            start = end
            while start > 0 and text[start - 1].isdecimal():
                start -= 1
            if end - start + 1 >= 4:
                return True
        elif end >= 0 and text[end] in ")}":
            start = end
            while start > 0 and _is_operand_char(text[start - 1]):
                start -= 1
            run = text[start:end]
            # The widest group that could open this operand: "(" just before the run, else the run's first "{".
            if start > 0 and text[start - 1] == "(":
                content = run
            else:
                brace = run.find("{")
                content = run[brace + 1 :] if brace >= 0 else ""
            if "^" in content or _FOUR_DIGITS.search(content):
                return True
        bang = text.find("!", bang + 1)
    return False


def too_costly(answer: str) -> str | None:
    """Why the answer would be too costly to evaluate, or None when it may go to the symbolic check."""
    text = _WHITESPACE.sub(" ", answer)
    if _big_factorial(text):
        return "factorial of a large or composite number"
    if _NUMERIC_TOWER.search(text):
        return "numeric power tower"
    if _HUGE_EXPONENT.search(text):
        return "exponent with 7 or more digits"
    return None
