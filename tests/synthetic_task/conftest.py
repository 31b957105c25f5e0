"""A reader of the rendered digits that does not trust the renderer's segment table, and small shared helpers."""

import re

import pytest

from revisual_verl.synthetic_task.digits import BOTTOM, LEFT, MIDDLE, RIGHT, TOP

# The seven-segment code written out independently of the renderer: digit -> lit segments (a top, b upper right,
# c lower right, d bottom, e lower left, f upper left, g middle).
SEVEN_SEGMENT_CODE = {
    "abcdef": 0,
    "bc": 1,
    "abdeg": 2,
    "abcdg": 3,
    "bcfg": 4,
    "acdfg": 5,
    "acdefg": 6,
    "abc": 7,
    "abcdefg": 8,
    "abcdfg": 9,
}
INK_LEVEL = 128  # a pixel darker than this (mean of its channels) is ink


def ink_mask(image) -> list[list[bool]]:
    width, height = image.size
    pixels = image.convert("RGB").load()
    return [[sum(pixels[x, y]) / 3 < INK_LEVEL for x in range(width)] for y in range(height)]


def read_digit(image) -> tuple[int | None, dict]:
    """(digit, geometry) of a 28-pixel seven-segment image, from the ink alone.

    Every digit has ink on the top and bottom grid lines and on the right column, so the ink's bounding box gives
    the stroke thickness and the shift; each segment is then read at one pixel in the middle of its stroke, a pixel
    no other segment can cover. ``digit`` is None for a pattern that is no digit.
    """
    mask = ink_mask(image)
    rows = [y for y, row in enumerate(mask) if any(row)]
    columns = [x for x in range(len(mask[0])) if any(row[x] for row in mask)]
    if not rows:
        return None, {}
    thickness = (rows[-1] - rows[0]) - (BOTTOM - TOP) + 1
    before = thickness // 2
    shift_y = rows[0] - TOP + before
    shift_x = columns[-1] - RIGHT + before - thickness + 1

    def inked(x, y):
        return mask[y + shift_y][x + shift_x]

    probes = {
        "a": ((LEFT + RIGHT) // 2, TOP - before),
        "g": ((LEFT + RIGHT) // 2, MIDDLE - before),
        "d": ((LEFT + RIGHT) // 2, BOTTOM - before),
        "f": (LEFT - before, (TOP + MIDDLE) // 2),
        "b": (RIGHT - before, (TOP + MIDDLE) // 2),
        "e": (LEFT - before, (MIDDLE + BOTTOM) // 2),
        "c": (RIGHT - before, (MIDDLE + BOTTOM) // 2),
    }
    lit = "".join(sorted(segment for segment, (x, y) in probes.items() if inked(x, y)))
    return SEVEN_SEGMENT_CODE.get(lit), {"thickness": thickness, "shift": (shift_x, shift_y), "lit": lit}


def digits_in(text: str) -> tuple[int, ...]:
    """The digits a problem sentence gives, in order ('Add <image>, 4 and 5.' -> (4, 5))."""
    match = re.fullmatch(r"Add (.+)\.", text)
    assert match, text
    parts = re.split(r", | and ", match.group(1))
    return tuple(int(part) for part in parts if part != "<image>")


@pytest.fixture
def digit_reader():
    return read_digit


@pytest.fixture
def problem_digits():
    return digits_in
