"""Cheap verdicts that agree with math-verify, for the common answer shapes.

Each rule decides only where math-verify's outcome is certain (checked against math-verify in
tests/reward/test_quick_verdict.py); everything else returns None and goes to the symbolic check.
Nothing here evaluates the text: it is only matched against fixed regular expressions, each linear in
the text's length (answers up to ``max_answer_chars`` and ground truths up to 10,000 characters come here).
"""

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

# Spacing and sizing commands that change nothing in the value.
_NOISE = re.compile(r"\\left(?![a-zA-Z])|\\right(?![a-zA-Z])|\\displaystyle|\\[,;:! ]|~")
_SPACE = re.compile(r"\s+")
_FRAC_ALIAS = re.compile(r"\\[dt]frac(?![a-zA-Z])")

_INTEGER = re.compile(r"-?\d+")
_DECIMAL = re.compile(r"-?(?:\d+\.\d+|\.\d+)")
_LATEX_FRACTION = re.compile(r"(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}")
_SLASH_FRACTION = re.compile(r"(-?\d+)/(\d+)")
# A choice letter, optionally in parentheses and/or a text-style wrapper: A, (B), \text{C}, \textbf{(D)}.
_CHOICE = re.compile(r"(?:\\(?:text|textbf|mathrm|mathbf)\{\s*)?\(?([A-Za-z])\)?(?:\s*\})?")

_MAX_INTEGER_DIGITS = 1000  # beyond this Python's int() guard and sympy's cost start to matter
_MAX_FLOAT_DIGITS = 15  # sympy Floats carry 15 significant digits; longer decimals compare unpredictably
# math-verify rounds to 6 decimals when a float is involved: values further apart than this always differ.
_FLOAT_CLEARLY_DIFFERENT = Fraction(2, 10**6)


@dataclass(frozen=True)
class AnswerForm:
    """What the cheap rules know about one answer string."""

    normalised: str
    number: Fraction | None = None
    is_decimal: bool = False
    choice: str | None = None


def _drop_spaces(text: str) -> str:
    # A space between two letters or digits can carry meaning ("1 000" is 1*0 to math-verify); keep those.
    parts = _SPACE.split(text)
    out = parts[0]
    for part in parts[1:]:
        if out and part and out[-1].isalnum() and part[0].isalnum():
            out += " "
        out += part
    return out


def normalise(answer: str) -> str:
    """Drop spacing/sizing commands, display dollars, and ``\\dfrac``/``\\tfrac`` spellings."""
    # str.strip, not a pattern: "\$+$" retried at every "$" of a long run is quadratic.
    text = answer.strip().strip("$")
    text = _FRAC_ALIAS.sub(r"\\frac", _NOISE.sub(" ", text))
    return _drop_spaces(text.strip())


def _number(text: str) -> tuple[Fraction | None, bool]:
    if _INTEGER.fullmatch(text):
        digits = len(text.lstrip("-"))
        return (Fraction(int(text)), False) if digits <= _MAX_INTEGER_DIGITS else (None, False)
    if _DECIMAL.fullmatch(text):
        significant = len(text.lstrip("-").replace(".", "").lstrip("0"))
        return (Fraction(text), True) if significant <= _MAX_FLOAT_DIGITS else (None, False)
    for pattern in (_LATEX_FRACTION, _SLASH_FRACTION):
        match = pattern.fullmatch(text)
        if match is None:
            continue
        groups = match.groups()
        sign = -1 if len(groups) == 3 and groups[0] == "-" else 1
        numerator, denominator = groups[-2], groups[-1]
        if len(numerator) + len(denominator) > 2 * _MAX_FLOAT_DIGITS or int(denominator) == 0:
            return None, False
        return sign * Fraction(int(numerator), int(denominator)), False
    return None, False


@lru_cache(maxsize=65536)
def answer_form(answer: str) -> AnswerForm:
    """Classify an answer once; cached, so a group's shared ground truth is analysed a single time."""
    normalised = normalise(answer)
    number, is_decimal = _number(normalised)
    choice_match = _CHOICE.fullmatch(normalised) if number is None else None
    choice = choice_match.group(1).upper() if choice_match else None
    if choice == "I":
        choice = None  # i is the imaginary unit to math-verify, so I/i do not behave as a choice letter
    return AnswerForm(normalised=normalised, number=number, is_decimal=is_decimal, choice=choice)


def quick_verdict(answer: str, ground_truth: str) -> bool | None:
    """True/False when a cheap rule settles it the way math-verify would, None when it cannot."""
    pred, gold = answer_form(answer), answer_form(ground_truth)
    if pred.normalised and pred.normalised == gold.normalised:
        return True
    if pred.number is not None and gold.number is not None:
        if not (pred.is_decimal or gold.is_decimal):
            return pred.number == gold.number
        gap = abs(pred.number - gold.number)
        if gap == 0:
            return True
        return False if gap > _FLOAT_CLEARLY_DIFFERENT else None
    if gold.choice is not None and pred.choice is not None:
        return pred.choice == gold.choice
    # A number against a choice letter never matches in math-verify, unless the letter is Euler's e.
    letter = gold.choice if pred.number is not None else pred.choice if gold.number is not None else None
    if letter is not None and letter != "E":
        return False
    return None
