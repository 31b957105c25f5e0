"""``trainer.v1.trainer_mode=pad_sync``: verl's synchronous v1 trainer, made exact for PAD.

verl's v1 trainer stores only ``advantages`` and ``returns`` after the estimator, so the rows PAD
drops would still count in the engine's token-mean denominator (it is summed from ``loss_mask``)
and in the policy loss mask (``response_mask``). This trainer writes both masks back for the
selected rows, tells the estimator the step for the tau schedule, and skips the actor update of a
step whose effective set is empty. It also logs the ``revisual`` reward's parts under ``reward/``,
which verl 0.9.1 keeps per sample but never aggregates into training metrics.
"""

from __future__ import annotations

import logging

import torch
import transfer_queue as tq
from tensordict import TensorDict
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

from revisual_verl.pad.config import PadConfig, check_loss_agg_mode
from revisual_verl.pad.estimator import PAD_ESTIMATOR, pop_latest_result, set_progress
from revisual_verl.reward.metrics import reward_metrics

logger = logging.getLogger(__name__)

PAD_TRAINER_MODE = "pad_sync"


def scale_rows(mask: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """A copy of ``mask`` (jagged nested or padded, [batch, *]) with row i multiplied by ``weights[i]``."""
    weights = weights.to(mask.dtype)
    if not mask.is_nested:
        return mask * weights.view(-1, *([1] * (mask.dim() - 1)))
    offsets = mask.offsets()
    per_token = torch.repeat_interleave(weights.to(offsets.device), offsets.diff())
    return torch.nested.nested_tensor_from_jagged(mask.values() * per_token, offsets)


@register_trainer(PAD_TRAINER_MODE)
class PadSyncTrainer(PPOTrainerSync):
    """Synchronous v1 trainer that trains only on the rows PAD selects (any estimator works too)."""

    # verl's trainer branches on the literal mode "sync" (replay buffer, refill, checkpoints); pad_sync
    # must take every one of those branches, so the mode verl sees is always "sync".
    @property
    def trainer_mode(self) -> str:
        return "sync"

    @trainer_mode.setter
    def trainer_mode(self, _configured: str) -> None:
        pass

    def __init__(self, config):
        super().__init__(config)
        self.pad_enabled = config.algorithm.adv_estimator == PAD_ESTIMATOR
        self.pad_skipped_steps = 0
        self._pad_skip_update = False
        if self.pad_enabled:
            # Fail at start, not at the first step after an hour of rollouts.
            PadConfig.from_algorithm(config.algorithm)
            check_loss_agg_mode(config.actor_rollout_ref.actor.loss_agg_mode)

    def _compute_advantage(self, batch, metrics: dict):
        if not self.pad_enabled:
            return super()._compute_advantage(batch, metrics)
        # verl keys rows uid_session_index; index > 0 means an agent loop gave several outputs per
        # session, which verl's GRPO groups by session and a plain estimator cannot.
        multi = [key for key in batch.keys if not key.endswith("_0")]
        if multi:
            raise ValueError(
                f"adv_estimator=pad does not support agent loops with several outputs per session (e.g. {multi[0]})"
            )
        # global_steps counts from 1 and is restored from the checkpoint on resume.
        set_progress(self.global_steps - 1, self.total_training_steps - 1, draw=self.local_trigger_step)
        batch = super()._compute_advantage(batch, metrics)
        result = pop_latest_result()
        if result is None:
            raise RuntimeError("adv_estimator=pad is set but the PAD estimator did not run")
        metrics.update(result.metrics)
        self._pad_skip_update = result.empty
        if not result.empty:
            self._write_back_masks(batch, result.weights)
        return batch

    def _write_back_masks(self, batch, weights: torch.Tensor) -> None:
        """Store the selection: ``response_mask`` keeps the selected rows (the loss masks with it as a bool);
        ``loss_mask``, whose sum is the engine's token-mean denominator, counts each row's tokens as
        often as the row was drawn, so a draw with replacement trains exactly like a duplicated batch."""
        if bool((weights == 1).all()):
            return
        stored = tq.kv_batch_get(
            keys=batch.keys, partition_id=batch.partition_id, select_fields=["response_mask", "loss_mask"]
        )
        fields = {"response_mask": scale_rows(stored["response_mask"], (weights > 0).to(weights.dtype))}
        if "loss_mask" in stored.keys():
            fields["loss_mask"] = scale_rows(stored["loss_mask"], weights)
        tq.kv_batch_put(
            keys=batch.keys, partition_id=batch.partition_id, fields=TensorDict(fields, batch_size=len(batch))
        )

    def _update_actor(self, batch, metrics: dict):
        if not self.pad_enabled:
            return super()._update_actor(batch, metrics)
        skip = self._pad_skip_update
        self._pad_skip_update = False
        if skip:
            self.pad_skipped_steps += 1
            logger.warning(
                "PAD: step %s has no row to train on; actor update skipped (%d skipped so far)",
                self.global_steps,
                self.pad_skipped_steps,
            )
        metrics["pad/skipped_step"] = float(skip)
        metrics["pad/skipped_steps"] = float(self.pad_skipped_steps)
        return batch if skip else super()._update_actor(batch, metrics)

    def _compute_metrics(self, batch, metrics, timing_raw, global_steps, epoch):
        super()._compute_metrics(batch, metrics, timing_raw, global_steps, epoch)
        metrics.update(self._reward_extra_metrics(batch))

    def _reward_extra_metrics(self, batch) -> dict:
        """Step means of the reward manager's per-sample extra info (stored in each row's extra_fields)."""
        keys = [key for key, tag in zip(batch.keys, batch.tags, strict=True) if not tag.get("is_padding", False)]
        if not keys:
            return {}
        stored = tq.kv_batch_get(keys=keys, partition_id=batch.partition_id, select_fields=["extra_fields"])
        if "extra_fields" not in stored.keys():
            # Rows scored by a colocated reward model store their extra info as fields of their own.
            return {}
        per_key: dict[str, list] = {}
        # Depending on the storage backend this is a list, a NonTensorStack or an array; list() reads all.
        for extra in list(stored["extra_fields"]):
            info = extra.get("reward_extra_info", {}) if isinstance(extra, dict) else {}
            for key, value in info.items():
                per_key.setdefault(key, []).append(value)
        return reward_metrics(per_key)
