"""A few raw rows of each benchmark, laid out as its Hugging Face dataset stores them, with what each must become.

Every benchmark gets good rows of its own shapes (multiple choice, free form with units, options in a list, in the
question or in an option field, several images, a picture given as a path) and bad rows whose skip reason is
known (a missing image, an answer that names no option, a missing answer). Nothing is downloaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from helpers.raw_grammar import png_bytes

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


@dataclass
class Kept:
    """What a good row must become: its ground truth, its options, and its images' bytes in prompt order.

    ``None`` for the ground truth and options: they depend on the seed (GPQA's shuffle), checked on their own."""

    ground_truth: str | None
    choices: list[str] | None = field(default_factory=list)
    images: list[bytes] = field(default_factory=list)
    question_type: str = "free_form"
    unit: str = ""


@dataclass
class RawBenchmark:
    path: Path
    kept: dict[int, Kept]  # input index -> expected row
    skipped: dict[int, str]  # input index -> reason


def picture(number: int) -> bytes:
    """A small PNG that differs from every other number's."""
    return png_bytes(30 + number, 24, (10 * number % 256, 80, 160))


def struct(number: int) -> dict:
    return {"bytes": picture(number), "path": f"{number}.png"}


def write_parquet(path: Path, rows: list[dict], types: dict[str, pa.DataType]) -> Path:
    """Rows in a parquet file with the given column types (arrow cannot infer a column that is null in every row)."""
    schema = pa.schema([(name, types[name]) for name in types])
    pq.write_table(pa.Table.from_pylist([{k: row.get(k) for k in types} for row in rows], schema=schema), path)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def mathvista(folder: Path) -> RawBenchmark:
    (folder / "images").mkdir()
    (folder / "images" / "4.png").write_bytes(picture(4))
    query_mc = "Hint: Please answer the question and provide the correct option letter.\nQuestion: What is the ratio?"
    rows = [
        {
            "pid": "1",
            "question": "What is the ratio?",
            "image": "images/1.png",
            "decoded_image": struct(1),
            "choices": ["3/11", "8/11", "6/11"],
            "unit": None,
            "precision": None,
            "answer": "8/11",
            "question_type": "multi_choice",
            "answer_type": "text",
            "query": query_mc + "\nChoices:\n(A) 3/11\n(B) 8/11\n(C) 6/11",
        },
        {
            "pid": "2",
            "question": "How long is the bar?",
            "image": "images/2.png",
            "decoded_image": struct(2),
            "choices": None,
            "unit": "cm",
            "precision": None,
            "answer": "5",
            "question_type": "free_form",
            "answer_type": "integer",
            "query": "Hint: Please answer the question requiring an integer answer.\nQuestion: How long is the bar?",
        },
        {"pid": "3", "question": "What is shown?", "image": None, "decoded_image": None, "answer": "1"},
        {
            "pid": "4",
            "question": "How many sides?",
            "image": "images/4.png",  # no decoded bytes: the picture is read from the path, inside the data folder
            "decoded_image": None,
            "answer": "1.5",
            "question_type": "free_form",
            "answer_type": "float",
            "precision": 1.0,
            "query": "Question: How many sides?",
        },
        {
            "pid": "5",
            "question": "Which one?",
            "decoded_image": struct(5),
            "choices": ["red", "blue"],
            "answer": "green",
            "question_type": "multi_choice",
            "query": "Which one?",
        },
    ]
    types = {
        "pid": pa.string(),
        "question": pa.string(),
        "image": pa.string(),
        "decoded_image": IMAGE,
        "choices": pa.list_(pa.string()),
        "unit": pa.string(),
        "precision": pa.float64(),
        "answer": pa.string(),
        "question_type": pa.string(),
        "answer_type": pa.string(),
        "query": pa.string(),
    }
    return RawBenchmark(
        write_parquet(folder / "testmini.parquet", rows, types),
        kept={
            0: Kept("B", ["3/11", "8/11", "6/11"], [picture(1)], "multiple_choice"),
            1: Kept("5", images=[picture(2)], unit="cm"),
            3: Kept("1.5", images=[picture(4)]),
        },
        skipped={2: "missing_image", 4: "invalid_choices"},
    )


def mathvision(folder: Path) -> RawBenchmark:
    rows = [
        {"id": "1", "question": "<image1>\nWhich number is hidden?", "options": ["1", "2", "3", "4", "5"]},
        {"id": "2", "question": "<image1>What is the area?", "options": [], "answer": "\\frac{1}{2}"},
        {"id": "3", "question": "Which picture fits? <image1>", "options": ["<image2>", "<image3>"], "answer": "B"},
        {"id": "4", "question": "<image1>Pick one.", "options": ["1", "2"], "answer": "D"},
        {"id": "5", "question": "<image1>Count them.", "options": [], "answer": "7"},
    ]
    rows[0]["answer"] = "C"
    for number, row in enumerate(rows, start=1):
        row["image"] = f"images/{number}.jpg"  # only a path, whose file is not there: the picture is decoded_image
        row["decoded_image"] = struct(10 + number) if number != 5 else None
        row["subject"] = "counting"
    types = {
        "id": pa.string(),
        "question": pa.string(),
        "options": pa.list_(pa.string()),
        "image": pa.string(),
        "decoded_image": IMAGE,
        "answer": pa.string(),
        "subject": pa.string(),
    }
    return RawBenchmark(
        write_parquet(folder / "test.parquet", rows, types),
        kept={
            0: Kept("C", ["1", "2", "3", "4", "5"], [picture(11)], "multiple_choice"),
            1: Kept("\\frac{1}{2}", images=[picture(12)]),
            2: Kept("B", ["image 2", "image 3"], [picture(13)], "multiple_choice"),
        },
        # row 4's image field holds a path to a file that is not there: undecodable, not missing
        skipped={3: "invalid_choices", 4: "undecodable_image"},
    )


def mathverse(folder: Path) -> RawBenchmark:
    cot = "Please first conduct reasoning, and then answer the question and provide the correct option letter.\n"
    mc_question = "As shown in the figure, find x.\nChoices:\nA:2\nB:4\nC:6\nD:8"
    rows = [
        {
            "sample_index": "1",
            "problem_version": "Text Dominant",
            "question": mc_question,
            "image": struct(21),
            "answer": "B",
            "question_type": "multi-choice",
            "query_cot": cot + "Question: " + mc_question,
        },
        {
            "sample_index": "2",
            "problem_version": "Text Lite",
            "question": "Find the area of the triangle.",
            "image": struct(22),
            "answer": "12",
            "question_type": "free-form",
            "query_cot": "Please first conduct reasoning.\nQuestion: Find the area of the triangle.",
        },
        {
            "sample_index": "3",
            "problem_version": "Vision Only",
            "question": "According to the question shown in the image, please directly answer the question.",
            "image": struct(23),
            "answer": "A",
            "question_type": "multi-choice",
            "query_cot": cot + "According to the question shown in the image.",
        },
        {
            "sample_index": "4",
            "problem_version": "Text Only",
            "question": "A circle has radius 2. What is its area?",
            "image": None,
            "answer": "4\\pi",
            "question_type": "free-form",
            "query_cot": "Question: A circle has radius 2. What is its area?",
        },
        {
            "sample_index": "5",
            "problem_version": "Vision Dominant",
            "question": "Find y.",
            "image": {"bytes": None, "path": None},
            "answer": "3",
            "question_type": "free-form",
        },
    ]
    types = {
        "sample_index": pa.string(),
        "problem_version": pa.string(),
        "question": pa.string(),
        "image": IMAGE,
        "answer": pa.string(),
        "question_type": pa.string(),
        "query_cot": pa.string(),
    }
    return RawBenchmark(
        write_parquet(folder / "testmini.parquet", rows, types),
        kept={
            0: Kept("B", ["2", "4", "6", "8"], [picture(21)], "multiple_choice"),
            1: Kept("12", images=[picture(22)]),
            2: Kept("A", [], [picture(23)], "multiple_choice"),
            3: Kept("4\\pi"),
        },
        skipped={4: "missing_image"},
    )


def dynamath(folder: Path) -> RawBenchmark:
    """A folder of two files: parquet as upstream, and JSON Lines holding a question with two pictures by path."""
    source = folder / "dynamath"
    (source / "pictures").mkdir(parents=True)
    for number in (33, 34):
        (source / "pictures" / f"{number}.png").write_bytes(picture(number))
    rows = [
        {
            "id": "1",
            "question": "Which value is larger? Choices: (A) f(1) (B) f(2) (C) They are equal",
            "decoded_image": struct(31),
            "ground_truth": "B",
            "answer_type": "multiple choice",
            "subject": "algebra",
        },
        {
            "id": "2",
            "question": "What is the period of the function? Answer with a floating-point number.",
            "decoded_image": struct(32),
            "ground_truth": "3.14",
            "answer_type": "float",
            "subject": "algebra",
        },
    ]
    types = {
        "id": pa.string(),
        "question": pa.string(),
        "decoded_image": IMAGE,
        "ground_truth": pa.string(),
        "answer_type": pa.string(),
        "subject": pa.string(),
    }
    write_parquet(source / "part-0.parquet", rows, types)
    write_jsonl(
        source / "part-1.jsonl",
        [
            {
                "id": "3",
                "question": "How many more dots are in the second picture?",
                "image": ["pictures/33.png", {"bytes": None, "path": "pictures/34.png"}],
                "ground_truth": 2,
                "answer_type": "free form",
            },
            {"id": "4", "question": "Slope?", "image": "pictures/33.png", "answer_type": "float"},
        ],
    )
    return RawBenchmark(
        source,
        kept={
            0: Kept("B", ["f(1)", "f(2)", "They are equal"], [picture(31)], "multiple_choice"),
            1: Kept("3.14", images=[picture(32)]),
            2: Kept("2", images=[picture(33), picture(34)]),
        },
        skipped={3: "missing_answer"},
    )


def wemath(folder: Path) -> RawBenchmark:
    """JSON Lines with the pictures as paths next to it, one of which points out of the data folder."""
    source = folder / "wemath"
    (source / "images").mkdir(parents=True)
    (source / "images" / "41.png").write_bytes(picture(41))
    (folder / "outside.png").write_bytes(picture(42))
    base = {"question": "What is the angle?", "option": "A. 30°; B. 60°; C. 90°; D. No correct answer", "answer": "B"}
    rows = [
        {**base, "ID": "7", "key": "2steps_1", "knowledge concept": "Angles", "image_path": "images/41.png"},
        {**base, "ID": "8", "image_path": "../outside.png"},
        {**base, "ID": "9", "image_path": "images/gone.png"},
        {**base, "ID": "10", "image_path": None},
    ]
    return RawBenchmark(
        write_jsonl(source / "testmini.jsonl", rows),
        kept={0: Kept("B", ["30°", "60°", "90°", "No correct answer"], [picture(41)], "multiple_choice")},
        skipped={1: "image_outside_data", 2: "undecodable_image", 3: "missing_image"},
    )


def logicvista(folder: Path) -> RawBenchmark:
    rows = [
        {"id": "1", "question": "Which comes next? A. square\nB. circle\nC. star\nD. moon", "answer": "C"},
        {"id": "2", "question": "Which two boxes hold the same shapes?", "answer": "A, C"},
        {"id": "3", "question": "Pick one. A. left B. right", "answer": "Z"},
    ]
    for number, row in enumerate(rows, start=51):
        row["image"] = struct(number)
    types = {"id": pa.string(), "question": pa.string(), "answer": pa.string(), "image": IMAGE}
    return RawBenchmark(
        write_parquet(folder / "test.parquet", rows, types),
        kept={
            0: Kept("C", ["square", "circle", "star", "moon"], [picture(51)], "multiple_choice"),
            1: Kept("A, C", [], [picture(52)], "multiple_choice"),
        },
        skipped={2: "invalid_choices"},
    )


def math500(folder: Path) -> RawBenchmark:
    rows = [
        {"problem": "Solve $x^2 = 2021^2$.", "answer": "\\pm 2021", "subject": "Algebra", "unique_id": "test/1.json"},
        {"problem": "What is $1 + 1$?", "answer": "", "unique_id": "test/2.json"},
        {"answer": "3", "unique_id": "test/3.json"},
        {"problem": "Simplify $\\frac{4}{6}$.", "answer": "\\frac{2}{3}", "unique_id": "test/4.json"},
    ]
    return RawBenchmark(
        write_jsonl(folder / "test.jsonl", rows),
        kept={0: Kept("\\pm 2021"), 3: Kept("\\frac{2}{3}")},
        skipped={1: "missing_answer", 2: "missing_problem"},
    )


def aime24(folder: Path) -> RawBenchmark:
    rows = [
        {"id": 60, "problem": "Find the number of ways.", "answer": "204", "url": "u", "year": "2024"},
        {"id": 61, "problem": "Find the remainder.", "answer": "023", "url": "u", "year": "2024"},
    ]
    types = {"id": pa.int64(), "problem": pa.string(), "answer": pa.string(), "url": pa.string(), "year": pa.string()}
    return RawBenchmark(
        write_parquet(folder / "train.parquet", rows, types), kept={0: Kept("204"), 1: Kept("023")}, skipped={}
    )


def aime25(folder: Path) -> RawBenchmark:
    """opencompass/AIME2025's keys (``question``), with an integer answer, as JSON Lines."""
    rows = [{"question": "Find the sum of all bases.", "answer": 70}, {"question": "Find n.", "answer": None}]
    return RawBenchmark(
        write_jsonl(folder / "aime2025.jsonl", rows), kept={0: Kept("70")}, skipped={1: "missing_answer"}
    )


GPQA_ROW = {
    "Question": "Which particle mediates the electromagnetic force?",
    "Correct Answer": "The photon",
    "Incorrect Answer 1": "The gluon",
    "Incorrect Answer 2": "The W boson",
    "Incorrect Answer 3": "The graviton",
    "Subdomain": "Particle physics",
    "Record ID": "rec1",
}


def gpqa(folder: Path) -> RawBenchmark:
    second = {**GPQA_ROW, "Question": "Which particle carries the strong force?", "Correct Answer": "The gluon"}
    second["Incorrect Answer 1"] = "The photon"
    broken = {**GPQA_ROW, "Question": "Incomplete?", "Incorrect Answer 3": None}
    types = {key: pa.string() for key in GPQA_ROW}
    return RawBenchmark(
        write_parquet(folder / "gpqa_diamond.parquet", [GPQA_ROW, second, broken], types),
        kept={
            0: Kept(None, None, question_type="multiple_choice"),
            1: Kept(None, None, question_type="multiple_choice"),
        },
        skipped={2: "invalid_choices"},
    )


BUILDERS = {
    "mathverse": mathverse,
    "mathvision": mathvision,
    "mathvista": mathvista,
    "dynamath": dynamath,
    "wemath": wemath,
    "logicvista": logicvista,
    "aime24": aime24,
    "aime25": aime25,
    "math500": math500,
    "gpqa": gpqa,
}
