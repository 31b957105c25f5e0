"""The problems of the synthetic task, their worked solutions, and the split of problems into train and held-out.

Two kinds of problem, both sums of digits 0-9:

* ``image``: "Add <image> and 4." where the picture shows one digit; the key is (pictured digit, text digits...).
* ``text``: "Add 3, 4 and 5."; the key is the digits in order.

A key is held out by a stable hash of (kind, key, salt), so the split never depends on the seed or the row
counts: every run with the same salt holds out the same problems, and no training row ever shows one of them.
Pure Python, no third-party import.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

IMAGE = "image"
TEXT = "text"
KINDS = (IMAGE, TEXT)

DIGITS = tuple(range(10))
# The same placeholder the GRAMMAR mmrl rows hold, one per image, where the image belongs in the sentence.
IMAGE_PLACEHOLDER = "<image>"

DEFAULT_IMAGE_OPERANDS = 1  # digits given in the text of an image problem, besides the pictured one
DEFAULT_TEXT_OPERANDS = 3
DEFAULT_HELD_OUT_FRACTION = 0.2
DEFAULT_SPLIT_SALT = "revisual-synthetic-task-v1"
# Keys are enumerated in full (10 ** operands of them), so the operand count is kept where that is instant.
MAX_KEY_OPERANDS = 5


def key_length(kind: str, operands: int) -> int:
    """How many digits a key of ``kind`` holds; ``operands`` counts the digits in the text."""
    if kind == IMAGE:
        low, length = 1, operands + 1
    elif kind == TEXT:
        low, length = 2, operands
    else:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if isinstance(operands, bool) or not isinstance(operands, int) or operands < low or length > MAX_KEY_OPERANDS:
        high = MAX_KEY_OPERANDS - 1 if kind == IMAGE else MAX_KEY_OPERANDS
        raise ValueError(f"{kind} problems take {low}-{high} digits in the text, got {operands!r}")
    return length


def _listing(parts: Sequence[str]) -> str:
    """'3 and 4', '3, 4 and 5': how the sentence joins its operands."""
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _check_key(key: Sequence[int]) -> tuple[int, ...]:
    key = tuple(key)
    if not key or any(isinstance(d, bool) or not isinstance(d, int) or d not in DIGITS for d in key):
        raise ValueError(f"a key is a non-empty tuple of digits 0-9, got {key!r}")
    return key


@dataclass(frozen=True)
class Problem:
    """One problem. For an image problem ``key[0]`` is the pictured digit and the rest are in the text."""

    kind: str
    key: tuple[int, ...]

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        key = _check_key(self.key)
        if len(key) < 2:
            raise ValueError(f"a problem adds at least two digits, got {key!r}")
        object.__setattr__(self, "key", key)

    @property
    def text(self) -> str:
        if self.kind == IMAGE:
            return f"Add {_listing([IMAGE_PLACEHOLDER, *map(str, self.key[1:])])}."
        return f"Add {_listing([str(d) for d in self.key])}."

    @property
    def digit(self) -> int:
        """The pictured digit of an image problem."""
        if self.kind != IMAGE:
            raise ValueError("only an image problem has a pictured digit")
        return self.key[0]

    @property
    def answer(self) -> str:
        return str(sum(self.key))

    @property
    def solution(self) -> str:
        return worked_solution(self.key)


def running_sums(key: Sequence[int]) -> list[tuple[int, int, int]]:
    """(sum so far, next digit, new sum) for each addition, left to right: (3, 4, 7), (7, 5, 12) for 3, 4, 5."""
    key = _check_key(key)
    steps, total = [], key[0]
    for digit in key[1:]:
        steps.append((total, digit, total + digit))
        total += digit
    return steps


def worked_solution(key: Sequence[int]) -> str:
    """The answer in the recipe's format: the running sums inside ``<think>``, then the boxed sum.

    ``<think>3+4=7 7+5=12</think>\\boxed{12}``: one think block opening the response and a boxed answer after it,
    which is what the reward's format term pays for and what its accuracy term reads.
    """
    steps = running_sums(key)
    if not steps:
        # An empty think block would fail the format term: a lone digit is no sum to work out.
        raise ValueError(f"a worked solution adds at least two digits, got {tuple(key)!r}")
    work = " ".join(f"{left}+{right}={total}" for left, right, total in steps)
    return f"<think>{work}</think>\\boxed{{{steps[-1][2]}}}"


def careless_solution(key: Sequence[int]) -> str:
    """A slip in the same format: the first addition only, and its sum boxed as the answer (for three digits, one
    addition early).

    ``<think>3+4=7</think>\\boxed{7}`` for 3, 4, 5. Distilled traces mix careful and careless reasoning; a cold start
    on such a mix teaches both habits, and only a verifier tells them apart (the slip is right only when the digits it
    leaves out add to 0). Needs at least three digits, so that a step is left out.
    """
    steps = running_sums(key)
    if len(steps) < 2:
        raise ValueError(f"a careless solution leaves out a step: it needs at least three digits, got {tuple(key)!r}")
    left, right, total = steps[0]
    return f"<think>{left}+{right}={total}</think>\\boxed{{{total}}}"


# "3+4=7": one addition written out, as worked and careless solutions write them (spaces tolerated).
_ADDITION = re.compile(r"\d{1,3} ?\+ ?\d{1,3} ?= ?\d{1,3}")


def additions_written(response: str) -> int:
    """How many different additions ``response`` writes out: 2 in a worked solution of three digits, 1 in a careless
    one (a step written twice counts once, so repeating the careless step is not work).

    A model's response is untrusted text: anything else (no think block, prose, junk) counts what matches.
    """
    return len({"".join(match.split()) for match in _ADDITION.findall(response)})


def held_out_bucket(kind: str, key: Sequence[int], salt: str = DEFAULT_SPLIT_SALT) -> float:
    """A number in [0, 1) fixed by (kind, key, salt) alone: sha256, never Python's per-process ``hash``."""
    text = f"{kind}|{','.join(map(str, _check_key(key)))}|{salt}"
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_held_out(
    kind: str, key: Sequence[int], fraction: float = DEFAULT_HELD_OUT_FRACTION, salt: str = DEFAULT_SPLIT_SALT
) -> bool:
    return held_out_bucket(kind, key, salt) < fraction


@dataclass(frozen=True)
class KeySplit:
    """Every key of one kind and operand count, split in two; both tuples are sorted."""

    kind: str
    train: tuple[tuple[int, ...], ...]
    held_out: tuple[tuple[int, ...], ...]


def all_keys(kind: str, operands: int) -> list[tuple[int, ...]]:
    """Every key of ``kind`` with ``operands`` digits in the text, in sorted order."""
    return list(itertools.product(DIGITS, repeat=key_length(kind, operands)))


def split_keys(
    kind: str, operands: int, fraction: float = DEFAULT_HELD_OUT_FRACTION, salt: str = DEFAULT_SPLIT_SALT
) -> KeySplit:
    """All keys of ``kind``, split into train and held-out; raises if either side would be empty."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the held-out fraction must be strictly between 0 and 1, got {fraction!r}")
    train, held_out = [], []
    for key in all_keys(kind, operands):
        (held_out if is_held_out(kind, key, fraction, salt) else train).append(key)
    if not train or not held_out:
        side = "training" if not train else "held-out"
        raise ValueError(
            f"the held-out fraction {fraction} leaves no {side} {kind} problem among {len(train) + len(held_out)}; "
            "choose a fraction further from 0 and 1, or more operands"
        )
    return KeySplit(kind, tuple(train), tuple(held_out))


def draw_keys(rng: random.Random, keys: Sequence[tuple[int, ...]], count: int) -> list[tuple[int, ...]]:
    """``count`` keys drawn uniformly, with replacement: how training rows pick their problems."""
    return [rng.choice(keys) for _ in range(count)]


def cycle_keys(rng: random.Random, keys: Sequence[tuple[int, ...]], count: int) -> list[tuple[int, ...]]:
    """``count`` keys going through a fresh shuffle of ``keys`` each pass: how held-out rows pick theirs, so every
    held-out problem is asked as evenly as the count allows (each once, when ``count == len(keys)``)."""
    if count > 0 and not keys:
        raise ValueError("no keys to cycle through")
    chosen: list[tuple[int, ...]] = []
    while len(chosen) < count:
        order = list(keys)
        rng.shuffle(order)
        chosen.extend(order[: count - len(chosen)])
    return chosen
