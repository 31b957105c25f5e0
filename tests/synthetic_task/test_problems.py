"""The problems, their worked solutions, the train/held-out split, and the digit renderer."""

import itertools
import random
import re
import subprocess
import sys

import pytest
from PIL import Image

from revisual_verl.data.schemas import IMAGE_PLACEHOLDER as GRAMMAR_PLACEHOLDER
from revisual_verl.reward.composite import revisual_reward
from revisual_verl.synthetic_task import digits, problems
from revisual_verl.synthetic_task.problems import IMAGE, TEXT, Problem

SPLIT_CASES = [(IMAGE, 1), (IMAGE, 2), (TEXT, 2), (TEXT, 3)]


@pytest.mark.parametrize(("kind", "operands"), SPLIT_CASES)
def test_train_and_held_out_keys_are_disjoint_and_cover_every_key(kind, operands):
    split = problems.split_keys(kind, operands)
    every = problems.all_keys(kind, operands)
    length = operands + 1 if kind == IMAGE else operands
    assert len(every) == len(set(every)) == 10**length
    assert set(every) == set(itertools.product(range(10), repeat=length))
    assert not set(split.train) & set(split.held_out)
    assert sorted(split.train + split.held_out) == every
    for key in every:
        assert problems.is_held_out(kind, key) == (key in split.held_out)


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.5])
def test_the_held_out_share_follows_the_fraction(fraction):
    keys = problems.all_keys(TEXT, 3)
    held_out = problems.split_keys(TEXT, 3, fraction).held_out
    # 1000 keys: a binomial share within four standard deviations of the fraction.
    spread = 4 * (fraction * (1 - fraction) / len(keys)) ** 0.5
    assert abs(len(held_out) / len(keys) - fraction) < spread
    # A larger fraction only adds keys: the bucket of a key does not move with the fraction.
    assert set(problems.split_keys(TEXT, 3, fraction / 2).held_out) < set(held_out)


def test_the_split_depends_on_kind_and_salt_but_never_on_the_process():
    image = set(problems.split_keys(IMAGE, 1).held_out)  # keys (a, b): the same tuples as 2-digit text keys
    text = set(problems.split_keys(TEXT, 2).held_out)
    assert image != text
    assert set(problems.split_keys(TEXT, 2, salt="another salt").held_out) != text
    # Python's own hash() changes with PYTHONHASHSEED; the split must not.
    script = (
        "from revisual_verl.synthetic_task.problems import split_keys; print(sorted(split_keys('text', 2).held_out))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
        ).stdout
        for seed in ("1", "2")
    }
    assert outputs == {str(sorted(text)) + "\n"}


def test_the_default_split_is_pinned():
    # Models trained on files of an earlier version are evaluated on held-out files of a later one: the default
    # split must never move, or held-out problems would silently have been trained on.
    held_out = problems.split_keys(IMAGE, 1).held_out
    assert len(held_out) == 17
    assert held_out == (
        (0, 2), (1, 3), (1, 7), (2, 7), (3, 8), (4, 3), (4, 7), (4, 8), (4, 9),
        (5, 2), (5, 6), (5, 7), (6, 5), (7, 9), (8, 2), (8, 6), (9, 8),
    )  # fmt: skip
    assert len(problems.split_keys(TEXT, 3).held_out) == 173


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1e-9])
def test_a_split_with_an_empty_side_is_refused(fraction):
    with pytest.raises(ValueError):
        problems.split_keys(IMAGE, 1, fraction)


@pytest.mark.parametrize(
    ("kind", "key", "text"),
    [
        (IMAGE, (7, 4), "Add <image> and 4."),
        (IMAGE, (7, 4, 5), "Add <image>, 4 and 5."),
        (TEXT, (3, 4), "Add 3 and 4."),
        (TEXT, (3, 4, 5), "Add 3, 4 and 5."),
        (TEXT, (0, 9, 1, 2), "Add 0, 9, 1 and 2."),
    ],
)
def test_problem_sentences(kind, key, text):
    problem = Problem(kind, key)
    assert problem.text == text
    assert problem.answer == str(sum(key))
    assert problem.text.count(GRAMMAR_PLACEHOLDER) == (1 if kind == IMAGE else 0)


def test_an_image_problem_pictures_its_first_digit():
    assert Problem(IMAGE, (7, 4)).digit == 7
    with pytest.raises(ValueError):
        _ = Problem(TEXT, (7, 4)).digit


@pytest.mark.parametrize("key", [(), (3,), (10, 1), (-1, 2), (True, 2), (3.0, 2)])
def test_malformed_keys_are_refused(key):
    with pytest.raises(ValueError):
        Problem(TEXT, key)


@pytest.mark.parametrize(("kind", "operands"), [(IMAGE, 0), (IMAGE, 5), (TEXT, 1), (TEXT, 6)])
def test_operand_counts_out_of_range_are_refused(kind, operands):
    with pytest.raises(ValueError):
        problems.all_keys(kind, operands)


def test_the_worked_solution_example():
    assert problems.worked_solution((3, 4, 5)) == "<think>3+4=7 7+5=12</think>\\boxed{12}"
    assert problems.worked_solution((3, 4)) == "<think>3+4=7</think>\\boxed{7}"


def _solution_keys():
    rng = random.Random(0)
    keys = problems.all_keys(TEXT, 3)
    keys += [tuple(rng.randrange(10) for _ in range(length)) for length in (2, 4, 5) for _ in range(50)]
    return keys


def test_every_worked_solution_adds_left_to_right_and_boxes_the_answer():
    pattern = re.compile(r"<think>((?:\d+\+\d+=\d+ ?)+)</think>\\boxed\{(\d+)\}")
    for key in _solution_keys():
        match = pattern.fullmatch(problems.worked_solution(key))
        assert match, key
        steps = [tuple(map(int, re.fullmatch(r"(\d+)\+(\d+)=(\d+)", step).groups())) for step in match[1].split()]
        assert [step[1] for step in steps] == list(key[1:]), key
        total = key[0]
        for left, right, result in steps:
            assert left == total and result == left + right, key
            total = result
        assert match[2] == Problem(TEXT, key).answer == str(total)


def test_the_verifier_pays_every_worked_solution_in_full_and_nothing_for_a_wrong_sum():
    rng = random.Random(1)
    keys = [Problem(TEXT, k) for k in rng.sample(problems.all_keys(TEXT, 3), 8)]
    keys += [Problem(IMAGE, k) for k in rng.sample(problems.all_keys(IMAGE, 2), 4)]
    for problem in keys:
        right = revisual_reward(problem.solution, problem.answer, 12)
        assert (right.accuracy, right.format) == (1.0, 1.0), problem
        wrong = revisual_reward(problem.solution, str(int(problem.answer) + 1), 12)
        assert wrong.accuracy == 0.0, problem


def test_held_out_rows_cycle_through_every_held_out_key_evenly():
    keys = problems.split_keys(TEXT, 2).held_out
    chosen = problems.cycle_keys(random.Random(0), keys, 2 * len(keys) + 3)
    assert sorted(chosen[: len(keys)]) == sorted(keys)
    assert sorted(chosen[len(keys) : 2 * len(keys)]) == sorted(keys)
    assert len(chosen) == 2 * len(keys) + 3 and len(set(chosen[-3:])) == 3
    assert set(problems.draw_keys(random.Random(0), keys, 500)) == set(keys)


# The digit renderer.


def test_every_rendering_reads_back_as_its_digit(digit_reader):
    thicknesses, shifts = set(), set()
    for seed in range(40):
        for digit in range(10):
            image = digits.render_digit(digit, random.Random(seed * 10 + digit))
            assert image.mode == "RGB" and image.size == (28, 28)
            read, geometry = digit_reader(image)
            assert read == digit, (digit, seed, geometry)
            thicknesses.add(geometry["thickness"])
            shifts.add(geometry["shift"])
    assert thicknesses == {2, 3, 4}
    assert {x for x, _ in shifts} == {y for _, y in shifts} == {-2, -1, 0, 1, 2}


def test_renderings_differ_by_digit_and_by_seed_but_not_for_one_seed():
    by_digit = {digits.render_digit(d, random.Random(3)).tobytes() for d in range(10)}
    assert len(by_digit) == 10
    by_seed = {digits.render_digit(5, random.Random(seed)).tobytes() for seed in range(20)}
    assert len(by_seed) > 15
    assert digits.render_digit(5, random.Random(3)).tobytes() == digits.render_digit(5, random.Random(3)).tobytes()


def test_paper_is_light_and_ink_is_dark():
    for seed in range(50):
        image = digits.render_digit(seed % 10, random.Random(seed))
        levels = sorted({sum(pixel) / 3 for pixel in image.getdata()})
        assert levels[0] < 100 and levels[-1] > 220
        # Exactly two colours: strokes and paper, nothing in between that a reader could misjudge.
        assert len(set(image.getdata())) == 2


def test_the_blank_image_has_no_ink():
    blank = digits.blank_image()
    assert blank.mode == "RGB" and blank.size == (28, 28)
    assert min(sum(pixel) / 3 for pixel in blank.getdata()) > 220
    assert len(set(blank.getdata())) == 1


@pytest.mark.parametrize("size", [28, 56])
def test_no_stroke_reaches_the_edge(size, digit_reader):
    for seed in range(60):
        image = digits.render_digit(8, random.Random(seed), size=size)
        assert image.size == (size, size)
        edges = (0, size - 1)
        frame = [(x, y) for x in range(size) for y in range(size) if x in edges or y in edges]
        assert all(sum(image.getpixel(point)) / 3 > 220 for point in frame), seed
        assert digit_reader(image.resize((28, 28), Image.NEAREST))[0] == 8, seed


@pytest.mark.parametrize("bad", [-1, 10, 3.0, True, "7"])
def test_the_renderer_refuses_what_is_no_digit(bad):
    with pytest.raises(ValueError):
        digits.render_digit(bad, random.Random(0))


def test_the_renderer_refuses_images_smaller_than_qwen_vl_accepts():
    with pytest.raises(ValueError):
        digits.render_digit(3, random.Random(0), size=20)
    with pytest.raises(ValueError):
        digits.blank_image(14)


def test_careless_solution_boxes_the_first_sum_and_needs_a_step_to_leave_out():
    from revisual_verl.synthetic_task.problems import careless_solution

    assert careless_solution((3, 4, 5)) == "<think>3+4=7</think>\\boxed{7}"
    assert careless_solution((9, 8, 0, 2)) == "<think>9+8=17</think>\\boxed{17}"
    with pytest.raises(ValueError, match="at least three digits"):
        careless_solution((3, 4))


def test_additions_written_counts_the_steps_a_response_works_out():
    from revisual_verl.synthetic_task.problems import additions_written, careless_solution, worked_solution

    assert additions_written(worked_solution((3, 4, 5))) == 2
    assert additions_written(worked_solution((9, 8, 0, 2))) == 3
    assert additions_written(careless_solution((3, 4, 5))) == 1
    assert additions_written("<think>1+7=8 8 + 3 = 11</think>\\boxed{11}") == 2
    assert additions_written("<think>17+9=26</think>") == 1
    # The careless step written again is still one addition.
    assert additions_written("<think>3+4=7 3+4=7 3 + 4 = 7</think>\\boxed{7}") == 1
    # Not additions: a bare number, a sum without its result, junk.
    assert additions_written("\\boxed{12}") == 0
    assert additions_written("<think>3+4 then 5</think>") == 0
    assert additions_written("=" * 1000 + "+" * 1000) == 0
