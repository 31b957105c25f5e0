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

# Only rewrites that math-verify's own LaTeX normalisation makes (latex2sympy2_extended's normalize_latex), so
# two answers equal after them are equal to math-verify too, even where its parser fails and it compares the
# normalised text: \left( -> (, \right] -> ], \dfrac/\tfrac/\cfrac -> \frac, \! and the spaces after it
# removed, \displaystyle and empty \text{} removed. Other spacing is kept: math-verify reads "32, 349" as a
# set but "32,349" as a number, and compares "20 \%" and "20\%" as different strings.
_LEFT_RIGHT = re.compile(r"\\left(?=[(\[{|]|\\[{|])|\\right(?=[)\]}|]|\\[}|])")
_FRAC_ALIAS = re.compile(r"\\[dtc]frac")
_REMOVED = re.compile(r"\\!\s*|\\displaystyle|\\text\s*\{\s*\}")
_SPACE_RUN = re.compile(r"\s+")
_NUMBER_CHARS = frozenset("0123456789.")

# ASCII digits only: Python's int() reads "٣" and "３" as 3, math-verify does not.
_INTEGER = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"-?(?:[0-9]+\.[0-9]+|\.[0-9]+)")
_LATEX_FRACTION = re.compile(r"(-?)\\frac\{(-?[0-9]+)\}\{(-?[0-9]+)\}")
_SLASH_FRACTION = re.compile(r"(-?[0-9]+)/([0-9]+)")
# A choice letter, optionally in parentheses and/or a text-style wrapper: A, (B), \text{C}, \textbf{(D)}.
_CHOICE = re.compile(
    r"\\(?:text|textbf|mathrm|mathbf)\{\s*(?:\(([A-Za-z])\)|([A-Za-z]))\s*\}|\(([A-Za-z])\)|([A-Za-z])"
)

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


def normalise(answer: str) -> str:
    """``answer`` after the rewrites math-verify's normalisation also makes (see above), outer ``$`` dropped."""
    # str.strip, not a pattern: "\$+$" retried at every "$" of a long run is quadratic.
    text = answer.strip().strip("$").strip()
    return _REMOVED.sub("", _FRAC_ALIAS.sub(r"\\frac", _LEFT_RIGHT.sub("", text))).strip()


def _without_sign_spaces(text: str) -> str | None:
    """``text`` without its whitespace, or None when a space separates two digits (``1 000`` is not 1000)."""
    if " " not in text and "\t" not in text and "\n" not in text:
        return text
    parts = _SPACE_RUN.split(text)
    for left, right in zip(parts, parts[1:]):
        if left and right and left[-1] in _NUMBER_CHARS and right[0] in _NUMBER_CHARS:
            return None
    return "".join(parts)


def _number(text: str) -> tuple[Fraction | None, bool]:
    text = _without_sign_spaces(text)
    if text is None:
        return None, False
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


def choice_letter(normalised: str) -> str | None:
    """The upper-case letter a normalised answer names (``B``, ``(b)``, ``\\text{B}``, ``\\textbf{(B)}``), or None.

    ``I`` counts here; :func:`answer_form` drops it, since math-verify reads a lone ``I`` as the imaginary unit.
    """
    match = _CHOICE.fullmatch(normalised)
    return next(letter for letter in match.groups() if letter).upper() if match else None


@lru_cache(maxsize=65536)
def answer_form(answer: str) -> AnswerForm:
    """Classify an answer once; cached, so a group's shared ground truth is analysed a single time."""
    normalised = normalise(answer)
    number, is_decimal = _number(normalised)
    choice = choice_letter(normalised) if number is None else None
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
