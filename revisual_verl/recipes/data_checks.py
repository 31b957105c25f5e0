"""Cheap checks of a stage's parquet files: they exist, have rows, and have the columns the stage reads.

Only parquet footers are read (schema and row counts), so a dry run over the full GRAMMAR data
takes milliseconds and never decodes an image.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence

import pyarrow.parquet as pq


@dataclasses.dataclass(frozen=True)
class ParquetSummary:
    paths: tuple[str, ...]
    rows: int
    columns: frozenset[str]
    # Fields of the reward_model struct column, when there is one (ground_truth must be among them).
    reward_model_fields: frozenset[str] | None
    # Images in the image column, counted from the footers' statistics; None when they are not there.
    images: int | None = None


class DataCheckError(ValueError):
    """A data file is missing, unreadable, empty, or lacks a column the stage needs."""


def as_paths(files) -> list[str]:
    """verl's ``data.*_files`` is one path or a list of paths."""
    if files is None:
        return []
    if isinstance(files, str):
        return [files]
    return [str(path) for path in files]


def summarize(paths: Sequence[str], key: str, image_key: str | None = None) -> ParquetSummary:
    """Read the footers of ``paths`` (the files of config key ``key``); raise naming the bad file."""
    if not paths:
        raise DataCheckError(f"{key} is empty: no data file given")
    rows = 0
    images: int | None = 0 if image_key else None
    columns: set[str] | None = None
    reward_fields: set[str] | None = None
    for path in paths:
        local = os.path.expanduser(path)
        if not os.path.isfile(local):
            raise DataCheckError(f"{key}: {path} does not exist")
        try:
            meta = pq.ParquetFile(local)
        except Exception as error:  # pyarrow raises several types for a bad footer
            raise DataCheckError(f"{key}: {path} is not a readable parquet file ({error})") from error
        schema = meta.schema_arrow
        names = set(schema.names)
        # Shards of one split must agree, or verl's concatenation fails mid-run.
        if columns is not None and names != columns:
            raise DataCheckError(
                f"{key}: {path} has columns {sorted(names)}, unlike the earlier files ({sorted(columns)})"
            )
        columns = names
        rows += meta.metadata.num_rows
        if images is not None:
            counted = _count_images(meta.metadata, image_key) if image_key in names else 0
            images = None if counted is None else images + counted
        if "reward_model" in names:
            field_type = schema.field("reward_model").type
            if hasattr(field_type, "num_fields"):
                reward_fields = {field_type.field(i).name for i in range(field_type.num_fields)}
    return ParquetSummary(
        tuple(paths),
        rows,
        frozenset(columns or ()),
        frozenset(reward_fields) if reward_fields is not None else None,
        images,
    )


def _count_images(metadata, image_key: str) -> int | None:
    """Non-null leaf values of the image column (one per image), summed over row groups.

    Every image, whether ``{"bytes", "path"}`` or a plain path, leaves one non-null value in some
    leaf column under ``image_key``; the most populated leaf counts them without reading any data.
    """
    total = 0
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        best: int | None = None
        for index in range(row_group.num_columns):
            column = row_group.column(index)
            if column.path_in_schema.split(".")[0] != image_key:
                continue
            if metadata.schema.column(index).logical_type.type in ("NULL", "UNKNOWN"):
                continue  # an all-empty or all-null leaf: holds no value by construction
            stats = column.statistics
            if stats is None:
                return None
            best = max(best or 0, stats.num_values)
        total += best or 0
    return total


def check_columns(summary: ParquetSummary, key: str, required: Iterable[str]) -> None:
    missing = [column for column in required if column not in summary.columns]
    if missing:
        raise DataCheckError(
            f"{key}: {', '.join(summary.paths)} lacks column(s) {missing}; it has {sorted(summary.columns)}"
        )
    if summary.rows == 0:
        raise DataCheckError(f"{key}: {', '.join(summary.paths)} has no rows")
    if summary.reward_model_fields is not None and "ground_truth" not in summary.reward_model_fields:
        raise DataCheckError(
            f"{key}: column reward_model has fields {sorted(summary.reward_model_fields)}, no ground_truth"
        )
