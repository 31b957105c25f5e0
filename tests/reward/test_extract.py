import time

from adversarial_text import adversarial_texts, slowest

from revisual_verl.reward.extract import extract_answer, final_boxed_parts, last_answer_tag, last_boxed


def test_last_of_several_boxed_when_far_apart():
    far = "first \\boxed{1}, then a long check of the working, line by line, that ends much later with \\boxed{2}."
    assert extract_answer(far) == "2"
    # math-verify joins boxes up to 69 characters apart when a separator lies between, even a retraction:
    assert extract_answer("\\boxed{1} is wrong; redo it carefully, step by step, from the start. \\boxed{2}") == "1,2"


def test_nested_braces_kept_whole():
    assert extract_answer("so \\boxed{\\frac{1}{\\sqrt{2}}} done") == "\\frac{1}{\\sqrt{2}}"
    assert extract_answer("\\boxed{\\{1, 2\\}}") == "\\{1, 2\\}"  # escaped braces are set delimiters


def test_box_around_a_box_is_unwrapped():
    assert extract_answer("\\boxed{\\boxed{42}}") == "42"
    assert extract_answer("\\boxed{a + \\boxed{b}}") == "a + \\boxed{b}"


def test_spacing_and_fbox_variants():
    assert extract_answer("\\boxed {7}") == "7"
    assert extract_answer("\\fbox{C}") == "C"
    assert extract_answer("\\boxed{  x = 3 }") == "x = 3"


def test_truncated_trailing_box_keeps_the_earlier_complete_answer():
    assert extract_answer("\\boxed{5} and later \\boxed{\\frac{1}{") == "5"
    assert last_boxed("\\boxed{\\frac{1}{") is None


def test_unbalanced_closing_braces_are_ignored():
    assert extract_answer("}}} \\boxed{3} }}") == "3"


def test_answer_tag_is_the_fallback():
    assert extract_answer("<think>x</think><answer> 12 </answer>") == "12"
    assert extract_answer("<answer>1</answer> <answer>2</answer>") == "2"
    assert extract_answer("<answer>1</answer> \\boxed{9}") == "9"  # a boxed answer wins
    assert last_answer_tag("<answer>never closed") is None
    assert last_answer_tag("<answer>   </answer>") is None


def test_truncated_trailing_answer_tag_keeps_the_earlier_complete_answer():
    assert last_answer_tag("<answer>5</answer> wait, let me redo this <answer>") == "5"
    assert extract_answer("<answer>5</answer> then <answer>6") == "5"
    assert last_answer_tag("<answer>a <answer>b</answer> <answer>") == "b"


def test_nothing_to_extract():
    assert extract_answer("no answer here") is None
    assert extract_answer("\\boxed{}") is None
    assert extract_answer("") is None
    assert extract_answer(None) is None
    assert extract_answer(12) is None


def test_hostile_shapes_are_linear_time():
    texts = [
        "\\boxed{" * 50_000,  # 50k unclosed boxes
        "{" * 200_000 + "\\boxed{1}",  # deep unclosed nesting before the answer
        "\\boxed{" + "{" * 100_000 + "}" * 100_000 + "}",  # 100k levels inside the answer
        "\\boxed{" * 5_000 + "x" + "}" * 5_000,  # a tower of boxes: unwrapped only a few times
    ]
    started = time.perf_counter()
    results = [extract_answer(t) for t in texts]
    assert time.perf_counter() - started < 10  # hang guard; each takes milliseconds
    assert results[0] is None
    assert results[1] == "1"
    assert results[2] == "{" * 100_000 + "}" * 100_000
    assert results[3] == "\\boxed{" * 4_996 + "x" + "}" * 4_996  # 5,000 boxes: the outer one + 3 unwraps


def test_extraction_is_linear_on_every_adversarial_shape_of_response_length():
    """40,000-character responses (past the recipe's 8,192 tokens) of every pair of atoms, against the same
    shapes at 4,000 characters measured in the same run: linear work grows ~10x, quadratic ~100x. Relative,
    so a loaded machine slows both sides alike; the absolute slack absorbs timer noise on tiny inputs."""
    short_seconds, _ = slowest(extract_answer, adversarial_texts(4_000, 2))
    seconds, text = slowest(extract_answer, adversarial_texts(40_000, 2))
    assert seconds < 30 * short_seconds + 0.05, f"{seconds:.3f} s vs {short_seconds:.3f} s on {text[:60]!r}..."


def test_boxes_close_together_form_one_answer():
    assert extract_answer("so \\boxed{1} and \\boxed{2}") == "1,2"
    assert extract_answer("$\\boxed{(2, 2)} \\quad \\text{and} \\quad \\boxed{(6, 2)}$") == "(2, 2),(6, 2)"
    assert extract_answer("$y_1 = \\boxed{3}, y_2 = \\boxed{5}$") == "3,5"
    assert extract_answer("\\boxed{1}; \\boxed{2}; \\fbox{3}") == "1,2,3"
    assert extract_answer("\\boxed{1}\n\\boxed{2}") == "1,2"  # under 10 characters apart: no separator needed


def test_gap_rules_of_math_verify():
    # 10 to 69 characters apart: joined only with a separator (and, or, a comma or a semicolon) in between.
    assert extract_answer("\\boxed{1} and then, after a check, \\boxed{2}") == "1,2"
    assert extract_answer("\\boxed{1} which we then checked \\boxed{2}") == "2"
    assert extract_answer("\\boxed{1} " + "and " + "x" * 64 + " \\boxed{2}") == "2"  # 70 characters or more
    # "and" must be a word: "band" is not a separator.
    assert extract_answer("\\boxed{1} the band play \\boxed{2}") == "2"
    # The same content twice counts once; far apart, the same content is not joined.
    assert extract_answer("\\boxed{2} \\boxed{2}") == "2"
    assert extract_answer("\\boxed{2} and we see, again: \\boxed{2}") == "2"
    assert extract_answer("\\boxed{1} \\boxed{2} \\boxed{2}") == "1,2"
    assert final_boxed_parts("\\boxed{2} and \\boxed{1} and \\boxed{2}") == ["2", "1", "2"]


def test_math_environments_must_be_chained_by_a_separator():
    assert extract_answer("$\\boxed{1}$ and $\\boxed{2}$") == "1,2"
    assert extract_answer("\\[\\boxed{1}\\] or \\[\\boxed{2}\\]") == "1,2"
    assert extract_answer("$x = \\boxed{1}$, $y = \\boxed{2}$.") == "1,2"
    assert extract_answer("$\\boxed{1}$ and then we check $\\boxed{2}$") == "2"
    # ...unless a "}" follows: math-verify then reads the boxes with its plain gap rule.
    assert extract_answer("$\\boxed{1}$ and then we check $\\boxed{2}$, so $\\frac{1}{2}$") == "1,2"


def test_what_stops_the_walk_back():
    assert extract_answer("\\boxed{1} and \\boxed{ and \\boxed{2}") == "2"  # an unclosed box in between
    assert extract_answer("\\boxed{1} and \\boxed 3 and \\boxed{2}") == "2"  # a box command without a brace
    assert extract_answer("\\boxed{a, \\boxed{1} and \\boxed{2}}") == "a, \\boxed{1} and \\boxed{2}"  # enclosing box
    # An inner box of an earlier box is what math-verify's backward search finds; the outer one ends the answer.
    assert extract_answer("\\boxed{a + \\boxed{1}} and \\boxed{2}") == "1,2"
    assert extract_answer("\\boxed{1} and \\boxed{} and \\boxed{2}") == "1,,2"  # as math-verify joins it


def test_a_ground_truth_of_several_boxes_is_one_answer():
    from revisual_verl.reward.accuracy import clean_ground_truth

    assert clean_ground_truth("\\boxed{1} and \\boxed{2}") == ("1,2", "")
    assert clean_ground_truth("\\boxed{5}") == ("5", "")


def test_many_boxes_in_a_row_stay_linear_in_output():
    text = "\\boxed{1}\\boxed{2}" * 25_000
    answer = extract_answer(text)
    assert answer.count(",") == 49_999  # every box joins: an oversize answer that scores 0 unparsed
    assert extract_answer("\\boxed{7}" * 50_000) == "7"
