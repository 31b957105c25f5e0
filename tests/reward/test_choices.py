"""The multiple-choice rule: the right option's letter or its text is right, nothing else (issue 18)."""

import asyncio

import numpy as np
import pytest

from revisual_verl.reward.accuracy import AccuracyChecker
from revisual_verl.reward.choices import MAX_CHOICES, choice_target, clean_choices
from revisual_verl.reward.killable_pool import KillablePool

CHOICES = ("3/11", "\\frac{8}{11}", "6/11", "x^2 + 1")  # B is right


@pytest.fixture(scope="module")
def checker():
    pool = KillablePool(max_workers=1, preload=("revisual_verl.reward.symbolic",))
    yield AccuracyChecker(timeout_s=5.0, pool=pool)
    pool.shutdown()


@pytest.mark.parametrize(
    ("answer", "target"),
    [
        # 1. a letter of one of the options: that letter decides
        ("B", True),
        ("(b)", True),
        ("\\text{B}", True),
        ("\\textbf{(B)}", True),
        ("A", False),
        ("D", False),
        # 2. a letter, a separator and text: the letter must be right and the text is compared with B's
        ("(B) 8/11", ("8/11", "\\frac{8}{11}")),
        ("B. \\frac{8}{11}", ("\\frac{8}{11}", "\\frac{8}{11}")),
        ("B: 0.7272", ("0.7272", "\\frac{8}{11}")),
        ("B.", True),
        ("(A) 8/11", False),  # a letter never counts for an option it does not name
        ("C) 8/11", False),
        # 3. anything else is compared with the right option's text
        ("8/11", ("8/11", "\\frac{8}{11}")),
        ("E", ("E", "\\frac{8}{11}")),  # no fifth option: "E" is no letter here
        ("1 + x^2", ("1 + x^2", "\\frac{8}{11}")),
    ],
)
def test_choice_target_follows_the_rule(answer, target):
    assert choice_target(answer, "B", CHOICES) == target


def test_a_ground_truth_that_is_no_single_letter_of_the_options_is_compared_as_usual():
    assert choice_target("A, C", "A, C", CHOICES) is None  # several right options
    assert choice_target("8/11", "F", CHOICES) is None  # no sixth option
    assert choice_target("8/11", "8/11", CHOICES) is None


@pytest.mark.parametrize(
    "choices",
    [None, "B", [], ["a", ""], ["a", 3], ["x"] * (MAX_CHOICES + 1), ["a", "b" * 20_000], {"A": "a"}, object()],
)
def test_unusable_choices_are_ignored_never_raised_on(choices):
    assert clean_choices(choices) is None


def test_choices_arrive_as_lists_or_numpy_arrays():
    assert clean_choices(["  3/11 ", "8/11"]) == ("3/11", "8/11")
    assert clean_choices(np.array(["3/11", "8/11"], dtype=object)) == ("3/11", "8/11")


@pytest.mark.parametrize(
    ("response", "correct", "decided_by"),
    [
        ("\\boxed{B}", True, "quick"),
        ("\\boxed{(B) 8/11}", True, "quick"),
        ("\\boxed{\\dfrac{8}{11}}", True, "quick"),  # the option's text, in another spelling
        ("\\boxed{\\frac{8}{\\sqrt{121}}}", True, "symbolic"),  # ... that only math-verify finds equal
        ("\\boxed{A}", False, "quick"),
        ("\\boxed{3/11}", False, "quick"),  # the text of a wrong option
        ("\\boxed{(A) 8/11}", False, "quick"),
        ("\\boxed{(B) 3/11}", False, "quick"),  # the right letter with a wrong option's text
        ("no answer", False, "no_answer"),
    ],
)
def test_the_checker_takes_the_letter_or_the_right_options_text(checker, response, correct, decided_by):
    verdict = checker.check(f"<think>t</think> {response}", "B", list(CHOICES))
    assert (verdict.correct, verdict.decided_by) == (correct, decided_by)


def test_without_choices_only_the_letter_is_right(checker):
    # The options are what lets the text count: the same responses without them are compared with "B".
    assert checker.check("\\boxed{B}", "B").correct
    assert not checker.check("\\boxed{8/11}", "B").correct
    assert not checker.check("\\boxed{8/11}", "B", choices=["x", ""]).correct  # unusable choices are ignored


def test_pred_is_the_extracted_answer_and_the_async_path_agrees(checker):
    async def both():
        return await asyncio.gather(
            checker.check_async("\\boxed{\\frac{16}{22}}", "B", CHOICES),
            checker.check_async("\\boxed{(A) 3/11}", "B", CHOICES),
        )

    right, wrong = asyncio.run(both())
    assert (right.correct, right.answer) == (True, "\\frac{16}{22}")
    assert (wrong.correct, wrong.answer) == (False, "(A) 3/11")


def test_the_rule_reads_hostile_answers_in_linear_time():
    import time

    for answer in ("(B)" + " " * 900 + "x", "B." * 500, "(" * 1000, "B:" + "\\frac{" * 300):
        started = time.perf_counter()
        choice_target(answer, "B", CHOICES)
        assert time.perf_counter() - started < 0.1, answer[:40]


def test_a_degree_sign_in_an_option_reads_as_degrees(checker):
    # math-verify parses no "°", which benchmark options (WeMath's) are written with.
    degrees = ("30°", "60°", "90°")
    assert choice_target("60", "B", degrees) == ("60", "60^\\circ")
    assert choice_target("(B) 60°", "B", degrees) == ("60^\\circ", "60^\\circ")
    for answer, correct in [
        ("60", True),
        ("60^\\circ", True),
        ("60°", True),
        ("\\frac{\\pi}{3}", False),
        ("30", False),
    ]:
        assert checker.check(f"\\boxed{{{answer}}}", "B", degrees).correct is correct, answer
