"""Multi-part answers: the reward's verdict equals math-verify's own extraction of the whole response (issue 11).

The reference is verl's math_verify scorer's use of math-verify: the ground truth wrapped in ``\\boxed{}`` and
parsed with LaTeX extraction, the whole response parsed with expression and LaTeX extraction. The reward extracts
the answer itself and has math-verify parse only that, so the two agree when the extraction does.
"""

import logging

import pytest
from math_verify import parse, verify
from math_verify.parser import ExprExtractionConfig, LatexExtractionConfig

from revisual_verl.reward.accuracy import AccuracyChecker, clean_ground_truth
from revisual_verl.reward.extract import extract_answer
from revisual_verl.reward.killable_pool import KillablePool

PARTS = [("1", "2"), ("(2, 2)", "(6, 2)"), ("3", "5"), ("x=1", "y=2"), ("\\frac{1}{2}", "-3"), ("2", "2"), ("A", "C")]
SHAPES = [
    "\\boxed{%s} and \\boxed{%s}",
    "$\\boxed{%s} \\quad \\text{and} \\quad \\boxed{%s}$",
    "$y_1 = \\boxed{%s}, y_2 = \\boxed{%s}$",
    "$\\boxed{%s}$ and $\\boxed{%s}$",
    "$\\boxed{%s}$, $\\boxed{%s}$",
    "$\\boxed{%s}$, and $\\boxed{%s}$",
    "\\boxed{%s}, \\boxed{%s}",
    "\\boxed{%s}; \\fbox{%s}",
    "\\boxed{%s}\n\\boxed{%s}",
    "\\boxed{%s} or \\boxed{%s}",
    "$\\boxed{%s}$ and then we check that $\\boxed{%s}$",
    "$\\boxed{%s}$ and then we check $\\boxed{%s}$. Check: $\\frac{1}{2}$ holds",
    "\\boxed{%s} and then we check that the other one is \\boxed{%s}",
    "\\boxed{%s} which we then checked \\boxed{%s}",
    "\\boxed{%s} is wrong; redo it carefully, step by step, from the start. \\boxed{%s}",
    "\\boxed{%s}. For part (b), a long explanation follows, with many words, so the gap is long: \\boxed{%s}",
    "\\[ \\boxed{%s} \\] and \\[ \\boxed{%s} \\]",
    "\\( \\boxed{%s} \\) or \\( \\boxed{%s} \\)",
    "$$\\boxed{%s}$$ and $$\\boxed{%s}$$",
    "The answers are $\\boxed{%s}$ and $\\boxed{%s}$.",
    "Therefore, the final answer is $\\boxed{%s}$ and $\\boxed{%s}$.",
    "So $a = \\boxed{%s}$; also $b = \\boxed{%s}$.",
    "\\boxed{a + \\boxed{%s}} and \\boxed{%s}",
    "\\boxed{\\boxed{%s}} and \\boxed{%s}",
    "\\boxed{%s} and \\boxed 3 and \\boxed{%s}",
    "\\boxed{%s}\\boxed{%s}\\boxed{9}",
    "the answer is \\boxed{%s} \\text{ and } \\boxed{%s}",
    "\\boxed{%s} the band play \\boxed{%s}",  # "and" only as a word
    "\\boxed{%s} and " + "x" * 63 + " \\boxed{%s}",  # 69 characters apart: joined
    "\\boxed{%s} and " + "x" * 64 + " \\boxed{%s}",  # 70: not
    "\\boxed{%s} and we see, again: \\boxed{%s}",
    "\\boxed{%s} \\boxed{%s} \\boxed{9} \\boxed{9}",
]
PREFIX = "<think>we compute 3+4=7, and so on</think> "


def _responses_and_truths():
    for shape in SHAPES:
        for first, second in PARTS:
            response = PREFIX + shape % (first, second)
            truths = [
                f"{first},{second}",
                f"{second}, {first}",
                second,
                first,
                f"\\boxed{{{first}}} and \\boxed{{{second}}}",
            ]
            for truth in truths:
                yield response, truth


CASES = list(_responses_and_truths())


def whole_response_verdict(response: str, ground_truth: str) -> bool:
    """verl's math_verify scorer, in-process (main thread, so math-verify's own timeouts work)."""
    gold = parse("\\boxed{" + ground_truth + "}", (LatexExtractionConfig(),))
    pred = parse(response, (ExprExtractionConfig(), LatexExtractionConfig()))
    return bool(gold and pred and any(verify(g, p) for g in gold for p in pred))


def extracted_verdict(response: str, ground_truth: str) -> bool:
    """What the reward asks math-verify: its own extraction of the response against the cleaned ground truth."""
    answer = extract_answer(response)
    gold_text, _ = clean_ground_truth(ground_truth)
    if answer is None or gold_text is None:
        return False
    gold = parse("\\boxed{" + gold_text + "}", (LatexExtractionConfig(),))
    pred = parse("\\boxed{" + answer + "}", (LatexExtractionConfig(),))
    return bool(gold and pred and verify(gold, pred))


def test_extraction_agrees_with_math_verify_reading_the_whole_response():
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    assert len(CASES) > 900
    differ = [(r[len(PREFIX) :], g) for r, g in CASES if whole_response_verdict(r, g) != extracted_verdict(r, g)]
    assert differ == []
    accepted = sum(whole_response_verdict(r, g) for r, g in CASES[:200])
    assert 20 < accepted < 180  # both verdicts occur


def test_the_deliberate_differences():
    """docs/reward.md, "Where this reward and math-verify differ on purpose"."""
    # A truncated trailing box: math-verify takes the unclosed box's raw tail as its answer and scores it wrong;
    # this reward keeps the complete answer before it.
    response = PREFIX + "\\boxed{1} and \\boxed{2} wait, \\boxed{\\frac{1}{"
    assert not whole_response_verdict(response, "1,2")
    assert extracted_verdict(response, "1,2")
    # A boxed answer math-verify cannot parse (here "x=1,,y=2", with an empty box joined in): math-verify falls
    # back to any number elsewhere in the response (the "2" of "y=2"); this reward scores the boxed answer.
    response = PREFIX + "\\boxed{x=1} and \\boxed{} and \\boxed{y=2}"
    assert extract_answer(response) == "x=1,,y=2"
    assert whole_response_verdict(response, "2")
    assert not extracted_verdict(response, "2")


@pytest.fixture(scope="module")
def checker():
    pool = KillablePool(max_workers=2, preload=("revisual_verl.reward.symbolic",))
    yield AccuracyChecker(timeout_s=5.0, pool=pool)
    pool.shutdown()


@pytest.mark.parametrize(
    ("response", "ground_truth", "correct"),
    [
        ("so \\boxed{1} and \\boxed{2}", "1, 2", True),
        ("so \\boxed{1} and \\boxed{2}", "2", False),  # was scored on its last box only, and right
        ("so \\boxed{2} and \\boxed{1}", "\\boxed{1} and \\boxed{2}", True),
        ("$\\boxed{(2, 2)} \\quad \\text{and} \\quad \\boxed{(6, 2)}$", "(6, 2), (2, 2)", True),
        ("$\\boxed{(2, 2)} \\quad \\text{and} \\quad \\boxed{(6, 2)}$", "\\boxed{(2, 2)} and \\boxed{(6, 2)}", True),
        ("$\\boxed{(2, 2)} \\quad \\text{and} \\quad \\boxed{(6, 2)}$", "(6, 2)", False),
        ("$y_1 = \\boxed{3}, y_2 = \\boxed{5}$", "3, 5", True),
        ("$y_1 = \\boxed{3}, y_2 = \\boxed{4}$", "3, 5", False),
        ("\\boxed{3, 5}", "\\boxed{3} and \\boxed{5}", True),  # a ground truth of several boxes keeps them all
        ("\\boxed{5}", "\\boxed{3} and \\boxed{5}", False),
    ],
)
def test_the_checker_scores_multi_part_answers_as_math_verify_does(checker, response, ground_truth, correct):
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    assert whole_response_verdict(response, ground_truth) is correct
    assert checker.check(response, ground_truth).correct is correct
