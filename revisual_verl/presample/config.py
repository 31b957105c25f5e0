"""The ``algorithm.presample`` settings (GRESO's rule and defaults), validated with messages that name the key.

Defaults and where they come from (GRESO, arXiv 2506.02177, and its verl-based code Infini-AI-Lab/GRESO):
skip probability 1 - max(p^z, 0.01) for a prompt with z uniform epochs in a row; p_easy and p_hard start at
0.5 and move by 0.01 per step within [0.05, 0.95] toward a target share of uniform groups, alpha = 0.25,
one third of it for easy groups and two thirds for hard ones; a group counts as easy when its mean
reward is at least 0.98 and as hard when it is at most 0.11. Here the mean is of the reward's accuracy part
(``acc``), and a group counts only when all its scores are equal: with the recipe's length and format terms a
group of correct answers can still differ in score, and then PAD trains on it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from revisual_verl.typed_settings import settings_from_section


@dataclasses.dataclass(frozen=True)
class PresampleConfig:
    enable: bool = False
    """Skip, before generation, prompts whose latest groups were all uniform."""
    easy_threshold: float = 0.98
    """A group whose mean accuracy is at least this is uniform-correct ("easy")."""
    hard_threshold: float = 0.11
    """A group whose mean accuracy is at most this is uniform-wrong ("hard")."""
    score_tolerance: float = 1e-6
    """A group is uniform only when its scores differ by at most this: then every GRPO advantage is 0."""
    target_uniform_share: float = 0.25
    """alpha: the share of generated groups allowed to be uniform; p moves to bring the share there."""
    easy_target_fraction: float = 1 / 3
    """The part of alpha given to easy groups (the rest is for hard ones)."""
    p_start: float = 0.5
    """Initial p_easy and p_hard: a prompt with z uniform epochs in a row is kept with probability p^z."""
    p_step: float = 0.01
    p_min: float = 0.05
    p_max: float = 0.95
    keep_floor: float = 0.01
    """Every prompt is drawn with at least this probability, so none is lost for good."""
    seed: int = 0
    """Seed of the skip draws, combined with the sampler's epoch and the prompt (the same on resume)."""

    def __post_init__(self):
        def bad(key: str, why: str):
            raise ValueError(f"algorithm.presample.{key}={getattr(self, key)!r}: {why}")

        for key in ("easy_threshold", "hard_threshold", "target_uniform_share", "easy_target_fraction"):
            value = getattr(self, key)
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                bad(key, "must be a number in [0, 1]")
        if not (math.isfinite(self.keep_floor) and 0.0 < self.keep_floor <= 1.0):
            bad("keep_floor", "must be a number in (0, 1]: with 0 a prompt could be skipped for good")
        if not self.hard_threshold < self.easy_threshold:
            bad("hard_threshold", f"must be below easy_threshold ({self.easy_threshold})")
        if not (math.isfinite(self.score_tolerance) and self.score_tolerance >= 0):
            bad("score_tolerance", "must be a finite number >= 0")
        if not (math.isfinite(self.p_step) and self.p_step > 0):
            bad("p_step", "must be a finite number > 0")
        if not (0.0 < self.p_min <= self.p_max <= 1.0):
            bad("p_min", f"must satisfy 0 < p_min <= p_max ({self.p_max}) <= 1")
        if not (self.p_min <= self.p_start <= self.p_max):
            bad("p_start", f"must lie in [p_min, p_max] = [{self.p_min}, {self.p_max}]")

    @property
    def target_easy_share(self) -> float:
        return self.target_uniform_share * self.easy_target_fraction

    @property
    def target_hard_share(self) -> float:
        return self.target_uniform_share * (1.0 - self.easy_target_fraction)

    @classmethod
    def from_algorithm(cls, algorithm: Any) -> PresampleConfig:
        section = None
        if algorithm is not None:
            section = algorithm.get("presample", None) if hasattr(algorithm, "get") else None
        return cls.from_mapping(section)

    @classmethod
    def from_mapping(cls, section: Mapping | None) -> PresampleConfig:
        return settings_from_section(cls, section, path="algorithm.presample")
