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

from revisual_verl.data.rejections import truncate

PARQUET_BATCH_ROWS = 128
JSON_CHUNK_CHARS = 1 << 20
# One JSON value larger than this is taken for a malformed array rather than read on to the end of the file.
MAX_JSON_VALUE_CHARS = 256 << 20


class InputFormatError(Exception):
    """The input cannot be read at all (unknown format, a JSON array that breaks, a missing file)."""


@dataclass
class UnreadableRow:
    """A JSONL line that does not parse; the converter reports it as ``invalid_json``."""

    detail: str


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
    """One JSON value per line; a line that does not parse becomes an :class:`UnreadableRow`."""

    def __init__(self, path: Path):
        self.path = path
        self.progress = Progress("B", path.stat().st_size)

    def __iter__(self) -> Iterator[object]:
        with open(self.path, "rb") as handle:
            for line_number, line in enumerate(handle, start=1):
                self.progress.done += len(line)
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


class ParquetReader:
    """Rows of a parquet file, read one small batch of row groups at a time."""

    def __init__(self, path: Path, batch_rows: int = PARQUET_BATCH_ROWS):
        self.path = path
        self.batch_rows = batch_rows
        self._file = pq.ParquetFile(path)
        self.progress = Progress("rows", self._file.metadata.num_rows)

    def __iter__(self) -> Iterator[object]:
        for batch in self._file.iter_batches(batch_size=self.batch_rows):
            for row in batch.to_pylist():
                self.progress.done += 1
                yield row


class SavedDatasetReader:
    """Rows of a ``datasets`` directory written by ``save_to_disk``, memory-mapped and never decoded.

    Image columns come out as their stored ``{"bytes", "path"}`` structs, exactly like the parquet upstream.
    """

    def __init__(self, path: Path, split: str | None, batch_rows: int = PARQUET_BATCH_ROWS):
        import datasets

        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            names = list(loaded)
            if split is None:
                split = "train" if "train" in loaded else (names[0] if len(names) == 1 else None)
            if split not in loaded:
                raise InputFormatError(f"{path}: choose a split with --split, one of {names}")
            loaded = loaded[split]
        self.path = path
        self._dataset = loaded
        self.batch_rows = batch_rows
        self.progress = Progress("rows", len(loaded))

    def __iter__(self) -> Iterator[object]:
        for table in self._dataset.with_format("arrow").iter(batch_size=self.batch_rows):
            for row in table.to_pylist():
                self.progress.done += 1
                yield row


def _is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


def _json_flavour(path: Path) -> str:
    """'array' or 'lines', from the first character that is not whitespace."""
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(4096)
            if not chunk:
                return "lines"
            stripped = chunk.lstrip(b" \t\r\n\xef\xbb\xbf")
            if stripped:
                return "array" if stripped[:1] == b"[" else "lines"


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
