"""Regenerate the bundled synthetic GRAMMAR sample in the upstream layouts (SPEC section 5).

    python examples/data/make_samples.py [--out examples/data/raw]

Writes ``coldstart.json`` (a JSON array mixing alpaca, sharegpt and OpenAI-messages rows, as LLaMA-Factory
reads them), ``mmrl.parquet`` (problem with ``<image>`` placeholders, answer, images as ``datasets`` Image
structs, dataset tag) and ``textrl.parquet`` (the same without images). Everything is drawn from a fixed seed,
and the images are drawn here with Pillow, so nothing is downloaded and the output is the same on every run.
"""

from __future__ import annotations

import argparse
import io
import json
import random
from pathlib import Path

SEED = 20250601
MMRL_ROWS = 16
TEXTRL_ROWS = 16
COLDSTART_ROWS_PER_LAYOUT = 4
SOURCE_TAGS = ["iconqa", "geometry3k", "geoqa", "olympiadbench", ""]
TEXT_SOURCE_TAGS = ["math", "aime", "numina", ""]


def _png(draw_fn, size=(96, 64)) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, "white")
    draw_fn(ImageDraw.Draw(image), size)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def rectangle_image(width: int, height: int) -> bytes:
    def draw(canvas, size):
        canvas.rectangle([10, 10, size[0] - 10, size[1] - 14], outline="black", width=2)
        canvas.text((size[0] // 2 - 4, size[1] - 13), str(width), fill="blue")
        canvas.text((1, size[1] // 2 - 6), str(height), fill="blue")

    return _png(draw)


def dots_image(count: int, rng: random.Random) -> bytes:
    def draw(canvas, size):
        for _ in range(count):
            x, y = rng.randrange(6, size[0] - 6), rng.randrange(6, size[1] - 6)
            canvas.ellipse([x - 4, y - 4, x + 4, y + 4], fill="red")

    return _png(draw)


def mmrl_rows(rng: random.Random) -> list[dict]:
    rows = []
    for index in range(MMRL_ROWS):
        tag = SOURCE_TAGS[index % len(SOURCE_TAGS)]
        if index % 4 == 3:
            first, second = rng.randrange(2, 7), rng.randrange(2, 7)
            rows.append(
                {
                    "problem": "<image>\n<image>\nHow many red dots are there in the two pictures together?",
                    "answer": str(first + second),
                    "images": [
                        {"bytes": dots_image(first, rng), "path": None},
                        {"bytes": dots_image(second, rng), "path": None},
                    ],
                    "dataset": tag,
                }
            )
        elif index % 2:
            count = rng.randrange(1, 9)
            rows.append(
                {
                    "problem": "<image>\nHow many red dots are in the picture?",
                    "answer": str(count),
                    "images": [{"bytes": dots_image(count, rng), "path": None}],
                    "dataset": tag,
                }
            )
        else:
            width, height = rng.randrange(2, 10), rng.randrange(2, 10)
            rows.append(
                {
                    "problem": "<image>\nThe rectangle's sides are labelled. What is its area?",
                    "answer": str(width * height),
                    "images": [{"bytes": rectangle_image(width, height), "path": f"rect_{index}.png"}],
                    "dataset": tag,
                }
            )
    return rows


def textrl_rows(rng: random.Random) -> list[dict]:
    rows = []
    for index in range(TEXTRL_ROWS):
        a, b = rng.randrange(2, 50), rng.randrange(2, 50)
        if index % 2:
            problem, answer = f"Compute ${a} \\times {b}$.", str(a * b)
        else:
            problem, answer = f"Simplify the fraction $\\frac{{{a}}}{{{a * b}}}$.", f"\\frac{{1}}{{{b}}}"
        rows.append({"problem": problem, "answer": answer, "dataset": TEXT_SOURCE_TAGS[index % len(TEXT_SOURCE_TAGS)]})
    return rows


def _trace(a: int, b: int) -> str:
    return (
        f"<think>\nWe need {a} + {b}. Adding the units gives {a + b}. Let me double-check: {a + b} - {b} = {a}. "
        f"Yes.\n</think>\nThe sum is $\\boxed{{{a + b}}}$."
    )


def coldstart_rows(rng: random.Random) -> list[dict]:
    rows = []
    for _ in range(COLDSTART_ROWS_PER_LAYOUT):
        a, b = rng.randrange(10, 99), rng.randrange(10, 99)
        rows.append({"instruction": f"What is {a} + {b}?", "input": "", "output": _trace(a, b)})
        a, b = rng.randrange(10, 99), rng.randrange(10, 99)
        rows.append(
            {
                "conversations": [
                    {"from": "human", "value": f"Add {a} and {b}."},
                    {"from": "gpt", "value": _trace(a, b)},
                ],
                "system": "You are a careful math tutor.",
            }
        )
        a, b = rng.randrange(10, 99), rng.randrange(10, 99)
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": f"Find the sum of {a} and {b}."},
                    {"role": "assistant", "content": _trace(a, b)},
                ]
            }
        )
    return rows


def write_samples(out: Path) -> dict[str, Path]:
    """Write the three raw parts under ``out``; returns their paths."""
    import datasets

    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    paths = {"coldstart": out / "coldstart.json", "mmrl": out / "mmrl.parquet", "textrl": out / "textrl.parquet"}

    # Written through `datasets` with an Image feature, as the Hugging Face upstream stores its images.
    mmrl_features = datasets.Features(
        {
            "problem": datasets.Value("string"),
            "answer": datasets.Value("string"),
            "images": datasets.List(datasets.Image()),
            "dataset": datasets.Value("string"),
        }
    )
    datasets.Dataset.from_list(mmrl_rows(rng), features=mmrl_features).to_parquet(str(paths["mmrl"]))
    text_features = datasets.Features(
        {"problem": datasets.Value("string"), "answer": datasets.Value("string"), "dataset": datasets.Value("string")}
    )
    datasets.Dataset.from_list(textrl_rows(rng), features=text_features).to_parquet(str(paths["textrl"]))
    paths["coldstart"].write_text(
        json.dumps(coldstart_rows(rng), indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "raw", help="output directory")
    args = parser.parse_args(argv)
    for part, path in write_samples(args.out).items():
        print(f"{part}: {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
