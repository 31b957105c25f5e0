"""Multiple-choice verdicts: a response may name the right option by its letter or by its text.

A multiple-choice row (as ``revisual-data prepare eval`` writes it) has the right option's letter as its ground
truth and the options' texts, in letter order from ``A``, in ``extra_info["choices"]``. The final answer is then
right when it is

1. a choice letter (``B``, ``(B)``, ``\\text{B}``, ``\\textbf{(B)}``, any case) of one of the options: exactly when
   it is the ground truth's letter;
2. such a letter followed by a separator and text (``(B) 8/11``, ``B. 8/11``, ``B: 8/11``, ``B) 8/11``): when the
   letter is the ground truth's and the text equals the right option's text; with no text after the separator
   (``B.``, ``B:``) the letter alone decides, as in 1;
3. anything else: when it equals the right option's text.

"Equals" is the reward's usual comparison (math-verify's rules), so ``\\frac{8}{11}`` matches an option written
``8/11``. Options are benchmark text rather than LaTeX, and math-verify parses no degree sign, so in this comparison
a ``°`` (on either side) is read as ``^\\circ``: ``60``, ``60^\\circ`` and ``60°`` all match an option ``60°``.

A letter never counts for an option it does not name: ``(A) 8/11`` is wrong when B is the right option, even if A's
text is also 8/11. A row without usable choices, or whose ground truth is not one letter of them (an answer of
several letters, say), is compared with its ground truth as usual.
"""

import re

from revisual_verl.reward.quick_verdict import choice_letter, normalise

MAX_CHOICES = 26  # one per letter A-Z
MAX_CHOICE_CHARS = 10_000  # as for a ground truth: a longer option is a broken row, not an answer to compare with
_DEGREE = "°"
# A letter, then a separator, then (perhaps) the option's text: whatever follows the separator.
_LETTER_THEN_TEXT = re.compile(r"\(([A-Za-z])\)\s*(.*)|([A-Za-z])\s*[.:)]\s*(.*)", re.DOTALL)


def clean_choices(choices) -> tuple[str, ...] | None:
    """The options' texts as a tuple of non-empty strings, or None when ``choices`` is no usable list of options.

    Accepts a list or tuple of strings, or a numpy array of them (as rows arrive from parquet); never raises.
    """
    try:
        if hasattr(choices, "tolist") and not isinstance(choices, str):
            choices = choices.tolist()
        if not isinstance(choices, list | tuple) or not 1 <= len(choices) <= MAX_CHOICES:
            return None
        if not all(isinstance(text, str) and 0 < len(text.strip()) <= MAX_CHOICE_CHARS for text in choices):
            return None
        return tuple(text.strip() for text in choices)
    except Exception:  # noqa: BLE001  a dataset row must not crash a step, whatever it holds
        return None


def _as_latex(text: str) -> str:
    return text.replace(_DEGREE, "^\\circ")


def _text_target(text: str, option: str) -> tuple[str, str]:
    return _as_latex(text), _as_latex(option)


def _index(letter: str | None, count: int) -> int | None:
    """The position of the option ``letter`` names, or None when it names none of ``count`` options."""
    if letter is None:
        return None
    position = ord(letter) - ord("A")
    return position if 0 <= position < count else None


def choice_target(answer: str, ground_truth: str, choices: tuple[str, ...]) -> bool | tuple[str, str] | None:
    """How to judge ``answer`` for a multiple-choice row (see the module's rule).

    ``True``/``False``: settled by the letter alone. ``(text, option)``: right exactly when ``text`` equals
    ``option`` by the usual comparison. ``None``: not a multiple-choice check; compare ``answer`` with the ground
    truth as usual.
    """
    right = _index(choice_letter(normalise(ground_truth)), len(choices))
    if right is None:
        return None
    text = normalise(answer)
    named = _index(choice_letter(text), len(choices))
    if named is not None:
        return named == right
    match = _LETTER_THEN_TEXT.fullmatch(text)
    if match is not None:
        letter, rest = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
        named = _index(letter.upper(), len(choices))
        if named is not None:
            if named != right:
                return False
            return _text_target(rest.strip(), choices[right]) if rest.strip() else True
    return _text_target(answer, choices[right])
