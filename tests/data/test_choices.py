"""Options of multiple-choice benchmark rows: read from lists, question texts and option fields (issue 18)."""

import pytest

from revisual_verl.data.choices import answer_letter, clean_options, options_block, parse_options, shuffled_options
from revisual_verl.data.rejections import RowRejected


@pytest.mark.parametrize(
    ("text", "options"),
    [
        # MathVerse: a heading, then one "A:text" line per option
        ("Find x.\nChoices:\nA:2\nB:4\nC:6\nD:8", ["2", "4", "6", "8"]),
        # DynaMath / MathVista queries: parenthesised letters, on one line or on several
        ("Which is larger? Choices: (A) f(1) (B) f(2) (C) equal", ["f(1)", "f(2)", "equal"]),
        ("Hint: ...\nChoices:\n(A) 3/11\n(B) 8/11", ["3/11", "8/11"]),
        # WeMath's option field
        ("A. 30°; B. 60°; C. 90°; D. No correct answer", ["30°", "60°", "90°", "No correct answer"]),
        # options in the question text, then an instruction on the next line
        ("Which comes next? A. square\nB. circle\nC. star\nAnswer with the letter.", ["square", "circle", "star"]),
        # a stray "A." in the question starts no list of its own; the real one follows
        ("Point A. Then (A) yes (B) no", ["yes", "no"]),
        # an option's text may hold a letter out of order
        ("(A) see C. below (B) none", ["see C. below", "none"]),
    ],
)
def test_options_are_read_from_text(text, options):
    assert parse_options(text) == options


@pytest.mark.parametrize(
    "text",
    [
        "What is the area of triangle ABC?",
        "Line AB. is tangent",  # "B." inside a word is no marker
        "Choose A. only one",  # one option is no list
        "(A) (B) 3",  # an empty option
    ],
)
def test_text_without_a_list_of_options_gives_none(text):
    assert parse_options(text) == []


def test_the_prompt_letters_the_options():
    assert options_block(["3/11", "8/11"]) == "Choices:\n(A) 3/11\n(B) 8/11"


@pytest.mark.parametrize(
    ("answer", "options", "letter"),
    [
        ("8/11", ["3/11", "8/11"], "B"),  # MathVista: the answer is the option's text
        ("C", ["1", "2", "3"], "C"),
        ("(C)", ["1", "2", "3"], "C"),
        ("C. 3", ["1", "2", "3"], "C"),
        ("B", ["A", "B", "C"], "B"),  # MathVision: options drawn in the picture are letters themselves
        ("A, C", [], "A, C"),  # LogicVista: several right options, listed only in the picture
        ("D", [], "D"),
    ],
)
def test_the_right_option_is_named_by_its_letter(answer, options, letter):
    assert answer_letter(answer, options) == letter


@pytest.mark.parametrize(
    ("answer", "options", "by_letter"),
    [("D", ["1", "2"], True), ("9/11", ["3/11", "8/11"], True), ("A cat", ["a dog", "two cats"], False)],
)
def test_an_answer_that_names_no_option_is_refused(answer, options, by_letter):
    with pytest.raises(RowRejected) as refused:
        answer_letter(answer, options, by_letter)
    assert refused.value.reason == "invalid_choices"


@pytest.mark.parametrize("values", [None, [], "A. 1; B. 2", ["1", ""], ["1", None], ["x"] * 27])
def test_a_list_of_options_that_cannot_be_used_is_refused(values):
    with pytest.raises(RowRejected) as refused:
        clean_options(values)
    assert refused.value.reason == "invalid_choices"


def test_a_shuffle_is_fixed_by_seed_and_question_alone():
    wrong = ["w1", "w2", "w3"]
    first, letter = shuffled_options("right", wrong, 0, "What is 1 + 1?")
    assert sorted(first) == ["right", "w1", "w2", "w3"] and first["ABCD".index(letter)] == "right"
    assert shuffled_options("right", wrong, 0, "What is 1 + 1?") == (first, letter)
    letters = {shuffled_options("right", wrong, 0, f"question {n}")[1] for n in range(40)}
    assert letters == set("ABCD")  # the right answer is not always in one place
    seeds = {tuple(shuffled_options("right", wrong, seed, "What is 1 + 1?")[0]) for seed in range(40)}
    assert len(seeds) > 1
