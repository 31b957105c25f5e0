"""Seven-segment digits drawn with Pillow, varied by a seeded ``random.Random`` so no two renderings are alike.

Each rendering draws its own segment thickness, a shift of the whole digit and the ink and paper colours, but
the segments always sit on the same grid, far enough apart that a shift never moves one segment onto another:
the digit stays obvious to a reader that knows the seven-segment code.
"""

from __future__ import annotations

import random

from PIL import Image, ImageDraw

# Which of the seven segments each digit lights: a top, b upper right, c lower right, d bottom, e lower left,
# f upper left, g middle.
SEGMENTS = {
    0: "abcdef",
    1: "bc",
    2: "abdeg",
    3: "abcdg",
    4: "bcfg",
    5: "acdfg",
    6: "acdefg",
    7: "abc",
    8: "abcdefg",
    9: "abcdfg",
}

# The grid in units of a 28-pixel image, scaled for other sizes: centred, so that with the widest stroke (4) and
# the largest shift (2) every stroke stays at least a pixel away from the edge.
BASE_SIZE = 28
LEFT, RIGHT = 8, 19
TOP, MIDDLE, BOTTOM = 5, 13, 22
MIN_THICKNESS, MAX_THICKNESS = 2, 4
MAX_SHIFT = 2
# Qwen-VL's resizer refuses an image side shorter than its 28-pixel unit, so a smaller image could never train.
MIN_SIZE = 28

PAPER = (255, 255, 255)

# Each segment's centre line, from (x0, y0) to (x1, y1), on the 28-pixel grid.
SEGMENT_LINES = {
    "a": ((LEFT, TOP), (RIGHT, TOP)),
    "g": ((LEFT, MIDDLE), (RIGHT, MIDDLE)),
    "d": ((LEFT, BOTTOM), (RIGHT, BOTTOM)),
    "f": ((LEFT, TOP), (LEFT, MIDDLE)),
    "b": ((RIGHT, TOP), (RIGHT, MIDDLE)),
    "e": ((LEFT, MIDDLE), (LEFT, BOTTOM)),
    "c": ((RIGHT, MIDDLE), (RIGHT, BOTTOM)),
}


def _check_size(size: int) -> None:
    if not isinstance(size, int) or size < MIN_SIZE:
        raise ValueError(f"size must be an integer >= {MIN_SIZE} (Qwen-VL's smallest image side), got {size!r}")


def _paper_colour(rng: random.Random) -> tuple[int, int, int]:
    # Off-white with a faint tint: every channel stays above 220, far from the ink.
    level = rng.randint(236, 255)
    return tuple(max(221, level - rng.randint(0, 12)) for _ in range(3))


def _ink_colour(rng: random.Random) -> tuple[int, int, int]:
    # Near-black with a faint tint: every channel stays below 100.
    level = rng.randint(0, 60)
    return tuple(level + rng.randint(0, 35) for _ in range(3))


def render_digit(digit: int, rng: random.Random, size: int = BASE_SIZE) -> Image.Image:
    """An RGB ``size`` x ``size`` image of ``digit`` (0-9) in dark seven-segment strokes on light paper.

    Everything that varies is drawn from ``rng``: the stroke thickness (2-4 pixels at size 28), a shift of the
    whole digit by up to two pixels each way, and the paper and ink colours.
    """
    if isinstance(digit, bool) or not isinstance(digit, int) or digit not in SEGMENTS:
        raise ValueError(f"digit must be an integer 0-9, got {digit!r}")
    _check_size(size)
    scale = size / BASE_SIZE
    thickness = max(1, round(rng.randint(MIN_THICKNESS, MAX_THICKNESS) * scale))
    shift_x = round(rng.randint(-MAX_SHIFT, MAX_SHIFT) * scale)
    shift_y = round(rng.randint(-MAX_SHIFT, MAX_SHIFT) * scale)
    paper, ink = _paper_colour(rng), _ink_colour(rng)

    image = Image.new("RGB", (size, size), paper)
    draw = ImageDraw.Draw(image)
    # A stroke covers `thickness` pixels centred on its line; horizontal and vertical strokes overlap at the
    # corners, which closes the outline as on a real display.
    before = thickness // 2
    for segment in SEGMENTS[digit]:
        (x0, y0), (x1, y1) = SEGMENT_LINES[segment]
        left = round(x0 * scale) + shift_x - before
        top = round(y0 * scale) + shift_y - before
        right = round(x1 * scale) + shift_x - before + thickness - 1
        bottom = round(y1 * scale) + shift_y - before + thickness - 1
        draw.rectangle((left, top, right, bottom), fill=ink)
    return image


def blank_image(size: int = BASE_SIZE) -> Image.Image:
    """A plain white RGB ``size`` x ``size`` image: the paper without any digit."""
    _check_size(size)
    return Image.new("RGB", (size, size), PAPER)
