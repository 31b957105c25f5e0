"""One benchmark question to verl's RL parquet layout, the layout the mmrl/textrl converters write.

A benchmark reader (:mod:`revisual_verl.data.benchmarks`) turns a raw row into an :class:`EvalItem`; this module
reads and checks its images (the converters' own checks: paths confined to the data folder, full decode) and
builds the verl row: the chat ``prompt`` with one ``<image>`` per image ahead of the question and the instruction
after it, the images as bytes, ``reward_model.ground_truth`` and ``extra_info``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from revisual_verl.data.choices import FREE_FORM
from revisual_verl.data.rejections import IMAGE_PLACEHOLDER_MISMATCH, RowRejected
from revisual_verl.data.rl_rows import build_user_text, check_image, image_bytes
from revisual_verl.data.schemas import IMAGE_PLACEHOLDER


@dataclass(frozen=True)
class EvalItem:
    """What a benchmark reader makes of one raw row.

    ``problem`` is the text the prompt shows (question and options, without images or instruction); ``question``
    the benchmark's own question field, kept in ``extra_info.problem``; ``answer`` the ground truth the reward
    compares with (the right option's letter for a multiple-choice row); ``choices`` the options' texts in letter
    order; ``images`` the raw image values (``{bytes, path}`` structs, bytes or paths), in prompt order.
    """

    problem: str
    question: str
    answer: str
    images: tuple = ()
    choices: tuple[str, ...] = ()
    question_type: str = FREE_FORM
    answer_type: str = ""
    unit: str = ""
    category: str = ""
    source_id: str = ""


def to_eval_row(
    item: EvalItem,
    index: int,
    benchmark: str,
    ability: str,
    base_dir: Path,
    instruction: str,
    image_roots: tuple[Path, ...] = (),
) -> dict:
    """The verl row of one benchmark question; raises :class:`RowRejected` for an image that cannot be used."""
    images = []
    for position, image in enumerate(item.images):
        data, path = image_bytes(image, position, base_dir, image_roots)
        check_image(data, position)
        images.append({"bytes": data, "path": path})
    user_text = build_user_text(IMAGE_PLACEHOLDER * len(images) + item.problem, instruction)
    # The readers take every placeholder out of the benchmark's text; only an instruction could bring one back.
    placeholders = user_text.count(IMAGE_PLACEHOLDER)
    if placeholders != len(images):
        raise RowRejected(
            IMAGE_PLACEHOLDER_MISMATCH, f"{placeholders} {IMAGE_PLACEHOLDER} placeholders for {len(images)} images"
        )
    return {
        "data_source": benchmark,
        "prompt": [{"role": "user", "content": user_text}],
        "images": images,
        "ability": ability,
        "reward_model": {"style": "rule", "ground_truth": item.answer},
        "extra_info": {
            "split": "",
            "index": index,
            "benchmark": benchmark,
            "id": item.source_id,
            "problem": item.question,
            "answer": item.answer,
            "question_type": item.question_type,
            "choices": list(item.choices),
            "answer_type": item.answer_type,
            "unit": item.unit,
            "category": item.category,
        },
    }
