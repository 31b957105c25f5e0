"""``revisual-data``: prepare the GRAMMAR parts for verl.

    revisual-data prepare coldstart --input text_v01_47382.json --output data/coldstart
    revisual-data prepare mmrl --input mmrl/ --output data/mmrl --val-size 256 --seed 0
    revisual-data prepare textrl --input textrl.parquet --output data/textrl --tokenizer Qwen/Qwen2.5-VL-7B-Instruct \\
        --max-prompt-tokens 2048
    revisual-data prepare eval --benchmark mathvista --input mathvista_testmini.parquet --output data/eval/mathvista
"""

from __future__ import annotations

import argparse
import sys

from revisual_verl.data.benchmarks import BENCHMARKS
from revisual_verl.data.coldstart import LAYOUTS
from revisual_verl.data.prepare import DEFAULT_VAL_SIZE, EVAL, PARTS, PrepareError, PrepareOptions, prepare
from revisual_verl.data.readers import InputFormatError
from revisual_verl.data.rejections import StrictModeError
from revisual_verl.data.rl_rows import REVISUAL_INSTRUCTION

PART_HELP = {
    "coldstart": "cold-start SFT traces (alpaca, sharegpt or messages rows) -> verl SFT parquet with `messages`",
    "mmrl": "multimodal RL rows (problem, answer, images, dataset) -> verl RL parquet",
    "textrl": "text RL rows (problem, answer, dataset) -> verl RL parquet",
    EVAL: "one benchmark's rows (--benchmark) -> verl RL parquet to validate on, all of them in train.parquet",
}


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="revisual-data",
        description="Convert local copies of the GRAMMAR data (ReVisual-R1) into parquet that verl's trainers read.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    prepare_parser = commands.add_parser(
        "prepare",
        help="convert one part",
        description=(
            "Convert one GRAMMAR part. Writes OUTPUT/train.parquet (or train-00000.parquet, ... with --shard-rows), "
            "OUTPUT/val.parquet and OUTPUT/report.json, which lists every skipped row with its reason. A run that "
            "fails or keeps no row exits 1 and leaves OUTPUT as it was; only files a previous run listed in "
            "report.json are ever replaced or removed. 'eval --benchmark NAME' converts a benchmark instead, whole "
            "(no validation split), into OUTPUT/train.parquet, the file to give verl as validation data (data_source "
            "NAME; a multiple-choice row's ground truth is the right option's letter, its options in "
            "extra_info.choices, and the reward accepts the letter or the option's text)."
        ),
        epilog="parts: "
        + "; ".join(f"{part}: {text}" for part, text in PART_HELP.items())
        + ". benchmarks (--input: a parquet or JSON Lines file of these rows, or a folder written by "
        "load_dataset(...).save_to_disk(DIR); nothing is downloaded here; docs/eval.md): "
        + "; ".join(f"{name}: {benchmark.source()}" for name, benchmark in BENCHMARKS.items()),
    )
    prepare_parser.add_argument("part", choices=PARTS, help="which part the input holds")
    prepare_parser.add_argument(
        "--input",
        "-i",
        nargs="+",
        required=True,
        metavar="PATH",
        help="parquet, JSON array, JSONL, a directory of such files, or a `datasets` directory from save_to_disk",
    )
    prepare_parser.add_argument("--output", "-o", required=True, metavar="DIR", help="output directory")
    prepare_parser.add_argument(
        "--benchmark", choices=tuple(BENCHMARKS), metavar="NAME", help="eval: " + ", ".join(BENCHMARKS)
    )
    prepare_parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the validation split; eval: of GPQA's option order (default 0)",
    )
    prepare_parser.add_argument(
        "--val-size",
        type=_non_negative,
        metavar="N",
        help=f"validation rows, drawn uniformly from the good rows; at most half of them (default {DEFAULT_VAL_SIZE}); "
        "not for eval, which keeps every row",
    )
    prepare_parser.add_argument("--limit", type=_positive, metavar="N", help="read only the first N input rows")
    prepare_parser.add_argument(
        "--strict", action="store_true", help="fail on the first bad row instead of skipping it"
    )
    prepare_parser.add_argument(
        "--shard-rows", type=_positive, metavar="N", help="start a new train shard every N rows"
    )
    prepare_parser.add_argument(
        "--tokenizer", metavar="PATH", help="local tokenizer (a model directory) used for the token limits"
    )
    prepare_parser.add_argument(
        "--max-prompt-tokens",
        type=_positive,
        metavar="N",
        help="skip rows whose chat-templated prompt is longer than N tokens (images' vision tokens not counted)",
    )
    prepare_parser.add_argument(
        "--max-total-tokens",
        type=_positive,
        metavar="N",
        help="coldstart: skip conversations longer than N tokens in all",
    )
    prepare_parser.add_argument(
        "--instruction",
        default=REVISUAL_INSTRUCTION,
        metavar="TEXT",
        help="RL parts: text appended to each problem ('{problem}' in TEXT places the problem instead; '' for none). "
        "Default: ReVisual-R1's instruction to think inside <think> </think> and answer in \\boxed{}",
    )
    prepare_parser.add_argument(
        "--data-source", metavar="NAME", help="value of the data_source column (default grammar_<part>)"
    )
    prepare_parser.add_argument("--layout", choices=LAYOUTS, help="coldstart: force a layout instead of detecting it")
    prepare_parser.add_argument("--split", metavar="NAME", help="split to read from a saved DatasetDict")
    prepare_parser.add_argument("--problem-key", default="problem", metavar="KEY", help="RL parts: problem column")
    prepare_parser.add_argument("--answer-key", default="answer", metavar="KEY", help="RL parts: answer column")
    prepare_parser.add_argument("--image-key", default="images", metavar="KEY", help="mmrl: images column")
    prepare_parser.add_argument("--source-key", default="dataset", metavar="KEY", help="RL parts: source tag column")
    prepare_parser.add_argument(
        "--allow-image-root",
        metavar="DIR",
        help="mmrl, eval: an image stored only as a path is read if it resolves (symlinks included) inside the input "
        "file's folder; this allows one other folder too. Any other path is skipped (image_outside_data) unopened",
    )
    progress = prepare_parser.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress", dest="progress", action="store_true", default=None, help="show a progress bar (default: on a TTY)"
    )
    progress.add_argument("--no-progress", dest="progress", action="store_false", help="never show a progress bar")
    return parser


def _summary(report: dict, output: str) -> str:
    skipped = report["skipped"]
    reasons = ", ".join(f"{reason} {count}" for reason, count in skipped["by_reason"].items())
    if report["part"] == EVAL:
        head = (
            f"{report['part']} ({report['benchmark']}): read {report['rows_read']} rows, "
            f"wrote all {report['train_rows']} good ones to train"
        )
    else:
        head = (
            f"{report['part']}: read {report['rows_read']} rows, wrote {report['train_rows']} train + "
            f"{report['val_rows']} val"
        )
    lines = [
        f"{head}, skipped {skipped['total']}" + (f" ({reasons})" if reasons else ""),
        f"report: {output}/report.json",
    ]
    if report["part"] != EVAL and report["val_size"]["used"] < report["val_size"]["requested"]:
        lines.append(
            f"note: validation kept {report['val_size']['used']} rows, not {report['val_size']['requested']}, "
            "so that at least half of the good rows stay in train"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.part == EVAL and args.val_size is not None:
        parser.error("--val-size does not apply to eval: a benchmark is written whole, with no validation split")
    try:
        options = PrepareOptions(
            part=args.part,
            inputs=args.input,
            output=args.output,
            seed=args.seed,
            val_size=DEFAULT_VAL_SIZE if args.val_size is None else args.val_size,
            limit=args.limit,
            strict=args.strict,
            shard_rows=args.shard_rows,
            tokenizer=args.tokenizer,
            max_prompt_tokens=args.max_prompt_tokens,
            max_total_tokens=args.max_total_tokens,
            instruction=args.instruction,
            data_source=args.data_source,
            layout=args.layout,
            split=args.split,
            problem_key=args.problem_key,
            answer_key=args.answer_key,
            image_key=args.image_key,
            source_key=args.source_key,
            progress=args.progress,
            allow_image_root=args.allow_image_root,
            benchmark=args.benchmark,
        )
    except ValueError as error:
        parser.error(str(error))
    try:
        report = prepare(options)
    except (InputFormatError, StrictModeError, PrepareError, OSError) as error:
        print(f"revisual-data: error: {error}", file=sys.stderr)
        return 1
    print(_summary(report, args.output))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
