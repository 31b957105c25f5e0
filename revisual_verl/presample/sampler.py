"""A dataloader sampler that skips, before generation, the prompts GRESO's rule predicts will be uniform.

The sampler walks a seeded permutation of the dataset, epoch after epoch without end, and yields the
prompts it does not skip, so every batch the dataloader builds is full. What it knows of each prompt
(the rule reads only its latest streak: the kind of its uniform groups and how many epochs in a row),
the adaptive p_easy and p_hard and its place in the permutation are its ``state_dict``: torchdata's
``StatefulDataLoader`` stores it in verl's checkpoint (``data.pt``) and restores it on resume, so a resumed
run skips what the uninterrupted run skips. The streaks of a pass are recorded after the step that generated
them, so at a pass's end the next pass's first draws may not see the latest batch's groups yet.

A prompt's id is its position in the training dataset: stable across shuffling and resume for the
same data files and filters. The trainer learns which prompts a fetched batch holds from ``claim``
(positions in the order they were yielded; batches are fetched in that order).
"""

from __future__ import annotations

import collections
from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

from revisual_verl.presample.config import PresampleConfig
from revisual_verl.presample.rule import EASY, HARD, adjust_p, extend_streak, group_kind, skip_probability


class PresampleSampler(Sampler[int]):
    def __init__(self, num_prompts: int, settings: PresampleConfig, shuffle: bool = True, data_seed: int = 0):
        if num_prompts <= 0:
            raise ValueError("algorithm.presample: the training dataset is empty")
        self.num_prompts = num_prompts
        self.settings = settings
        self.shuffle = shuffle
        self.data_seed = data_seed
        self.epoch = 0
        self.cursor = 0
        # Prompts with a uniform streak only: (kind, epochs in a row).
        self.streaks: dict[int, tuple[str, int]] = {}
        self.p = {EASY: settings.p_start, HARD: settings.p_start}
        self.pending: collections.deque[int] = collections.deque()
        self.considered = 0
        self.skipped = {EASY: 0, HARD: 0}
        self.generated_rows = 0
        self.trained_rows = 0
        self._order_epoch, self._order = -1, np.arange(0)

    def __len__(self) -> int:
        return self.num_prompts

    def __iter__(self) -> Iterator[int]:
        # Reads its place from the sampler at every draw, so an iterator made after load_state_dict resumes.
        while True:
            if self.cursor >= self.num_prompts:
                self.epoch += 1
                self.cursor = 0
            position = int(self._epoch_order()[self.cursor])
            self.cursor += 1
            self.considered += 1
            kind = self.skip_kind(position)
            if kind is not None:
                self.skipped[kind] += 1
                continue
            self.pending.append(position)
            yield position

    def _epoch_order(self) -> np.ndarray:
        if self._order_epoch != self.epoch:
            if self.shuffle:
                self._order = np.random.default_rng([self.data_seed, self.epoch]).permutation(self.num_prompts)
            else:
                self._order = np.arange(self.num_prompts)
            self._order_epoch = self.epoch
        return self._order

    def streak_of(self, position: int) -> tuple[str | None, int]:
        return self.streaks.get(position, (None, 0))

    def skip_kind(self, position: int) -> str | None:
        """The kind of streak for which ``position`` is skipped in this epoch, or None when it is drawn.

        The draw is seeded by (seed, epoch, prompt): the same decision for the same history on resume.
        """
        kind, z = self.streak_of(position)
        if kind is None:
            return None
        chance = skip_probability(self.p[kind], z, self.settings.keep_floor)
        draw = np.random.default_rng([self.settings.seed, self.epoch, position]).random()
        return kind if draw < chance else None

    def claim(self, count: int) -> list[int]:
        """The positions of the next ``count`` prompts fetched, in the order the batch holds them."""
        if count > len(self.pending):
            raise RuntimeError(
                f"algorithm.presample: a batch of {count} prompts was fetched but the sampler yielded "
                f"{len(self.pending)} unclaimed; the dataloader must not prefetch (dataloader_num_workers=0)"
            )
        return [self.pending.popleft() for _ in range(count)]

    def kind_of(self, mean_accuracy: float, score_spread: float = 0.0) -> str | None:
        """The kind of a group with this mean accuracy and spread of scores (easy, hard or None)."""
        s = self.settings
        return group_kind(mean_accuracy, s.easy_threshold, s.hard_threshold, score_spread, s.score_tolerance)

    def record(self, position: int, mean_accuracy: float, score_spread: float = 0.0) -> str | None:
        """Add this epoch's group of ``position`` to its history; returns the group's kind."""
        kind = self.kind_of(mean_accuracy, score_spread)
        self.add_epoch(position, kind)
        return kind

    def add_epoch(self, position: int, kind: str | None) -> None:
        """One more epoch of ``position``'s history, whose groups were of ``kind`` (None: they taught)."""
        streak = extend_streak(self.streak_of(position), kind)
        if streak[0] is None:
            self.streaks.pop(position, None)
        else:
            self.streaks[position] = streak

    def end_step(self, group_kinds: list[str | None], generated_rows: int, trained_rows: int) -> dict[str, float]:
        """Move p_easy and p_hard toward the target shares of uniform groups; the step's metrics.

        ``group_kinds``: the kind of every group generated in the step, as PAD sees them (one per fetch)."""
        groups = max(1, len(group_kinds))
        share = {kind: sum(k == kind for k in group_kinds) / groups for kind in (EASY, HARD)}
        target = {EASY: self.settings.target_easy_share, HARD: self.settings.target_hard_share}
        for kind in (EASY, HARD):
            s = self.settings
            self.p[kind] = adjust_p(self.p[kind], share[kind], target[kind], s.p_step, s.p_min, s.p_max)
        self.generated_rows += generated_rows
        self.trained_rows += trained_rows
        considered = max(1, self.considered)
        metrics = {
            "presample/skipped_share": (self.skipped[EASY] + self.skipped[HARD]) / considered,
            "presample/skipped_easy_share": self.skipped[EASY] / considered,
            "presample/skipped_hard_share": self.skipped[HARD] / considered,
            "presample/uniform_share": share[EASY] + share[HARD],
            "presample/uniform_easy_share": share[EASY],
            "presample/uniform_hard_share": share[HARD],
            "presample/p_easy": self.p[EASY],
            "presample/p_hard": self.p[HARD],
            "presample/epoch": float(self.epoch),
            "presample/rollouts_per_trained_row": self.generated_rows / max(1, self.trained_rows),
        }
        self.considered, self.skipped = 0, {EASY: 0, HARD: 0}
        return metrics

    def state_dict(self) -> dict:
        return {
            "num_prompts": self.num_prompts,
            "epoch": self.epoch,
            "cursor": self.cursor,
            "streaks": {position: list(streak) for position, streak in self.streaks.items()},
            "p": dict(self.p),
            "pending": list(self.pending),
            "considered": self.considered,
            "skipped": dict(self.skipped),
            "generated_rows": self.generated_rows,
            "trained_rows": self.trained_rows,
        }

    def load_state_dict(self, state: dict) -> None:
        if state["num_prompts"] != self.num_prompts:
            raise ValueError(
                f"algorithm.presample: the checkpoint's sampler covers {state['num_prompts']} prompts, the "
                f"training dataset has {self.num_prompts}; prompt ids would not match (same data files and filters?)"
            )
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])
        self.streaks = {int(position): (kind, int(count)) for position, (kind, count) in state["streaks"].items()}
        self.p = dict(state["p"])
        self.pending = collections.deque(state["pending"])
        self.considered, self.skipped = int(state["considered"]), dict(state["skipped"])
        self.generated_rows, self.trained_rows = int(state["generated_rows"]), int(state["trained_rows"])
