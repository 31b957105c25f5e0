import logging
import time

import pytest
from adversarial_text import adversarial_texts, slowest
from labelled_answers import LABELLED
from math_verify import parse, verify
from math_verify.parser import ExprExtractionConfig, LatexExtractionConfig

from revisual_verl.reward.quick_verdict import answer_form, normalise, quick_verdict


def math_verify_verdict(answer: str, ground_truth: str) -> bool:
    """math-verify configured as verl's math_verify scorer, on the boxed answer (main thread: its alarms work)."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    gold = parse("\\boxed{" + ground_truth + "}", (LatexExtractionConfig(),))
    pred = parse("\\boxed{" + answer + "}", (ExprExtractionConfig(), LatexExtractionConfig()))
    return bool(gold and pred and verify(gold, pred))


@pytest.mark.parametrize(("answer", "ground_truth", "label"), LABELLED)
def test_labels_are_math_verify_verdicts(answer, ground_truth, label):
    assert math_verify_verdict(answer, ground_truth) == label


@pytest.mark.parametrize(("answer", "ground_truth", "label"), LABELLED)
def test_a_quick_verdict_never_contradicts_math_verify(answer, ground_truth, label):
    verdict = quick_verdict(answer, ground_truth)
    assert verdict is None or verdict == label


def test_common_shapes_are_decided_without_the_parser():
    decided = [
        ("42", "42"),
        ("42", "43"),
        ("\\dfrac{1}{2}", "0.5"),
        ("3/4", "\\frac{3}{4}"),
        ("(B)", "B"),
        ("C", "B"),
        ("2.4", "2.5"),
        ("5", "A"),
        ("\\left(1, 3\\right]", "(1, 3]"),
    ]
    assert all(quick_verdict(a, g) is not None for a, g in decided)
    share = sum(quick_verdict(a, g) is not None for a, g, _ in LABELLED) / len(LABELLED)
    assert share > 0.5


def test_undecidable_shapes_are_left_to_the_parser():
    for answer, ground_truth in [
        ("x = 3", "3"),
        ("\\sqrt{12}", "2\\sqrt{3}"),
        ("1.0000001", "1"),
        ("1 000", "1000"),
        ("e", "2.718282"),
        ("i", "I"),
    ]:
        assert quick_verdict(answer, ground_truth) is None, (answer, ground_truth)


def test_normalise_keeps_meaningful_spaces():
    assert normalise(" \\left( 1 , 2 \\right) ") == "(1,2)"
    assert normalise("1 000") == "1 000"
    assert normalise("$\\dfrac{1}{2}$") == "\\frac{1}{2}"


def test_answer_form_is_computed_once_per_string():
    answer_form.cache_clear()
    for _ in range(8):
        quick_verdict("17", "\\frac{34}{2}")
    assert answer_form.cache_info().misses == 2


def test_display_dollars_are_stripped_at_both_ends_only():
    assert normalise("$$x$$") == "x"
    assert normalise("$ 5 $") == "5"
    assert normalise("$$$") == ""
    assert normalise("a$b") == "a$b"


def test_a_long_run_of_dollars_in_a_ground_truth_is_linear():
    # A ground truth may be 10,000 characters; a trailing-dollars pattern retried at each "$" took ~0.7 s here.
    started = time.perf_counter()
    form = answer_form("x" + "$" * 9998 + "x")
    assert time.perf_counter() - started < 0.5  # hang guard; now microseconds
    assert form.normalised == "x" + "$" * 9998 + "x"


def test_classifying_is_linear_on_every_adversarial_shape():
    """Hang guard: answers up to max_answer_chars (1000), ground truths up to 10,000 characters."""
    for length, atoms in ((1000, 3), (10_000, 2)):
        seconds, text = slowest(answer_form.__wrapped__, adversarial_texts(length, atoms))
        assert seconds < 0.5, f"{seconds:.2f} s on {text[:60]!r}..."
