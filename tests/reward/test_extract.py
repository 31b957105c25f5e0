import time

from adversarial_text import adversarial_texts, slowest

from revisual_verl.reward.extract import extract_answer, last_answer_tag, last_boxed


def test_last_of_several_boxed():
    assert extract_answer("first \\boxed{1} then \\boxed{2}.") == "2"


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
    """Hang guard over 40,000-character responses (past the recipe's 8,192 tokens) of every pair of atoms."""
    seconds, text = slowest(extract_answer, adversarial_texts(40_000, 2))
    assert seconds < 0.5, f"{seconds:.2f} s on {text[:60]!r}..."
