"""Stream raw rows out of local copies: parquet, a JSON array, JSONL, or a ``datasets`` directory saved to disk.

Every reader yields rows one at a time and holds at most one batch (parquet, arrow) or one buffer (JSON) in
memory, so memory stays flat in the size of the input. A row that is not valid JSON in a JSONL file (or nests
too deeply, or holds an integer beyond Python's digit limit) is handed on as :class:`UnreadableRow`, so it is
reported like any other bad row; so is an array element with such an integer. A JSON array that breaks mid-way,
or whose element nests too deeply to find its end, cannot be resynchronised and raises :class:`InputFormatError`
naming the offset; so does a file that is not UTF-8, or that its library cannot read.
"""

from __future__ import annotations

import codecs
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from revisual_verl.data.rejections import INVALID_JSON, UNREADABLE_VALUE, truncate

PARQUET_BATCH_ROWS = 128
JSON_CHUNK_CHARS = 1 << 20
# One JSON value larger than this is taken for a malformed array rather than read on to the end of the file.
MAX_JSON_VALUE_CHARS = 256 << 20
# A JSON Lines line longer than this is reported as unreadable and skipped, never held in memory whole.
MAX_JSON_LINE_BYTES = 256 << 20
# How much of a file that does not open with '[' is looked at to tell JSON Lines from one lone JSON value.
JSON_SNIFF_BYTES = 8 << 20
EXPECTED_JSON = "expected a JSON array of rows ('[{...}, ...]') or JSON Lines (one row per line)"
EXPECTED_JSON_LINES = "expected JSON Lines (one JSON row per line)"


class InputFormatError(Exception):
    """The input cannot be read at all (unknown format, a JSON array that breaks, an empty file, a missing file)."""


@dataclass
class UnreadableRow:
    """A row the reader could not turn into a value: a JSONL line that does not parse (``invalid_json``), or a
    row of a columnar file with a cell its library cannot convert (``unreadable_value``). The converter reports
    it under ``reason``."""

    detail: str
    reason: str = INVALID_JSON


@dataclass
class RawRow:
    """One raw row and where it came from; ``index`` counts rows across all inputs, from 0."""

    index: int
    source: str
    value: object
    base_dir: Path


class Progress:
    """How far a reader has got, in its own unit (rows when the total is known up front, else bytes)."""

    def __init__(self, unit: str, total: int | None):
        self.unit = unit
        self.total = total
        self.done = 0


class JsonArrayReader:
    """Elements of a top-level JSON array, decoded one by one from a bounded text buffer."""

    def __init__(self, path: Path, chunk_chars: int = JSON_CHUNK_CHARS, max_value_chars: int = MAX_JSON_VALUE_CHARS):
        self.path = path
        self.chunk_chars = chunk_chars
        self.max_value_chars = max_value_chars
        self.progress = Progress("B", path.stat().st_size)

    def __iter__(self) -> Iterator[object]:
        with open(self.path, "rb") as raw:
            buffer = _TextBuffer(raw, self.progress, self.chunk_chars, self.path)
            buffer.skip_whitespace()
            if buffer.peek() != "[":
                raise InputFormatError(f"{self.path}: expected a JSON array starting with '['")
            buffer.advance(1)
            element = 0
            while True:
                buffer.skip_whitespace()
                if buffer.peek() == "]" and element == 0:
                    break
                value = self._decode_one(buffer, element)
                yield value
                element += 1
                buffer.skip_whitespace()
                separator = buffer.peek()
                if separator == ",":
                    buffer.advance(1)
                elif separator == "]":
                    break
                else:
                    raise InputFormatError(
                        f"{self.path}: expected ',' or ']' after element {element - 1} "
                        f"at character {buffer.offset}, found {separator!r}"
                    )
            buffer.advance(1)
            buffer.skip_whitespace()
            if buffer.peek() != "":
                raise InputFormatError(
                    f"{self.path}: unexpected data after the closing ']' at character {buffer.offset}"
                )

    def _decode_one(self, buffer: _TextBuffer, element: int) -> object:
        decoder, refused = _DECODER, None
        while True:
            try:
                value, end = decoder.raw_decode(buffer.text, buffer.pos)
            except json.JSONDecodeError as error:
                # Either the value runs past the buffer (read more and retry) or it is malformed; only the end
                # of the file or an absurd size tells the two apart.
                pending = len(buffer.text) - buffer.pos
                if buffer.at_eof or pending > self.max_value_chars:
                    raise InputFormatError(
                        f"{self.path}: element {element} starting at character {buffer.offset} is not valid JSON "
                        f"({error.msg})"
                    ) from None
                buffer.read_more(max(self.chunk_chars, pending))
                continue
            except RecursionError:
                # Finding the element's end would take the parse that just failed, so there is no safe resync.
                raise InputFormatError(
                    f"{self.path}: element {element} starting at character {buffer.offset} is nested too deeply "
                    "to decode; the rest of the array cannot be read past it"
                ) from None
            except ValueError as error:
                # Valid JSON that Python will not build: an integer beyond its digit limit. Parsing again with
                # integers left as text finds where the element ends, so it is reported and reading goes on.
                if decoder is _INTS_AS_TEXT:
                    raise InputFormatError(
                        f"{self.path}: element {element} starting at character {buffer.offset} cannot be decoded "
                        f"({error})"
                    ) from None
                decoder = _INTS_AS_TEXT
                refused = f"element {element} at character {buffer.offset}: {error}"
                continue
            # A number that ends exactly at the buffer end may continue in the next chunk.
            if end == len(buffer.text) and not buffer.at_eof:
                buffer.read_more(self.chunk_chars)
                continue
            buffer.advance(end - buffer.pos)
            return value if refused is None else UnreadableRow(refused)


_DECODER = json.JSONDecoder()
_INTS_AS_TEXT = json.JSONDecoder(parse_int=str)


class _TextBuffer:
    """A sliding window over a UTF-8 file; drops consumed text so the window never outgrows one value.

    It decodes the bytes itself, rather than through ``io.TextIOWrapper``, to count them for the progress bar and
    to name the byte where a file stops being UTF-8.
    """

    def __init__(self, raw: io.BufferedIOBase, progress: Progress, chunk_chars: int, path: Path):
        self._raw = raw
        self._progress = progress
        self._chunk_chars = chunk_chars
        self._path = path
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._bytes_decoded = 0
        self._at_start = True
        self.text = ""
        self.pos = 0
        self._dropped = 0
        self.at_eof = False

    @property
    def offset(self) -> int:
        return self._dropped + self.pos

    def read_more(self, chars: int) -> None:
        if self.pos > 0:
            self._dropped += self.pos
            self.text = self.text[self.pos :]
            self.pos = 0
        # At least one character or the end of the file, however the chunk splits a multi-byte character.
        chunk = ""
        while not chunk and not self.at_eof:
            chunk = self._decode(self._raw.read(max(chars, 4)))
        self.text += chunk

    def _decode(self, data: bytes) -> str:
        self._progress.done += len(data)
        carried = len(self._decoder.getstate()[0])
        try:
            chunk = self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as error:
            byte = self._bytes_decoded - carried + error.start
            raise InputFormatError(f"{self._path}: not UTF-8 at byte {byte} ({error.reason})") from None
        self._bytes_decoded += len(data)
        self.at_eof = not data
        if self._at_start and chunk:
            self._at_start = False
            chunk = chunk.removeprefix("\ufeff")
        return chunk

    def peek(self) -> str:
        if self.pos >= len(self.text) and not self.at_eof:
            self.read_more(self._chunk_chars)
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def advance(self, chars: int) -> None:
        self.pos += chars

    def skip_whitespace(self) -> None:
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.text) or self.at_eof:
                return
            self.read_more(self._chunk_chars)


class JsonLinesReader:
    """One JSON value per line; a line that does not parse, or is too long to hold, becomes an
    :class:`UnreadableRow`."""

    def __init__(self, path: Path, max_line_bytes: int = MAX_JSON_LINE_BYTES):
        self.path = path
        self.max_line_bytes = max_line_bytes
        self.progress = Progress("B", path.stat().st_size)

    def __iter__(self) -> Iterator[object]:
        with open(self.path, "rb") as handle:
            line_number = 0
            while True:
                line = handle.readline(self.max_line_bytes + 1)
                if not line:
                    return
                line_number += 1
                self.progress.done += len(line)
                if len(line) > self.max_line_bytes and not line.endswith(b"\n"):
                    self.progress.done += _skip_rest_of_line(handle)
                    yield UnreadableRow(f"line {line_number}: longer than {self.max_line_bytes} bytes")
                    continue
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except RecursionError:
                    value = UnreadableRow(f"line {line_number}: nested too deeply to decode")
                except ValueError as error:
                    # Also undecodable UTF-8 and integers beyond Python's digit limit, both ValueErrors.
                    value = UnreadableRow(truncate(f"line {line_number}: {error}"))
                yield value


def _skip_rest_of_line(handle, chunk_bytes: int = 1 << 16) -> int:
    """Read past the end of the current line, a chunk at a time; returns the bytes skipped."""
    skipped = 0
    while True:
        chunk = handle.readline(chunk_bytes)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped


def _columnar_rows(table, first_row: int) -> list[object]:
    """The rows of an arrow batch; a row with a cell arrow cannot convert becomes an :class:`UnreadableRow`.

    The whole batch converts at once in the common case; only a batch that fails is converted column by column,
    and a failing column cell by cell, so one bad value (text that is not UTF-8, say) costs its row alone.
    """
    try:
        return table.to_pylist()
    except Exception:  # noqa: BLE001  whatever arrow raises for a bad value; the slow path below names it
        pass
    names = table.schema.names
    rows: list[dict] = [{} for _ in range(table.num_rows)]
    problems: list[str | None] = [None] * table.num_rows
    for position, name in enumerate(names):
        column = table.column(position)
        try:
            values = column.to_pylist()
        except Exception:  # noqa: BLE001  as above
            values = []
            for row in range(table.num_rows):
                try:
                    values.append(column[row].as_py())
                except Exception as error:  # noqa: BLE001  as above
                    values.append(None)
                    if problems[row] is None:
                        problems[row] = truncate(
                            f"row {first_row + row} of the file, column {name!r}: {type(error).__name__}: {error}"
                        )
        for row, value in enumerate(values):
            rows[row][name] = value
    return [
        row if problem is None else UnreadableRow(problem, UNREADABLE_VALUE) for row, problem in zip(rows, problems)
    ]


class ParquetReader:
    """Rows of a parquet file, read one small batch of row groups at a time."""

    def __init__(self, path: Path, batch_rows: int = PARQUET_BATCH_ROWS):
        self.path = path
        self.batch_rows = batch_rows
        self._file = pq.ParquetFile(path)
        self.progress = Progress("rows", self._file.metadata.num_rows)

    def __iter__(self) -> Iterator[object]:
        first_row = 0
        for batch in self._file.iter_batches(batch_size=self.batch_rows):
            for row in _columnar_rows(batch, first_row):
                self.progress.done += 1
                yield row
            first_row += batch.num_rows


class SavedDatasetReader:
    """Rows of a ``datasets`` directory written by ``save_to_disk``, memory-mapped and never decoded.

    Image columns come out as their stored ``{"bytes", "path"}`` structs, exactly like the parquet upstream.
    ``split_name`` is the split the rows are: the one chosen from a ``DatasetDict``, or the one a saved ``Dataset``
    records (``load_dataset(..., split="testmini").save_to_disk(...)`` records ``testmini``); None if neither says.
    """

    def __init__(self, path: Path, split: str | None, batch_rows: int = PARQUET_BATCH_ROWS):
        import datasets

        loaded = datasets.load_from_disk(str(path))
        self.split_name = str(loaded.split) if getattr(loaded, "split", None) is not None else None
        if isinstance(loaded, datasets.DatasetDict):
            names = list(loaded)
            if split is None:
                split = "train" if "train" in loaded else (names[0] if len(names) == 1 else None)
            if split not in loaded:
                raise InputFormatError(f"{path}: choose a split with --split, one of {names}")
            loaded = loaded[split]
            self.split_name = split
        self.path = path
        self._dataset = loaded
        self.batch_rows = batch_rows
        self.progress = Progress("rows", len(loaded))

    def __iter__(self) -> Iterator[object]:
        first_row = 0
        for table in self._dataset.with_format("arrow").iter(batch_size=self.batch_rows):
            for row in _columnar_rows(table, first_row):
                self.progress.done += 1
                yield row
            first_row += table.num_rows


def _is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


_WHITESPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"


def _skip_blank(handle) -> bytes:
    """Read past a BOM and whitespace; the first bytes of content (b"" for a file with none)."""
    start = handle.read(len(_BOM))
    chunk = start[len(_BOM) :] if start == _BOM else start
    while True:
        content = chunk.lstrip(_WHITESPACE)
        if content:
            return content
        chunk = handle.read(1 << 16)
        if not chunk:
            return b""


def _json_kind(value: object) -> str:
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return kinds.get(type(value), "number")


def _json_flavour(path: Path) -> str:
    """'array' or 'lines' for a ``.json`` file; an empty file or one lone JSON value raises InputFormatError.

    A file that opens with '[' is an array. Otherwise it must be JSON Lines: a first line that is a whole JSON value
    and is not the file's only content. A single value on one line, or one value spread over several lines (a
    pretty-printed object), is neither. Only the first :data:`JSON_SNIFF_BYTES` are read to decide; a first line
    longer than that is left to the JSON Lines reader.
    """
    with open(path, "rb") as handle:
        head = _skip_blank(handle)
        if not head:
            raise InputFormatError(f"{path}: the file is empty: {EXPECTED_JSON}")
        if head[:1] == b"[":
            return "array"
        window = head + handle.read(max(0, JSON_SNIFF_BYTES - len(head)))
        at_eof = not handle.read(1)
    newline = window.find(b"\n")
    if newline < 0 and not at_eof:
        return "lines"
    first_line = window if newline < 0 else window[:newline]
    try:
        value = json.loads(first_line)
    except RecursionError:
        return "lines"
    except ValueError:
        pass
    else:
        if at_eof and not window[len(first_line) :].strip(_WHITESPACE):
            raise InputFormatError(f"{path}: {EXPECTED_JSON}; found a single JSON {_json_kind(value)} and nothing else")
        return "lines"
    # The first line is not a value by itself: either a broken JSON Lines row, or the start of one value that goes
    # on over the next lines, which a decode of the window from the start tells apart.
    text = window.decode("utf-8", errors="replace")
    first_line_chars = len(first_line.decode("utf-8", errors="replace"))
    try:
        value, end = _DECODER.raw_decode(text)
    except RecursionError:
        return "lines"
    except json.JSONDecodeError as error:
        spans_lines = error.pos > first_line_chars
        kind = {"{": "object", '"': "string"}.get(text[:1], "value")
    except ValueError:
        return "lines"
    else:
        spans_lines = end > first_line_chars
        kind = _json_kind(value)
    if spans_lines:
        raise InputFormatError(f"{path}: {EXPECTED_JSON}; found a JSON {kind} spread over several lines")
    return "lines"


def _check_not_empty(path: Path) -> None:
    with open(path, "rb") as handle:
        if not _skip_blank(handle):
            raise InputFormatError(f"{path}: the file is empty: {EXPECTED_JSON_LINES}")


DATA_SUFFIXES = (".parquet", ".json", ".jsonl", ".ndjson")


def expand_inputs(paths: list[str | os.PathLike]) -> list[Path]:
    """Files and saved datasets named by ``paths``; a plain directory contributes its data files, sorted."""
    found: list[Path] = []
    for given in paths:
        path = Path(given).expanduser()
        if not path.exists():
            raise InputFormatError(f"input not found: {path}")
        if path.is_dir() and not _is_saved_dataset(path):
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in DATA_SUFFIXES)
            if not files:
                raise InputFormatError(f"{path}: no {', '.join(DATA_SUFFIXES)} files and not a saved dataset")
            found.extend(files)
        else:
            found.append(path)
    return found


def open_reader(path: Path, split: str | None = None):
    """The reader for one input, chosen by what the path is and holds rather than trusted to its name alone."""
    if path.is_dir():
        return SavedDatasetReader(path, split)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return ParquetReader(path)
    if suffix in (".jsonl", ".ndjson"):
        _check_not_empty(path)
        return JsonLinesReader(path)
    if suffix == ".json" or suffix == "":
        return JsonArrayReader(path) if _json_flavour(path) == "array" else JsonLinesReader(path)
    raise InputFormatError(f"{path}: unsupported input format {suffix!r} (use parquet, json, jsonl or a saved dataset)")


def _read_error(path: Path, error: Exception) -> InputFormatError:
    return InputFormatError(truncate(f"{path}: cannot be read ({type(error).__name__}: {str(error).strip()})", 1000))


def _values(path: Path, reader) -> Iterator[object]:
    """The reader's values; a library's error on a corrupt file (pyarrow, datasets, the OS) names the file."""
    values = iter(reader)
    while True:
        try:
            value = next(values)
        except StopIteration:
            return
        except InputFormatError:
            raise
        except Exception as error:  # noqa: BLE001  whatever a corrupt input makes its library raise
            raise _read_error(path, error) from error
        yield value


def iter_raw_rows(paths: list[Path], split: str | None = None, limit: int | None = None, on_reader=None):
    """Rows of every input in order, numbered across inputs; ``on_reader`` sees each reader as it opens."""
    index = 0
    for path in paths:
        try:
            reader = open_reader(path, split)
        except InputFormatError:
            raise
        except Exception as error:  # noqa: BLE001  as in _values
            raise _read_error(path, error) from error
        if on_reader is not None:
            on_reader(reader)
        base_dir = path if path.is_dir() else path.parent
        for value in _values(path, reader):
            if limit is not None and index >= limit:
                return
            yield RawRow(index=index, source=str(path), value=value, base_dir=base_dir)
            index += 1
