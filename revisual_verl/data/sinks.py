"""Where good rows go: parquet shards written in bounded row groups, and a seeded validation reservoir.

The validation split is a reservoir sample (Vitter's algorithm R) over the good rows in input order, drawn with
``random.Random(seed)``: one pass, exactly ``val_size`` rows, memory bounded by ``val_size`` rows rather than by
the input, and the same split for the same input and seed. A row displaced from the reservoir goes to train at
that moment, so train keeps input order apart from those rows.
"""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP_ROWS = 512
ROW_GROUP_BYTES = 64 << 20
COMPRESSION = "zstd"


def _approximate_size(value) -> int:
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, dict):
        return sum(_approximate_size(item) for item in value.values())
    if isinstance(value, list):
        return sum(_approximate_size(item) for item in value)
    return 8


class ParquetSink:
    """Writes rows to ``<prefix>.parquet``, or to ``<prefix>-00000.parquet``, ... every ``shard_rows`` rows."""

    def __init__(self, directory: Path, prefix: str, schema: pa.Schema, shard_rows: int | None = None):
        self.directory = directory
        self.prefix = prefix
        self.schema = schema
        self.shard_rows = shard_rows
        self.files: list[str] = []
        self.rows_written = 0
        self._writer: pq.ParquetWriter | None = None
        self._rows_in_shard = 0
        self._pending: list[dict] = []
        self._pending_bytes = 0

    def _flush(self) -> None:
        if not self._pending:
            return
        if self._writer is None:
            name = f"{self.prefix}-{len(self.files):05d}.parquet" if self.shard_rows else f"{self.prefix}.parquet"
            self._writer = pq.ParquetWriter(self.directory / name, self.schema, compression=COMPRESSION)
            self.files.append(name)
        try:
            batch = pa.RecordBatch.from_pylist(self._pending, schema=self.schema)
        except (pa.ArrowException, TypeError, ValueError) as error:
            raise ValueError(
                f"{self.prefix} row {self._first_unwritable()} does not fit the schema: {error}"
            ) from error
        self._writer.write_batch(batch)
        self._pending = []
        self._pending_bytes = 0

    def _first_unwritable(self) -> object:
        """The input index of the first pending row arrow refuses, to name it in the error."""
        for row in self._pending:
            try:
                pa.RecordBatch.from_pylist([row], schema=self.schema)
            except (pa.ArrowException, TypeError, ValueError):
                return row.get("extra_info", {}).get("index")
        return None

    def write(self, row: dict) -> None:
        self._pending.append(row)
        self._pending_bytes += _approximate_size(row)
        self._rows_in_shard += 1
        self.rows_written += 1
        if self.shard_rows and self._rows_in_shard == self.shard_rows:
            self._flush()
            self._writer.close()
            self._writer = None
            self._rows_in_shard = 0
        elif len(self._pending) >= ROW_GROUP_ROWS or self._pending_bytes >= ROW_GROUP_BYTES:
            self._flush()

    def close(self) -> None:
        """Flush and close; a sink that got no rows still writes one empty file, so readers find the split."""
        if not self.files and not self._pending:
            name = f"{self.prefix}-00000.parquet" if self.shard_rows else f"{self.prefix}.parquet"
            pq.write_table(self.schema.empty_table(), self.directory / name, compression=COMPRESSION)
            self.files.append(name)
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class ValidationReservoir:
    """Keeps a seeded uniform sample of ``size`` rows and hands every other row to ``to_train``."""

    def __init__(self, size: int, seed: int, to_train):
        self.size = size
        self._random = random.Random(seed)
        self._to_train = to_train
        self._rows: list[dict] = []
        self.seen = 0

    def offer(self, row: dict) -> None:
        if len(self._rows) < self.size:
            self._rows.append(row)
        else:
            slot = self._random.randrange(self.seen + 1)
            if slot < self.size:
                self._rows[slot], row = row, self._rows[slot]
            self._to_train(row)
        self.seen += 1

    def finish(self, keep: int) -> list[dict]:
        """The validation rows in input order; beyond ``keep`` (a small input) the rest go back to train."""
        rows = sorted(self._rows, key=lambda row: row["extra_info"]["index"])
        kept, returned = rows[:keep], rows[keep:]
        for row in returned:
            self._to_train(row)
        return kept
