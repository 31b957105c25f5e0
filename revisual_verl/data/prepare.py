"""One pass from raw rows to verl parquet: convert, check, split, write, report.

The GRAMMAR parts are split into train and validation; a benchmark (part ``eval``) is written whole into the train
split's files (no validation file), which is what verl is then given as its validation data.

Outputs are written into a staging folder inside the output directory and moved into place only when the whole
pass succeeds and kept at least one row, so a failed, empty or ``--strict``-stopped run leaves the previous output
as it was (and removes an output folder it had to create). Before anything is written, a run refuses an output
folder that holds one of its inputs (or lies inside an input folder), and one that holds a file under a name the
converter writes that no previous report of the converter lists. ``report.json`` is the manifest of a run's
files: the next run removes exactly those of them it does not write again, and no other file.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from revisual_verl.data import coldstart
from revisual_verl.data.benchmarks import BENCHMARKS, read_item
from revisual_verl.data.choices import MULTIPLE_CHOICE
from revisual_verl.data.eval_rows import to_eval_row
from revisual_verl.data.readers import RawRow, UnreadableRow, expand_inputs, iter_raw_rows
from revisual_verl.data.rejections import (
    CONVERSATION_TOO_LONG,
    PROMPT_TOO_LONG,
    RowRejected,
    SkipTally,
    StrictModeError,
    unexpected_error,
)
from revisual_verl.data.rl_rows import REVISUAL_INSTRUCTION, RLFields, to_rl_row
from revisual_verl.data.schemas import EVAL_SCHEMA, RL_SCHEMA, SFT_SCHEMA
from revisual_verl.data.sinks import ParquetSink, ValidationReservoir
from revisual_verl.data.token_limits import ChatTokenCounter, load_tokenizer

EVAL = "eval"
PARTS = ("coldstart", "mmrl", "textrl", EVAL)
DEFAULT_VAL_SIZE = 256
PROGRESS_REFRESH_ROWS = 64


@dataclass
class PrepareOptions:
    part: str
    inputs: list[str]
    output: str
    seed: int = 0
    val_size: int = DEFAULT_VAL_SIZE
    limit: int | None = None
    strict: bool = False
    shard_rows: int | None = None
    tokenizer: str | None = None
    max_prompt_tokens: int | None = None
    max_total_tokens: int | None = None
    instruction: str = REVISUAL_INSTRUCTION
    data_source: str | None = None
    layout: str | None = None
    split: str | None = None
    problem_key: str = "problem"
    answer_key: str = "answer"
    image_key: str = "images"
    source_key: str = "dataset"
    progress: bool | None = None
    allow_image_root: str | None = None
    benchmark: str | None = None

    def __post_init__(self):
        if self.part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, got {self.part!r}")
        if self.part == EVAL and self.benchmark not in BENCHMARKS:
            raise ValueError(f"eval needs a benchmark, one of {', '.join(BENCHMARKS)}; got {self.benchmark!r}")
        if self.part != EVAL and self.benchmark is not None:
            raise ValueError("benchmark applies to eval only")
        if self.part == EVAL and self.data_source is not None:
            raise ValueError("eval rows take the benchmark's name as their data_source")
        if self.val_size < 0:
            raise ValueError("val_size must be >= 0")
        if (self.max_prompt_tokens or self.max_total_tokens) and not self.tokenizer:
            raise ValueError("a token limit needs a tokenizer (--tokenizer PATH)")
        if self.max_total_tokens and self.part != "coldstart":
            raise ValueError("max_total_tokens applies to coldstart only; RL parts limit the prompt")
        if self.layout and self.part != "coldstart":
            raise ValueError("layout applies to coldstart only")
        if self.allow_image_root is not None:
            if self.part not in ("mmrl", EVAL):
                raise ValueError("allow_image_root applies to mmrl and eval only")
            if not Path(self.allow_image_root).expanduser().is_dir():
                raise ValueError(f"allow_image_root {self.allow_image_root!r} is not a directory")


class PrepareError(Exception):
    """A run that must not write its output: nothing to write, or an output folder it must not write into."""


class _RowConverter:
    """Turns one raw row of a part into its verl row, keeping the part's own statistics."""

    def __init__(self, options: PrepareOptions):
        self.options = options
        self.counter = ChatTokenCounter(load_tokenizer(options.tokenizer)) if options.tokenizer else None
        self.layouts: Counter = Counter()
        self.notes: Counter = Counter()
        self.benchmark = BENCHMARKS[options.benchmark] if options.part == EVAL else None
        if options.part not in ("coldstart", EVAL):
            self.fields = RLFields(
                problem=options.problem_key,
                answer=options.answer_key,
                images=options.image_key,
                source=options.source_key,
                data_source=options.data_source or f"grammar_{options.part}",
                instruction=options.instruction,
            )
        root = options.allow_image_root
        self.image_roots = (Path(root).expanduser(),) if root else ()

    def __call__(self, raw: RawRow) -> dict:
        if isinstance(raw.value, UnreadableRow):
            raise RowRejected(raw.value.reason, raw.value.detail)
        if self.options.part == "coldstart":
            row = self._coldstart(raw)
        elif self.options.part == EVAL:
            row = self._eval(raw)
        else:
            row = self._rl(raw)
        _check_encodable(row)
        return row

    def _coldstart(self, raw: RawRow) -> dict:
        messages, layout = coldstart.to_messages(raw.value, self.options.layout)
        if self.counter is not None:
            self._check_conversation_length(messages)
        self.layouts[layout] += 1
        if not coldstart.has_think_trace(messages):
            self.notes["no_think_trace"] += 1
        return {
            "data_source": self.options.data_source or "grammar_coldstart",
            "messages": messages,
            "extra_info": {"split": "", "index": raw.index, "layout": layout},
        }

    def _check_conversation_length(self, messages: list[dict]) -> None:
        limit = self.options.max_prompt_tokens
        if limit:
            last_answer = max(i for i, message in enumerate(messages) if message["role"] == "assistant")
            tokens = self.counter.count(messages[:last_answer], add_generation_prompt=True)
            if tokens > limit:
                raise RowRejected(PROMPT_TOO_LONG, f"the prompt is {tokens} tokens, over the limit of {limit}")
        limit = self.options.max_total_tokens
        if limit:
            tokens = self.counter.count(messages, add_generation_prompt=False)
            if tokens > limit:
                raise RowRejected(CONVERSATION_TOO_LONG, f"the conversation is {tokens} tokens, over {limit}")

    def _rl(self, raw: RawRow) -> dict:
        row = to_rl_row(
            raw.value,
            raw.index,
            self.fields,
            raw.base_dir,
            with_images=self.options.part == "mmrl",
            image_roots=self.image_roots,
        )
        self._check_prompt_length(row)
        if not row["images"]:
            self.notes["rows_without_images"] += 1
        return row

    def _eval(self, raw: RawRow) -> dict:
        item = read_item(self.benchmark, raw.value, self.options.seed)
        row = to_eval_row(
            item,
            raw.index,
            self.benchmark.name,
            self.benchmark.ability,
            raw.base_dir,
            self.options.instruction,
            self.image_roots,
        )
        self._check_prompt_length(row)
        self.notes[item.question_type] += 1
        if item.question_type == MULTIPLE_CHOICE and not item.choices:
            # The options are only in the picture: the reward can check the letter, not the option's text.
            self.notes["choices_not_listed"] += 1
        if not row["images"]:
            self.notes["rows_without_images"] += 1
        return row

    def _check_prompt_length(self, row: dict) -> None:
        limit = self.options.max_prompt_tokens
        if limit:
            tokens = self.counter.count(row["prompt"], add_generation_prompt=True)
            if tokens > limit:
                raise RowRejected(PROMPT_TOO_LONG, f"the prompt is {tokens} tokens, over the limit of {limit}")


def _check_encodable(value: object) -> None:
    """Raise for text UTF-8 cannot encode: JSON can spell a lone surrogate (``\\ud800``), which arrow would refuse
    only when the batch holding it is written, far from the row and taking the run down with it."""
    if isinstance(value, str):
        value.encode("utf-8")
    elif isinstance(value, dict):
        for item in value.values():
            _check_encodable(item)
    elif isinstance(value, list):
        for item in value:
            _check_encodable(item)


def convert_or_reject(converter, raw: RawRow) -> dict:
    """The converted row; any exception no check anticipated becomes a ``conversion_error`` rejection."""
    try:
        return converter(raw)
    except RowRejected:
        raise
    except Exception as error:  # noqa: BLE001  one odd row must not end a run of hours; it is reported instead
        raise unexpected_error(error) from error


class _ProgressBars:
    """One bar per input, in rows where the reader knows its row count, else in bytes."""

    def __init__(self, enabled: bool | None):
        self.enabled = enabled
        self._bar = None
        self._reader = None
        self._shown = 0
        self._rows = 0

    def attach(self, reader) -> None:
        self.close()
        self._reader = reader
        progress = reader.progress
        self._bar = tqdm(
            total=progress.total,
            unit=progress.unit if progress.unit == "B" else " rows",
            unit_scale=progress.unit == "B",
            desc=Path(reader.path).name,
            # None lets tqdm show the bar on a terminal only.
            disable=None if self.enabled is None else not self.enabled,
            dynamic_ncols=True,
        )

    def tick(self) -> None:
        self._rows += 1
        if self._rows % PROGRESS_REFRESH_ROWS == 0:
            self._refresh()

    def _refresh(self) -> None:
        if self._bar is not None:
            done = self._reader.progress.done
            self._bar.update(done - self._shown)
            self._shown = done

    def close(self) -> None:
        if self._bar is not None:
            self._refresh()
            self._bar.close()
        self._bar, self._reader, self._shown = None, None, 0


# Every name the converter can write into an output folder; anything else there is never touched.
OUTPUT_NAME = re.compile(r"(?:train|val)(?:-\d{5})?\.parquet|report\.json")
REPORT_NAME = "report.json"
STAGING_PREFIX = ".revisual-data-staging-"


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


def _refuse_input_overlap(given: list[str], paths: list[Path], output: Path) -> None:
    """Refuse an output folder that holds an input, or that lies inside an input folder (whose files a later run
    would read back as input)."""
    real_output = output.resolve()
    for name in [*given, *map(str, paths)]:
        source = Path(name).expanduser().resolve()
        if _inside(source, real_output):
            raise PrepareError(
                f"refusing to write into {output}: it holds the input {name}; choose an output folder of its own"
            )
        if source.is_dir() and _inside(real_output, source):
            raise PrepareError(
                f"refusing to write into {output}: it is inside the input folder {name}, whose files a later run "
                "would read as input; choose an output folder outside it"
            )


def _previous_outputs(output: Path) -> set[str] | None:
    """The files a previous run listed in ``report.json`` (empty when there is none); None when a report.json is
    there that this converter did not write."""
    report = output / REPORT_NAME
    try:
        info = report.lstat()
    except FileNotFoundError:
        return set()
    if not stat.S_ISREG(info.st_mode):
        return None
    try:
        content = json.loads(report.read_text(encoding="utf-8"))
        # Each split lists its file (val) or its shards (train); a benchmark's report lists train only.
        listings = content["files"].values()
        names = [name for listed in listings for name in (listed if isinstance(listed, list) else [listed])]
        if content.get("part") not in PARTS or not all(isinstance(name, str) for name in names):
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None
    # Only names this converter writes, so a doctored report can never point the clean-up elsewhere.
    return {name for name in names if OUTPUT_NAME.fullmatch(name)} | {REPORT_NAME}


def _check_output_folder(output: Path) -> set[str]:
    """The previous run's files, after checking that every file under a converter's name is one of them."""
    if not output.exists():
        return set()
    if not output.is_dir():
        raise PrepareError(f"refusing to write into {output}: it is not a folder")
    previous = _previous_outputs(output)
    clashing = sorted(
        entry.name
        for entry in output.iterdir()
        if OUTPUT_NAME.fullmatch(entry.name) and entry.name not in (previous or ())
    )
    if clashing:
        listed = ", ".join(clashing[:5]) + (" ..." if len(clashing) > 5 else "")
        them = "it" if len(clashing) == 1 else "them"
        raise PrepareError(
            f"refusing to write into {output}: it holds {listed}, not written by revisual-data (no report.json "
            f"of an earlier run there lists {them}); move {them} away or choose another output folder"
        )
    return previous or set()


def _publish(staging: Path, output: Path, previous: set[str]) -> None:
    """Move the staged files into place (the report, the manifest, last), then remove the previous run's files
    that this run did not write again."""
    produced = sorted(staging.iterdir(), key=lambda path: path.name == REPORT_NAME)
    for path in produced:
        path.replace(output / path.name)
    written = {path.name for path in produced}
    for name in sorted(previous - written):
        stale = output / name
        if stale.is_file() or stale.is_symlink():
            stale.unlink()
    staging.rmdir()


def _missing_folders(folder: Path) -> list[Path]:
    """The folders that creating ``folder`` would create, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _no_rows_message(rows_read: int, skipped: SkipTally, output: Path) -> str:
    if rows_read == 0:
        found = "the input holds no rows"
    else:
        counts = ", ".join(f"{reason} {count}" for reason, count in sorted(skipped.by_reason.items()))
        if rows_read == 1:
            found = f"read 1 row, skipped it ({counts})"
        else:
            found = f"read {rows_read} rows, skipped all of them ({counts})"
        if skipped.rows:
            first = skipped.rows[0]
            found += f"; first: row {first['index']} of {first['input']} ({first['reason']}): {first['detail']}"
    return f"no row could be converted: {found}. Nothing was written; {output} is left as it was"


class _TrainValOutput:
    """A GRAMMAR part's rows: a seeded validation sample (see :class:`ValidationReservoir`), the rest to train."""

    def __init__(self, staging: Path, schema, options: PrepareOptions):
        self.staging, self.schema, self.options = staging, schema, options
        self.train = ParquetSink(staging, "train", schema, options.shard_rows)
        self.reservoir = ValidationReservoir(options.val_size, options.seed, self._to_train)

    def _to_train(self, row: dict) -> None:
        row["extra_info"]["split"] = "train"
        self.train.write(row)

    def offer(self, row: dict) -> None:
        self.reservoir.offer(row)

    @property
    def kept(self) -> int:
        return self.reservoir.seen

    def finish(self) -> dict:
        """Write the validation split and close both; the report's counts and file list."""
        # A tiny input must not end up all validation: never more than half the good rows.
        val_used = min(self.options.val_size, self.reservoir.seen // 2)
        val_rows = self.reservoir.finish(val_used)
        val = ParquetSink(self.staging, "val", self.schema)
        for row in val_rows:
            row["extra_info"]["split"] = "val"
            val.write(row)
        val.close()
        self.train.close()
        return {
            "train_rows": self.train.rows_written,
            "val_rows": val.rows_written,
            "val_size": {"requested": self.options.val_size, "used": val_used},
            "files": {"train": self.train.files, "val": val.files[0]},
        }


class _WholeOutput:
    """A benchmark's rows: every one, in input order, into the train split's files and no validation file (a
    benchmark is never sampled). The rows say what they are: ``extra_info.split`` is ``test``."""

    def __init__(self, staging: Path, schema, options: PrepareOptions):
        self.train = ParquetSink(staging, "train", schema, options.shard_rows)

    def offer(self, row: dict) -> None:
        row["extra_info"]["split"] = "test"
        self.train.write(row)

    @property
    def kept(self) -> int:
        return self.train.rows_written

    def finish(self) -> dict:
        self.train.close()
        return {"train_rows": self.train.rows_written, "files": {"train": self.train.files}}


# Options a benchmark run does not read, left out of its report so that it lists only what shaped the rows.
_NOT_FOR_EVAL = {
    "val_size", "max_total_tokens", "data_source", "layout", "problem_key", "answer_key", "image_key", "source_key"
}  # fmt: skip


def _report_options(options: PrepareOptions) -> dict:
    skipped = {"inputs", "output", "progress"} | (_NOT_FOR_EVAL if options.part == EVAL else {"benchmark"})
    return {key: value for key, value in asdict(options).items() if key not in skipped}


def prepare(options: PrepareOptions) -> dict:
    """Run one conversion; returns the report that is also written to ``<output>/report.json``."""
    started = time.perf_counter()
    paths = expand_inputs(options.inputs)
    output = Path(options.output).expanduser()
    _refuse_input_overlap(options.inputs, paths, output)
    previous = _check_output_folder(output)
    converter = _RowConverter(options)
    created = _missing_folders(output.absolute())
    output.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=output))
    schema = {"coldstart": SFT_SCHEMA, EVAL: EVAL_SCHEMA}.get(options.part, RL_SCHEMA)
    bars = _ProgressBars(options.progress)
    try:
        kept = (_WholeOutput if options.part == EVAL else _TrainValOutput)(staging, schema, options)
        skipped = SkipTally()
        rows_read = 0
        splits = []  # the split each input says its rows are (a saved dataset says; a file does not)

        def on_reader(reader) -> None:
            splits.append(getattr(reader, "split_name", None))
            bars.attach(reader)

        for raw in iter_raw_rows(paths, options.split, options.limit, on_reader=on_reader):
            rows_read += 1
            bars.tick()
            try:
                row = convert_or_reject(converter, raw)
            except RowRejected as rejection:
                if options.strict:
                    raise StrictModeError(raw.index, raw.source, rejection) from None
                skipped.add(raw.index, raw.source, rejection)
                continue
            kept.offer(row)
        bars.close()
        if kept.kept == 0:
            raise PrepareError(_no_rows_message(rows_read, skipped, output))
        written = kept.finish()

        seconds = time.perf_counter() - started
        report = {"part": options.part}
        if converter.benchmark is not None:
            report["benchmark"] = converter.benchmark.name
            report["dataset"] = converter.benchmark.source()
            # Which split of the benchmark was converted, when every input says the same; None when unknown.
            report["split"] = splits[0] if splits and len(set(splits)) == 1 else None
        report |= {
            "inputs": [str(path) for path in paths],
            "written_by": "revisual-data",
            "options": _report_options(options),
            "rows_read": rows_read,
            "rows_kept": kept.kept,
            **written,
            "skipped": skipped.as_report(),
            "notes": dict(sorted(converter.notes.items())),
            "timing": {"seconds": round(seconds, 3), "rows_per_second": round(rows_read / max(seconds, 1e-9), 1)},
        }
        if options.part == "coldstart":
            report["layouts"] = dict(sorted(converter.layouts.items()))
        (staging / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        _publish(staging, output, previous)
        return report
    except BaseException:
        bars.close()
        shutil.rmtree(staging, ignore_errors=True)
        for folder in created:
            try:
                folder.rmdir()
            except OSError:
                break
        raise
