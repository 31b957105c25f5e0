"""What the ``pad_sync`` trainer calls to skip prompts before rollout: the dataloader with the sampler, the
prompt ids of each fetched batch, and the step's outcomes fed back into the rule.

verl 0.9.1's v1 trainer has no hook that runs before generation (``trainer.v1.sampler.custom_sampler``
replaces the replay buffer, which picks among groups already generated). The registered ``pad_sync``
trainer owns its dataloader instead, through the same ``StatefulDataLoader`` verl builds, so verl's
checkpoint stores the sampler's state with the dataloader's.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import numpy as np
import transfer_queue as tq
from torchdata.stateful_dataloader import StatefulDataLoader

from revisual_verl.presample.config import PresampleConfig
from revisual_verl.presample.sampler import PresampleSampler

logger = logging.getLogger(__name__)


class Presampler:
    def __init__(self, settings: PresampleConfig):
        self.settings = settings
        self.sampler: PresampleSampler | None = None
        self.position_of_uid: dict[str, int] = {}
        self.unknown_groups = 0

    def dataloader(self, verl_loader: StatefulDataLoader, data_config) -> StatefulDataLoader:
        """verl's training dataloader rebuilt around the presample sampler, everything else as verl set it.

        Without prefetching: a worker would draw prompts ahead of the rule's latest history."""
        workers = int(data_config.get("dataloader_num_workers", 0) or 0)
        if workers:
            logger.warning(
                "algorithm.presample: data.dataloader_num_workers=%d is overridden to 0 for the training data "
                "(prefetching workers would draw prompts before the latest groups are known)",
                workers,
            )
        seed = data_config.get("seed", None)
        self.sampler = PresampleSampler(
            len(verl_loader.dataset),
            self.settings,
            shuffle=bool(data_config.get("shuffle", True)),
            data_seed=0 if seed is None else int(seed),
        )
        return StatefulDataLoader(
            dataset=verl_loader.dataset,
            batch_size=verl_loader.batch_size,
            num_workers=0,
            drop_last=verl_loader.drop_last,
            collate_fn=verl_loader.collate_fn,
            sampler=self.sampler,
        )

    def note_fetch(self, uids: list[str]) -> None:
        for uid, position in zip(uids, self.sampler.claim(len(uids)), strict=True):
            self.position_of_uid[str(uid)] = position

    def end_step(self, batch, trained_rows: int) -> dict[str, float]:
        """Record each generated group's kind in its prompt's history, adapt p; the step's metrics.

        Every generated group has its own kind, as PAD trains it (uniform: every score equal), and the share of
        uniform groups that moves p (and is reported) counts each one, those of prompts the sampler did not
        fetch included. A prompt fetched twice in one step (a batch that wraps into the next epoch when
        skipping leaves fewer prompts than a batch) adds one epoch to its history: the kind its groups share,
        or none (it taught) when they differ. Merging its responses instead would call two uniform groups
        at different scores (0.95 and 0.9) a group that teaches, which PAD trains none of."""
        kinds: list[str | None] = []
        kinds_of_position: dict[int, list[str | None]] = defaultdict(list)
        groups = group_outcomes(batch)
        for uid, (accuracies, scores) in groups.items():
            kind = self.sampler.kind_of(float(np.mean(accuracies)), float(np.ptp(scores)))
            kinds.append(kind)
            position = self.position_of_uid.pop(uid, None)
            if position is None:
                self.unknown_groups += 1
                logger.warning("algorithm.presample: group %s was not fetched by the sampler; not recorded", uid)
                continue
            kinds_of_position[position].append(kind)
        # Every prompt fetched for this step was generated in it (sync trainer, no group filtering):
        # nothing left is awaited.
        self.position_of_uid.clear()
        for position, position_kinds in kinds_of_position.items():
            shared = position_kinds[0] if len(set(position_kinds)) == 1 else None
            self.sampler.add_epoch(position, shared)
        generated = sum(len(scores) for _, scores in groups.values())
        return self.sampler.end_step(kinds, generated_rows=generated, trained_rows=trained_rows)


def saved_with_presample(state) -> bool:
    """Whether a saved dataloader state holds a presample sampler's state (found at any depth)."""
    if isinstance(state, dict):
        if {"streaks", "num_prompts", "p"} <= state.keys():
            return True
        return any(saved_with_presample(value) for value in state.values())
    return False


def unsupported(config) -> str | None:
    """Why presample cannot run with this config (None when it can)."""
    filter_groups = config.algorithm.get("filter_groups", None)
    if filter_groups is not None and filter_groups.get("enable", False):
        # verl's replay buffer drops the filtered groups (the uniform ones) before the trainer sees them.
        return "algorithm.filter_groups.enable=true (the filtered groups never reach the rule)"
    if config.trainer.v1.get("sampler", {}).get("sync_refill_failed_groups", False):
        return "trainer.v1.sampler.sync_refill_failed_groups=true (refilled groups never reach the rule)"
    if int(config.trainer.v1.get("sync", {}).get("parameter_sync_step", 1) or 1) != 1:
        return "trainer.v1.sync.parameter_sync_step != 1 (p moves once per update, not per step)"
    return None


def group_outcomes(batch) -> dict[str, tuple[list[float], list[float]]]:
    """Per prompt uid, each response's accuracy (the reward's ``acc`` where it reports one, as the revisual
    reward does, else its score) and its score. Padding rows are not responses."""
    keys = [key for key, tag in zip(batch.keys, batch.tags, strict=True) if not tag.get("is_padding", False)]
    if not keys:
        return {}
    stored = tq.kv_batch_get(
        keys=keys, partition_id=batch.partition_id, select_fields=["uid", "rm_scores", "extra_fields"]
    )
    uids = [str(uid) for uid in list(stored["uid"])]
    scores = [float(row.sum()) for row in stored["rm_scores"].unbind()]
    accuracies = list(scores)
    if "extra_fields" in stored.keys():
        for i, extra in enumerate(list(stored["extra_fields"])):
            info = extra.get("reward_extra_info", {}) if isinstance(extra, dict) else {}
            if "acc" in info:
                accuracies[i] = float(info["acc"])
    grouped: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for uid, accuracy, score in zip(uids, accuracies, scores, strict=True):
        grouped[uid][0].append(accuracy)
        grouped[uid][1].append(score)
    return dict(grouped)
