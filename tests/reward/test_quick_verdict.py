import logging
import time

import pytest
from adversarial_text import adversarial_texts, slowest
from answer_corpus import CORPUS
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
        ("- 7", "-7"),
        ("\\left(1, 3\\right]", "(1, 3]"),
        ("32,\\! 349", "32,349"),
    ]
    assert all(quick_verdict(a, g) is not None for a, g in decided)
    share = sum(quick_verdict(a, g) is not None for a, g, _ in LABELLED) / len(LABELLED)
    assert share > 0.4


def test_undecidable_shapes_are_left_to_the_parser():
    for answer, ground_truth in [
        ("x = 3", "3"),
        ("\\sqrt{12}", "2\\sqrt{3}"),
        ("1.0000001", "1"),
        ("1 000", "1000"),
        ("e", "2.718282"),
        ("i", "I"),
        # Spacing that math-verify reads differently is not normalised away (issue 11):
        ("32,\\! 349", "32, 349"),  # a number against a set of two numbers
        ("20 \\%", "20\\%"),  # compared as different strings by math-verify
        ("1,000", "1000"),
        ("٣", "3"),  # a non-ASCII digit is no number to math-verify
        ("B)", "B"),  # an unbalanced parenthesis is no choice letter
        ("\\text{B", "B"),
        ("\\text{}", "\\text{}"),  # empty to math-verify: it extracts nothing
    ]:
        assert quick_verdict(answer, ground_truth) is None, (answer, ground_truth)


def test_normalise_makes_only_math_verifys_own_rewrites():
    assert normalise(" \\left( 1 , 2 \\right] ") == "( 1 , 2 ]"  # spaces kept
    assert normalise("\\left.x\\right|") == "\\left.x|"  # \\left. is not one math-verify rewrites
    assert normalise("1 000") == "1 000"
    assert normalise("$\\dfrac{1}{2}$") == "\\frac{1}{2}"
    assert normalise("\\cfrac{1}{2}\\tfrac{3}{4}") == "\\frac{1}{2}\\frac{3}{4}"
    assert normalise("32,\\!  349") == "32,349"  # \\! and the spaces after it
    assert normalise("\\displaystyle x\\text{ }") == "x"


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


def _parsed(answers, config):
    return {answer: parse("\\boxed{" + answer + "}", config, parsing_timeout=None) for answer in answers}


def test_every_shortcut_verdict_on_the_corpus_is_math_verifys():
    """Differential test: every answer of the corpus against every other, both ways round. Wherever the shortcut
    decides, its verdict must be math-verify's, both as the reward's symbolic check runs it (LaTeX extraction of the
    boxed answer) and as verl's math_verify scorer does (plain expressions too)."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    answers = list(dict.fromkeys(CORPUS))
    decided = [(a, g, v) for a in answers for g in answers if (v := quick_verdict(a, g)) is not None]
    assert len(decided) > 10_000  # the corpus does reach the shortcut's rules
    assert {v for _, _, v in decided} == {True, False}
    latex = (LatexExtractionConfig(),)
    gold, pred_latex = _parsed(answers, latex), _parsed(answers, latex)
    pred_verl = _parsed(answers, (ExprExtractionConfig(), LatexExtractionConfig()))
    wrong = []
    for answer, truth, verdict in decided:
        by_latex = bool(
            gold[truth] and pred_latex[answer] and verify(gold[truth], pred_latex[answer], timeout_seconds=None)
        )
        by_verl = bool(
            gold[truth]
            and pred_verl[answer]
            and any(verify(g, p, timeout_seconds=None) for g in gold[truth] for p in pred_verl[answer])
        )
        if verdict != by_latex or verdict != by_verl:
            wrong.append((answer, truth, verdict, by_latex, by_verl))
    assert not wrong, f"{len(wrong)} shortcut verdicts differ from math-verify, e.g. {wrong[:5]}"


def test_classifying_is_linear_on_every_adversarial_shape():
    """Hang guard: answers up to max_answer_chars (1000), ground truths up to 10,000 characters."""
    for length, atoms in ((1000, 3), (10_000, 2)):
        seconds, text = slowest(answer_form.__wrapped__, adversarial_texts(length, atoms))
        assert seconds < 0.5, f"{seconds:.2f} s on {text[:60]!r}..."
