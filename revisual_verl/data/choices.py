"""Options of multiple-choice benchmark rows: read them, letter them, and name the right one by its letter.

Benchmarks store options in three ways: as a list (MathVista ``choices``, MathVision ``options``), inside the
question text (MathVerse ``Choices:\\nA:2\\nB:4``, DynaMath ``(A) ... (B) ...``) or as one text field (WeMath
``A. 30°; B. 60°``). Whatever the source, a converted row holds the options' texts in letter order from ``A`` and
its ground truth is the right option's letter, which is what the reward's multiple-choice rule reads
(:mod:`revisual_verl.reward.choices`).
"""

from __future__ import annotations

import random
import re

from revisual_verl.data.rejections import INVALID_CHOICES, RowRejected, quote

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MULTIPLE_CHOICE = "multiple_choice"
FREE_FORM = "free_form"

# An option marker: "(B)", or "B" followed by ".", ":" or ")"; at the start of the text or after a space, a ";" or
# a "," (so the "B." in "AB." is no marker).
_MARKER = re.compile(r"(?<![^\s;,])(?:\(([A-Z])\)|([A-Z])[.:)])")
# The heading benchmarks put before their options; the options are read after the last one when there is one.
_HEADING = re.compile(r"(?:Choices|Options)\s*:", re.IGNORECASE)
# A dataset's answer given as a letter: "B", "(B)", "B.", "B:", perhaps followed by the option's text.
_ANSWER_LETTER = re.compile(r"\s*(?:\(([A-Z])\)|([A-Z])(?=$|[\s.:)]))")
# Several letters ("A, C"): a question with more than one right option.
_LETTER_LIST = re.compile(r"\s*[A-Z](?:\s*[,;]\s*[A-Z])+\s*")


def _marker_runs(text: str) -> list[list[re.Match]]:
    """Runs of markers lettered A, B, C, ... in order; a marker out of order (a stray "C." in an option's text) is
    passed over, and an "A" starts a new run."""
    runs: list[list[re.Match]] = []
    for marker in _MARKER.finditer(text):
        letter = marker.group(1) or marker.group(2)
        if letter == "A":
            runs.append([marker])
        elif runs and LETTERS.index(letter) == len(runs[-1]):
            runs[-1].append(marker)
    return runs


def _texts(text: str, run: list[re.Match]) -> list[str]:
    texts = []
    for position, marker in enumerate(run):
        end = run[position + 1].start() if position + 1 < len(run) else len(text)
        option = text[marker.end() : end]
        if position + 1 == len(run):
            option = option.split("\n", 1)[0]  # the last option ends its line; what follows is no option
        texts.append(option.strip().rstrip(";,").strip())
    return texts


def parse_options(text: str) -> list[str]:
    """The options lettered in ``text`` (at least two, from A on, each non-empty), or [] when there are none.

    The last run of markers A, B, ... wins, read after the last ``Choices:``/``Options:`` heading if the text has
    one: options come after the question.
    """
    headings = list(_HEADING.finditer(text))
    regions = [text[headings[-1].end() :], text] if headings else [text]
    for region in regions:
        runs = [run for run in _marker_runs(region) if len(run) >= 2]
        if runs:
            texts = _texts(region, runs[-1])
            if all(texts):
                return texts
    return []


def options_block(options: list[str]) -> str:
    """The options as the prompt shows them: ``Choices:`` and one ``(A) text`` line per option."""
    return "Choices:\n" + "\n".join(f"({LETTERS[position]}) {text}" for position, text in enumerate(options))


def clean_options(values: object) -> list[str]:
    """A row's list of options as text; raises ``invalid_choices`` for an option that is empty or not text."""
    if not isinstance(values, list) or not values:
        raise RowRejected(INVALID_CHOICES, f"the options are {quote(values)}, expected a non-empty list")
    if len(values) > len(LETTERS):
        raise RowRejected(INVALID_CHOICES, f"{len(values)} options, more than the {len(LETTERS)} letters")
    options = []
    for position, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise RowRejected(INVALID_CHOICES, f"option {position} is {quote(value)}, expected text")
        text = str(value).strip()
        if not text:
            raise RowRejected(INVALID_CHOICES, f"option {position} is empty")
        options.append(text)
    return options


def answer_letter(answer: str, options: list[str], by_letter: bool = True) -> str:
    """The letter of the right option, from a dataset's answer given as the option's text or as its letter.

    The option's text is tried first (MathVista stores the text; an option may itself be a letter, as MathVision's
    "A".."E" for options drawn in the picture), then, unless ``by_letter`` is off (a benchmark whose answers are
    always texts, where "A cat" must not read as the letter A), a letter form (``B``, ``(B)``, ``B.``, ``B: 4``).
    Several letters (``A, C``) come back joined as ``A, C``. With no options known (they are in the picture), any
    letter is taken. Raises ``invalid_choices`` when the answer names no option.
    """
    for position, text in enumerate(options):
        if answer == text:
            return LETTERS[position]
    if not by_letter:
        raise RowRejected(INVALID_CHOICES, f"the answer {quote(answer)} is the text of none of {len(options)} options")
    if _LETTER_LIST.fullmatch(answer):
        letters = re.findall(r"[A-Z]", answer)
        if all(LETTERS.index(letter) < len(options) for letter in letters) or not options:
            return ", ".join(letters)
    match = _ANSWER_LETTER.match(answer)
    if match is not None:
        letter = match.group(1) or match.group(2)
        if not options or LETTERS.index(letter) < len(options):
            return letter
    named = f"the text nor the letter of one of {len(options)} options"
    raise RowRejected(INVALID_CHOICES, f"the answer {quote(answer)} is neither {named}")


def shuffled_options(correct: str, wrong: list[str], seed: int, key: str) -> tuple[list[str], str]:
    """The options in an order fixed by ``seed`` and ``key`` (the question), and the right option's letter.

    ``random.Random`` seeds from a string through SHA-512, so the order is the same in every run and on every
    machine, and does not depend on where the row sits in the file.
    """
    order = list(range(1 + len(wrong)))
    random.Random(f"{seed}:{key}").shuffle(order)
    everything = [correct, *wrong]
    return [everything[position] for position in order], LETTERS[order.index(0)]
