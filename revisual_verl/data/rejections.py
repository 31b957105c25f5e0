"""Why a row was skipped, and the tally of skipped rows that ends up in ``report.json``."""

from __future__ import annotations

import reprlib
from collections import Counter
from dataclasses import dataclass, field

# Reasons are stable keys: the report, the tests and users' scripts match on them.
INVALID_JSON = "invalid_json"
# A cell of a columnar file (parquet, a saved dataset) its library cannot turn into a value, e.g. text not UTF-8.
UNREADABLE_VALUE = "unreadable_value"
NOT_AN_OBJECT = "not_an_object"
MISSING_PROBLEM = "missing_problem"
MISSING_ANSWER = "missing_answer"
INVALID_ANSWER = "invalid_answer"
UNDECODABLE_IMAGE = "undecodable_image"
# An image path that resolves (symlinks included) outside the input's folder and any allowed root; never opened.
IMAGE_OUTSIDE_DATA = "image_outside_data"
IMAGE_PLACEHOLDER_MISMATCH = "image_placeholder_mismatch"
# A benchmark row whose question needs an image that the row does not hold (no value, or neither bytes nor path).
MISSING_IMAGE = "missing_image"
# A multiple-choice benchmark row whose options cannot be used: its answer names no option, an option is empty.
INVALID_CHOICES = "invalid_choices"
PROMPT_TOO_LONG = "prompt_too_long"
CONVERSATION_TOO_LONG = "conversation_too_long"
UNKNOWN_LAYOUT = "unknown_layout"
INVALID_MESSAGES = "invalid_messages"
NO_ASSISTANT_TURN = "no_assistant_turn"
# Anything else a row's conversion raised: a backstop so one odd row never ends a long run.
CONVERSION_ERROR = "conversion_error"

REASONS = (
    INVALID_JSON,
    UNREADABLE_VALUE,
    NOT_AN_OBJECT,
    MISSING_PROBLEM,
    MISSING_ANSWER,
    INVALID_ANSWER,
    UNDECODABLE_IMAGE,
    IMAGE_OUTSIDE_DATA,
    IMAGE_PLACEHOLDER_MISMATCH,
    MISSING_IMAGE,
    INVALID_CHOICES,
    PROMPT_TOO_LONG,
    CONVERSATION_TOO_LONG,
    UNKNOWN_LAYOUT,
    INVALID_MESSAGES,
    NO_ASSISTANT_TURN,
    CONVERSION_ERROR,
)

MAX_DETAIL_CHARS = 300


def decimal_digits(number: int) -> int:
    """About how many decimal digits ``number`` has, without the (quadratic, size-limited) conversion to text."""
    return int(abs(number).bit_length() * 0.30103) + 1


class _Glimpse(reprlib.Repr):
    """``reprlib`` bounds size and depth; it still converts a whole int to text, which fails past 4300 digits."""

    def repr_int(self, number, level):
        if decimal_digits(number) > self.maxother:
            return f"<int of about {decimal_digits(number)} digits>"
        return super().repr_int(number, level)


# Row values are untrusted and may be huge or deeply nested; a detail quotes only a bounded glimpse of them.
_glimpse = _Glimpse()
_glimpse.maxlevel = 2
_glimpse.maxstring = 60
_glimpse.maxother = 60


def quote(value: object) -> str:
    """A short, bounded ``repr`` of an untrusted value, for a rejection's detail."""
    return _glimpse.repr(value)


def truncate(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class RowRejected(Exception):
    """A row that cannot become a training example; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def unexpected_error(error: BaseException) -> RowRejected:
    """The rejection recorded for an exception no check anticipated: its type and (truncated) message."""
    return RowRejected(CONVERSION_ERROR, truncate(f"{type(error).__name__}: {error}"))


class StrictModeError(Exception):
    """Raised under ``--strict`` for the first rejected row, naming it."""

    def __init__(self, index: int, source: str, rejection: RowRejected):
        super().__init__(f"row {index} of {source} rejected ({rejection.reason}): {rejection.detail}")
        self.index = index
        self.source = source
        self.rejection = rejection


@dataclass
class SkipTally:
    """Counts every skipped row by reason and keeps the first ``max_listed`` of them row by row."""

    max_listed: int = 100_000
    by_reason: Counter = field(default_factory=Counter)
    rows: list = field(default_factory=list)

    def add(self, index: int, source: str, rejection: RowRejected) -> None:
        self.by_reason[rejection.reason] += 1
        if len(self.rows) < self.max_listed:
            detail = truncate(rejection.detail)
            self.rows.append({"index": index, "input": source, "reason": rejection.reason, "detail": detail})

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())

    def as_report(self) -> dict:
        return {
            "total": self.total,
            "by_reason": dict(sorted(self.by_reason.items())),
            "rows": self.rows,
            "rows_truncated": self.total > len(self.rows),
        }
