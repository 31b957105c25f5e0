"""Write the synthetic task in the raw GRAMMAR layouts that ``revisual-data prepare`` reads.

    python -m revisual_verl.synthetic_task.generate --output data/synthetic_raw [--seed 0]

Every file has its own random stream, derived from the seed and the file's name, so a file depends only on the
seed, its own count and the task's settings; the held-out files draw from streams no training file uses, and
hold only problems the split keeps out of training.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from revisual_verl.data.rl_rows import REVISUAL_INSTRUCTION, build_user_text
from revisual_verl.synthetic_task.digits import BASE_SIZE, blank_image, render_digit
from revisual_verl.synthetic_task.problems import (
    DEFAULT_HELD_OUT_FRACTION,
    DEFAULT_IMAGE_OPERANDS,
    DEFAULT_SPLIT_SALT,
    DEFAULT_TEXT_OPERANDS,
    DIGITS,
    IMAGE,
    TEXT,
    KeySplit,
    Problem,
    careless_solution,
    cycle_keys,
    draw_keys,
    held_out_bucket,
    key_length,
    split_keys,
)
from revisual_verl.synthetic_task.provenance import STAMP_FILE, StaleOutput, make_stamp, reusable, write_stamp

DEFAULT_COLDSTART_FRACTION = 0.5
IMAGE_DATASET = "synthetic_digits"
TEXT_DATASET = "synthetic_sums"

# The layouts of the upstream parquet, with the `datasets` feature metadata it carries, so that
# `datasets.load_dataset("parquet", ...)` decodes the images as it does for GRAMMAR's own mmrl files.
RAW_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
_STRING_FEATURE = {"dtype": "string", "_type": "Value"}
_MMRL_FEATURES = {
    "problem": _STRING_FEATURE,
    "answer": _STRING_FEATURE,
    "images": {"feature": {"_type": "Image"}, "_type": "List"},
    "dataset": _STRING_FEATURE,
}
_TEXTRL_FEATURES = {"problem": _STRING_FEATURE, "answer": _STRING_FEATURE, "dataset": _STRING_FEATURE}


def _hf_metadata(features: dict) -> dict[bytes, bytes]:
    return {b"huggingface": json.dumps({"info": {"features": features}}).encode("utf-8")}


MMRL_SCHEMA = pa.schema(
    [("problem", pa.string()), ("answer", pa.string()), ("images", pa.list_(RAW_IMAGE)), ("dataset", pa.string())],
    metadata=_hf_metadata(_MMRL_FEATURES),
)
TEXTRL_SCHEMA = pa.schema(
    [("problem", pa.string()), ("answer", pa.string()), ("dataset", pa.string())],
    metadata=_hf_metadata(_TEXTRL_FEATURES),
)

# File name -> (revisual-data part, kind of problem, which keys, what it is).
FILES = {
    "coldstart.json": ("coldstart", TEXT, "train", "cold-start traces (alpaca rows)"),
    "mmrl.parquet": ("mmrl", IMAGE, "train", "image problems"),
    "textrl.parquet": ("textrl", TEXT, "train", "text problems"),
    "heldout_image.parquet": ("mmrl", IMAGE, "held_out", "held-out image problems"),
    "heldout_image_blank.parquet": ("mmrl", IMAGE, "held_out", "held-out image problems, blank images (control)"),
    "heldout_text.parquet": ("textrl", TEXT, "held_out", "held-out text problems"),
}
TASK_FILE = "task.json"


@dataclass(frozen=True)
class TaskSettings:
    """Everything a generated task depends on; equal settings give byte-identical files."""

    seed: int = 0
    coldstart: int = 2000
    image_train: int = 2000
    text_train: int = 2000
    heldout: int = 200
    image_operands: int = DEFAULT_IMAGE_OPERANDS
    text_operands: int = DEFAULT_TEXT_OPERANDS
    heldout_fraction: float = DEFAULT_HELD_OUT_FRACTION
    # The share of the training text problems the cold start asks; the text RL part asks only the others, as
    # GRAMMAR's parts hold different problems. (Measured with one pool for both: the cold start had memorised
    # the RL problems, text RL found nothing to learn, and held-out text accuracy fell.)
    coldstart_fraction: float = DEFAULT_COLDSTART_FRACTION
    # The share of cold-start traces that keep only the first addition and box its sum (problems.careless_solution;
    # for three digits, one addition early), drawn per row. The cold start then teaches a careless habit beside the
    # careful one, and RL with the verifier has a habit to unlearn that no single problem owns (measured on the tiny
    # model: RL sharpening the careful traces alone moved held-out accuracy by a few points in 30 steps; dropping a
    # taught slip is what it does in 20).
    careless_fraction: float = 0.0
    split_salt: str = DEFAULT_SPLIT_SALT
    image_size: int = BASE_SIZE
    # The instruction after each cold-start question: give revisual-data the same --instruction, and the cold start
    # is trained on exactly the prompts the RL stages show.
    instruction: str = REVISUAL_INSTRUCTION

    def __post_init__(self):
        for name in ("coldstart", "image_train", "text_train", "heldout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        key_length(IMAGE, self.image_operands)
        key_length(TEXT, self.text_operands)
        for name in ("heldout_fraction", "coldstart_fraction"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be strictly between 0 and 1, got {value!r}")
        if not 0.0 <= self.careless_fraction < 1.0:
            raise ValueError(f"careless_fraction must be in [0, 1), got {self.careless_fraction!r}")
        if self.careless_fraction and self.text_operands < 3:
            raise ValueError("careless cold-start traces leave out a step: they need --text-operands 3 or more")


def stream(seed: int, name: str) -> random.Random:
    """The random stream of one file. String seeds go through sha512 in ``random``, so they are the same in every
    process and Python version, and distinct names give unrelated streams."""
    return random.Random(f"revisual-synthetic-task|seed={seed}|{name}")


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def coldstart_row(problem: Problem, instruction: str, careless: bool = False) -> dict:
    """An alpaca row, as LLaMA-Factory reads the GRAMMAR cold-start file. The question is built as revisual-data
    builds an RL prompt from a problem and its ``--instruction``, so the cold start teaches the answer format on
    the very prompts the RL stages show."""
    output = careless_solution(problem.key) if careless else problem.solution
    return {"instruction": build_user_text(problem.text, instruction), "input": "", "output": output}


def mmrl_row(problem: Problem, image_png: bytes) -> dict:
    return {
        "problem": problem.text,
        "answer": problem.answer,
        "images": [{"bytes": image_png, "path": None}],
        "dataset": IMAGE_DATASET,
    }


def textrl_row(problem: Problem) -> dict:
    return {"problem": problem.text, "answer": problem.answer, "dataset": TEXT_DATASET}


def image_rows(keys: list[tuple[int, ...]], rng: random.Random, size: int) -> list[dict]:
    rows = []
    for key in keys:
        problem = Problem(IMAGE, key)
        # Each row renders with a generator of its own, so rows of the same problem get different pictures.
        row_rng = random.Random(rng.getrandbits(64))
        rows.append(mmrl_row(problem, png_bytes(render_digit(problem.digit, row_rng, size))))
    return rows


def best_text_only_accuracy(keys: list[tuple[int, ...]]) -> Fraction | None:
    """The accuracy of the best guess from the text alone, for someone who knows how often each held-out problem
    is asked: per text, the most frequent pictured digit. An upper bound for any reader of the blank control."""
    if not keys:
        return None
    by_text: dict[tuple[int, ...], Counter] = defaultdict(Counter)
    for key in keys:
        by_text[key[1:]][key[0]] += 1
    return Fraction(sum(max(digits.values()) for digits in by_text.values()), len(keys))


def split_training_keys(
    keys: tuple[tuple[int, ...], ...], coldstart_fraction: float, salt: str
) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    """(cold-start keys, text-RL keys): the training text keys split by a salted hash, like the held-out split."""
    coldstart, textrl = [], []
    for key in keys:
        (coldstart if held_out_bucket(TEXT, key, f"{salt}|coldstart") < coldstart_fraction else textrl).append(key)
    if not coldstart or not textrl:
        raise ValueError(f"the cold-start fraction {coldstart_fraction} leaves the cold start or text RL no problem")
    return coldstart, textrl


def careless_rows(settings: TaskSettings) -> list[bool]:
    """Which cold-start rows get a careless trace: a stream of its own, so the keys drawn never depend on it."""
    draw = stream(settings.seed, "coldstart_careless")
    return [draw.random() < settings.careless_fraction for _ in range(settings.coldstart)]


def build_rows(
    settings: TaskSettings,
) -> tuple[dict[str, list[dict]], dict[str, KeySplit], list[tuple[int, ...]], int]:
    """The rows of every file, the two key splits, the held-out image keys in row order, and how many cold-start
    traces are careless."""
    image_split = split_keys(IMAGE, settings.image_operands, settings.heldout_fraction, settings.split_salt)
    text_split = split_keys(TEXT, settings.text_operands, settings.heldout_fraction, settings.split_salt)

    def rng(name: str) -> random.Random:
        return stream(settings.seed, name)

    coldstart_pool, textrl_pool = split_training_keys(
        text_split.train, settings.coldstart_fraction, settings.split_salt
    )
    coldstart_keys = draw_keys(rng("coldstart"), coldstart_pool, settings.coldstart)
    careless = careless_rows(settings)
    mmrl_rng = rng("mmrl")
    mmrl_keys = draw_keys(mmrl_rng, image_split.train, settings.image_train)
    textrl_keys = draw_keys(rng("textrl"), textrl_pool, settings.text_train)
    heldout_image_rng = rng("heldout_image")
    heldout_image_keys = cycle_keys(heldout_image_rng, image_split.held_out, settings.heldout)
    heldout_text_keys = cycle_keys(rng("heldout_text"), text_split.held_out, settings.heldout)

    heldout_image = image_rows(heldout_image_keys, heldout_image_rng, settings.image_size)
    blank_png = png_bytes(blank_image(settings.image_size))
    rows = {
        "coldstart.json": [
            coldstart_row(Problem(TEXT, key), settings.instruction, slip)
            for key, slip in zip(coldstart_keys, careless, strict=True)
        ],
        "mmrl.parquet": image_rows(mmrl_keys, mmrl_rng, settings.image_size),
        "textrl.parquet": [textrl_row(Problem(TEXT, key)) for key in textrl_keys],
        "heldout_image.parquet": heldout_image,
        # The same problems in the same order, only the picture gone: a model that reads the digit scores near
        # chance here, one that guesses from the text scores the same on both files.
        "heldout_image_blank.parquet": [
            {**row, "images": [{"bytes": blank_png, "path": None}]} for row in heldout_image
        ],
        "heldout_text.parquet": [textrl_row(Problem(TEXT, key)) for key in heldout_text_keys],
    }
    return rows, {IMAGE: image_split, TEXT: text_split}, heldout_image_keys, sum(careless)


def task_description(
    settings: TaskSettings,
    rows: dict[str, list[dict]],
    splits: dict[str, KeySplit],
    heldout_image_keys,
    careless_count: int = 0,
) -> dict:
    best = best_text_only_accuracy(heldout_image_keys)
    return {
        "task": "synthetic digit sums (revisual_verl.synthetic_task)",
        "settings": asdict(settings),
        "problems": {
            IMAGE: {
                "example": Problem(IMAGE, (7,) + (4,) * settings.image_operands).text,
                "key": "(pictured digit, digits in the text...)",
            },
            TEXT: {"example": Problem(TEXT, tuple(range(3, 3 + settings.text_operands))).text, "key": "the digits"},
            "digits": [DIGITS[0], DIGITS[-1]],
            "answer": "the sum, as text",
            "worked_solution": Problem(TEXT, (3, 4, 5)).solution,
            "careless_solution": careless_solution((3, 4, 5)),
        },
        "careless_coldstart_rows": careless_count,
        "keys": {
            kind: {
                "total": len(split.train) + len(split.held_out),
                "train": len(split.train),
                "held_out": len(split.held_out),
                **(
                    dict(
                        zip(
                            ("coldstart", "textrl"),
                            map(
                                len, split_training_keys(split.train, settings.coldstart_fraction, settings.split_salt)
                            ),
                        )
                    )
                    if kind == TEXT
                    else {}
                ),
            }
            for kind, split in splits.items()
        },
        "files": {
            name: {"part": part, "kind": kind, "keys": which, "rows": len(rows[name]), "dataset": _dataset_of(kind)}
            for name, (part, kind, which, _) in FILES.items()
        },
        "blank_control": {
            "file": "heldout_image_blank.parquet",
            # Without the picture the pictured digit is one of ten, so a guess of the sum is right one time in ten.
            "chance_accuracy": 1 / len(DIGITS),
            "best_text_only_accuracy": None if best is None else float(best),
            "best_text_only_fraction": None if best is None else f"{best.numerator}/{best.denominator}",
            "note": "chance_accuracy: guessing the pictured digit, uniform over 0-9. best_text_only_accuracy: the "
            "most one can score from the text alone knowing which held-out problems the file asks and how often "
            "(a model trained only on training problems cannot know this); a model that reads the picture scores "
            "well on heldout_image.parquet and no better than these on the blank control.",
        },
    }


def _dataset_of(kind: str) -> str:
    return IMAGE_DATASET if kind == IMAGE else TEXT_DATASET


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def write_parquet(path: Path, rows: list[dict], schema: pa.Schema) -> None:
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


# The sources every generated file depends on: a task made by other versions of them is another task.
TASK_SOURCES = (
    "revisual_verl.synthetic_task.generate",
    "revisual_verl.synthetic_task.problems",
    "revisual_verl.synthetic_task.digits",
    "revisual_verl.data.rl_rows",
)


def task_stamp(settings: TaskSettings) -> dict:
    return make_stamp(asdict(settings), TASK_SOURCES)


def generate(settings: TaskSettings, output: Path) -> dict:
    """Write every file under ``output``; returns the content of task.json.

    A new ``output`` is written beside (``<output>.partial``) and renamed when whole; an existing one is written
    over in place, its stamp removed first: either way a folder with a stamp holds one whole task.
    """
    rows, splits, heldout_image_keys, careless_count = build_rows(settings)
    fresh = not output.exists()
    target = output.with_name(output.name + ".partial") if fresh else output
    target.mkdir(parents=True, exist_ok=True)
    (target / STAMP_FILE).unlink(missing_ok=True)
    for name, (part, _, _, _) in FILES.items():
        if part == "coldstart":
            write_json(target / name, rows[name])
        else:
            write_parquet(target / name, rows[name], MMRL_SCHEMA if part == "mmrl" else TEXTRL_SCHEMA)
    task = task_description(settings, rows, splits, heldout_image_keys, careless_count)
    write_json(target / TASK_FILE, task)
    write_stamp(target, task_stamp(settings))
    if fresh:
        target.replace(output)
    return task


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number strictly between 0 and 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    defaults = TaskSettings()
    parser = argparse.ArgumentParser(
        prog="python -m revisual_verl.synthetic_task.generate",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Generate a small seeded task in the raw GRAMMAR layouts: sums of digits 0-9, where image problems\n"
            "('Add <image> and 4.') show one digit as a seven-segment picture and text problems ('Add 3, 4 and\n"
            "5.') give every digit. A stable hash holds out a fraction of the problems: training files never ask\n"
            "them, the held-out files ask only them. Writes, under OUTPUT:\n"
            + "".join(f"  {name:<28} {part:<9} {what}\n" for name, (part, _, _, what) in FILES.items())
            + f"  {TASK_FILE:<28} {'':<9} the settings, key counts and the blank control's chance accuracy\n"
            + f"  {STAMP_FILE:<28} {'':<9} the settings and the digests of the sources that made the task (--reuse)"
        ),
        epilog=(
            "then convert them, e.g.:\n"
            "  revisual-data prepare coldstart -i OUTPUT/coldstart.json -o data/coldstart\n"
            "  revisual-data prepare mmrl -i OUTPUT/mmrl.parquet -o data/mmrl\n"
            "  revisual-data prepare textrl -i OUTPUT/textrl.parquet -o data/textrl\n"
            "  revisual-data prepare mmrl -i OUTPUT/heldout_image.parquet -o data/heldout_image --val-size 0 \\\n"
            "      --data-source synthetic_heldout_image      # every row in data/heldout_image/train.parquet"
        ),
    )
    parser.add_argument("--output", "-o", required=True, type=Path, metavar="DIR", help="folder to write into")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of every file (default %(default)s)")
    counts = (
        ("--coldstart", "cold-start traces"),
        ("--image-train", "training image problems"),
        ("--text-train", "training text problems"),
        ("--heldout", "rows of each held-out file"),
    )
    for flag, what in counts:
        default = getattr(defaults, flag[2:].replace("-", "_"))
        parser.add_argument(flag, type=_non_negative, default=default, metavar="N", help=f"{what} (default {default})")
    parser.add_argument(
        "--image-operands",
        type=int,
        default=defaults.image_operands,
        metavar="N",
        help="digits in the text of an image problem, besides the pictured one (1-4, default %(default)s)",
    )
    parser.add_argument(
        "--text-operands",
        type=int,
        default=defaults.text_operands,
        metavar="N",
        help="digits of a text problem (2-5, default %(default)s)",
    )
    parser.add_argument(
        "--heldout-fraction",
        type=_fraction,
        default=defaults.heldout_fraction,
        metavar="F",
        help="share of the problems held out of training (default %(default)s)",
    )
    parser.add_argument(
        "--coldstart-fraction",
        type=_fraction,
        default=defaults.coldstart_fraction,
        metavar="F",
        help="share of the training text problems the cold start asks; text RL asks the others (default %(default)s)",
    )
    parser.add_argument(
        "--careless-fraction",
        type=float,
        default=defaults.careless_fraction,
        metavar="F",
        help="share of cold-start traces that keep only the first addition and box its sum, a habit for RL to "
        "unlearn (0 <= F < 1, default %(default)s)",
    )
    parser.add_argument(
        "--split-salt",
        default=defaults.split_salt,
        metavar="TEXT",
        help="salt of the held-out hash; the split depends on it, never on the seed (default %(default)s)",
    )
    parser.add_argument(
        "--image-size", type=int, default=defaults.image_size, metavar="PX", help="image side (default %(default)s)"
    )
    parser.add_argument(
        "--instruction",
        default=defaults.instruction,
        metavar="TEXT",
        help="text after each cold-start question, as `revisual-data prepare --instruction` adds it to RL prompts "
        "(pass both the same TEXT; '{problem}' in TEXT places the problem instead; '' for none). Default: "
        "ReVisual-R1's instruction, revisual-data's default",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep OUTPUT when it holds a task made with these settings by this tree (its made_with.json), and "
        "refuse, naming what differs, one made otherwise; without it OUTPUT is written over",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    options = {key: value for key, value in vars(args).items() if key not in ("output", "reuse")}
    try:
        settings = TaskSettings(**options)
        if args.reuse and reusable(args.output, task_stamp(settings), "a task", (TASK_FILE, *FILES)):
            print(f"{args.output}: made with these settings by this tree; reused")
            return 0
        task = generate(settings, args.output)
    except StaleOutput as error:
        print(f"generate: error: {error}", file=sys.stderr)
        return 2
    except ValueError as error:
        parser.error(str(error))
    except OSError as error:
        print(f"generate: error: {error}", file=sys.stderr)
        return 1
    for name, (_, _, _, what) in FILES.items():
        path = args.output / name
        print(f"{path}: {task['files'][name]['rows']} {what}, {path.stat().st_size} bytes")
    control = task["blank_control"]
    print(
        f"{args.output / TASK_FILE}: image keys {task['keys'][IMAGE]['train']} train / "
        f"{task['keys'][IMAGE]['held_out']} held out, text keys {task['keys'][TEXT]['train']} / "
        f"{task['keys'][TEXT]['held_out']}, blank control chance {control['chance_accuracy']:.2f} "
        f"(text-only bound {control['best_text_only_accuracy']})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
