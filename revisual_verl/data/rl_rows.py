"""mmrl and textrl rows to verl's RL parquet layout, with the checks that keep a bad row out of training.

A raw row holds ``problem`` (text with one ``<image>`` placeholder per image), ``answer``, optional ``images``
(``{"bytes", "path"}`` structs) and ``dataset`` (a source tag, often empty). The verl row holds the chat
``prompt`` with the ReVisual instruction, the images as bytes, ``reward_model.ground_truth`` and ``extra_info``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from revisual_verl.data.images import ImageOutsideRoots, ImageProblem, check_image_bytes, read_image_file
from revisual_verl.data.rejections import (
    IMAGE_OUTSIDE_DATA,
    IMAGE_PLACEHOLDER_MISMATCH,
    INVALID_ANSWER,
    MISSING_ANSWER,
    MISSING_PROBLEM,
    NOT_AN_OBJECT,
    UNDECODABLE_IMAGE,
    RowRejected,
    decimal_digits,
    quote,
)
from revisual_verl.data.schemas import IMAGE_PLACEHOLDER

# The instruction ReVisual-R1 trains and evaluates with (EasyR1's math prompt).
REVISUAL_INSTRUCTION = (
    "You FIRST think about the reasoning process as an internal monologue and then provide the final answer. "
    "The reasoning process MUST BE enclosed within <think> </think> tags. The final answer MUST BE put in \\boxed{}."
)
PROBLEM_SLOT = "{problem}"
# An integer answer longer than this is no answer a model can be graded on; it is also where Python stops
# converting integers to text (4300 digits by default), so a cap well below that keeps the conversion safe.
MAX_ANSWER_DIGITS = 1000


@dataclass(frozen=True)
class RLFields:
    """Where the raw row keeps each field, and what the verl row says about itself."""

    problem: str = "problem"
    answer: str = "answer"
    images: str = "images"
    source: str = "dataset"
    data_source: str = "grammar"
    ability: str = "math"
    instruction: str = REVISUAL_INSTRUCTION


def build_user_text(problem: str, instruction: str) -> str:
    """The user turn: the problem, then the instruction; an instruction holding ``{problem}`` places it itself."""
    if PROBLEM_SLOT in instruction:
        return instruction.replace(PROBLEM_SLOT, problem)
    if not instruction.strip():
        return problem
    return f"{problem.strip()} {instruction.strip()}"


def ground_truth(answer: object) -> str:
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        raise RowRejected(MISSING_ANSWER, "the answer is missing or empty")
    if isinstance(answer, bool) or not isinstance(answer, str | int | float):
        raise RowRejected(INVALID_ANSWER, f"the answer is {type(answer).__name__}, expected text or a number")
    if isinstance(answer, float) and not math.isfinite(answer):
        raise RowRejected(INVALID_ANSWER, f"the answer is {answer}")
    if isinstance(answer, int) and decimal_digits(answer) > MAX_ANSWER_DIGITS:
        raise RowRejected(
            INVALID_ANSWER,
            f"the answer is an integer of about {decimal_digits(answer)} digits, over {MAX_ANSWER_DIGITS}",
        )
    return answer.strip() if isinstance(answer, str) else str(answer)


def image_bytes(
    image: object, position: int, base_dir: Path, image_roots: tuple[Path, ...] = ()
) -> tuple[bytes, str | None]:
    """The encoded bytes of one stored image, read from its path when the row holds none.

    A path is read only if it resolves (symlinks included) inside ``base_dir``, the input's folder, or inside one
    of ``image_roots``; any other path is refused without opening it.
    """
    if isinstance(image, bytes | bytearray):
        return bytes(image), None
    if isinstance(image, str):
        image = {"bytes": None, "path": image}
    if not isinstance(image, dict):
        raise RowRejected(UNDECODABLE_IMAGE, f"image {position} is {type(image).__name__}, expected {{bytes, path}}")
    data, path = image.get("bytes"), image.get("path")
    # Checked before use: bytes(int) would allocate that many zero bytes, and a non-text path fails only when the
    # parquet is written, far from the row.
    if data is not None and not isinstance(data, bytes | bytearray):
        raise RowRejected(UNDECODABLE_IMAGE, f"image {position} bytes are {quote(data)}, expected binary data")
    if path is not None and not isinstance(path, str):
        raise RowRejected(UNDECODABLE_IMAGE, f"image {position} path is {quote(path)}, expected text")
    if data:
        return bytes(data), path
    if not path:
        raise RowRejected(UNDECODABLE_IMAGE, f"image {position} has neither bytes nor a path")
    try:
        return read_image_file(path, base_dir, (base_dir, *image_roots)), path
    except ImageOutsideRoots as problem:
        raise RowRejected(IMAGE_OUTSIDE_DATA, f"image {position} path {quote(path)}: {problem}") from None
    except ImageProblem as problem:
        raise RowRejected(
            UNDECODABLE_IMAGE, f"image {position} has no bytes and path {quote(path)}: {problem}"
        ) from None


def check_image(data: bytes, position: int) -> None:
    """Decode the whole image, as the rollout will, so a truncated, corrupt or oversized image is caught here."""
    try:
        check_image_bytes(data)
    except ImageProblem as problem:
        raise RowRejected(UNDECODABLE_IMAGE, f"image {position}: {problem}") from None


def to_rl_row(
    raw: object, index: int, fields: RLFields, base_dir: Path, with_images: bool, image_roots: tuple[Path, ...] = ()
) -> dict:
    """One verl RL row; raises :class:`RowRejected` for a row that must not be trained on.

    ``base_dir`` is the input's folder, from which image paths are read; ``image_roots`` are other folders a path
    may resolve into.
    """
    if not isinstance(raw, dict):
        raise RowRejected(NOT_AN_OBJECT, f"row is {type(raw).__name__}, expected an object")
    problem = raw.get(fields.problem)
    if not isinstance(problem, str) or not problem.strip():
        raise RowRejected(MISSING_PROBLEM, f"{fields.problem!r} is missing, empty or not text")
    answer = ground_truth(raw.get(fields.answer))

    stored = raw.get(fields.images) if with_images else None
    stored = [] if stored is None else stored
    if not isinstance(stored, list):
        raise RowRejected(UNDECODABLE_IMAGE, f"{fields.images!r} is {type(stored).__name__}, expected a list")
    user_text = build_user_text(problem, fields.instruction)
    # Counted in the final text, since verl pairs every placeholder of the prompt with an image.
    placeholders = user_text.count(IMAGE_PLACEHOLDER)
    if placeholders != len(stored):
        raise RowRejected(
            IMAGE_PLACEHOLDER_MISMATCH, f"{placeholders} {IMAGE_PLACEHOLDER} placeholders for {len(stored)} images"
        )
    images = []
    for position, image in enumerate(stored):
        data, path = image_bytes(image, position, base_dir, image_roots)
        check_image(data, position)
        images.append({"bytes": data, "path": path})

    tag = raw.get(fields.source)
    source = tag.strip() if isinstance(tag, str) and tag.strip() else "unknown"
    return {
        "data_source": fields.data_source,
        "prompt": [{"role": "user", "content": user_text}],
        "images": images,
        "ability": fields.ability,
        "reward_model": {"style": "rule", "ground_truth": answer},
        "extra_info": {"split": "", "index": index, "source": source, "problem": problem, "answer": answer},
    }
