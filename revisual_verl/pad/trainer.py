"""``trainer.v1.trainer_mode=pad_sync``: verl's synchronous v1 trainer, made exact for PAD.

Distilled mode (``algorithm.pad.compact=true``, the default): GRPO advantages depend only on the rewards
and groups, so the trainer selects right after the reward and runs old log-prob, reference log-prob,
the advantage write-back and the actor update on the distilled batch only: the selected rows
(:mod:`revisual_verl.pad.distill`), padded with verl's own padding rows to the multiple verl requires.
A row drawn m times is one row of weight m (``algorithm.pad.duplicates=weights``, the default) or m
stored copies (``copies``, the authors' trainer). The passes after generation cost in proportion to
the rows kept.

Masked mode (``compact=false``, or a config the distilled mode cannot serve: a critic, KL in the
reward, rollout correction): every row goes through the passes. verl's v1 trainer stores only
``advantages`` and ``returns`` after the estimator, so the rows PAD drops would still count in the
engine's token-mean denominator (summed from ``loss_mask``) and in the policy loss mask
(``response_mask``); this trainer writes both masks back for the selected rows.

Both modes tell the selection the step (tau schedule, seed of the draw) and run no actor update in a
step whose effective set is empty (the distilled mode then runs none of the three model passes). The
trainer also logs the ``revisual`` reward's parts under ``reward/``, which verl 0.9.1 keeps per sample
but never aggregates into training metrics.

With ``algorithm.presample.enable`` the trainer's dataloader skips, before rollout, prompts whose latest
groups were uniform, and each step's groups are fed back to it (:mod:`revisual_verl.presample`).
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
import torch
import transfer_queue as tq
from tensordict import TensorDict
from verl.trainer.ppo.v1.trainer_base import PPOTrainer, register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync
from verl.utils.debug import marked_timer

from revisual_verl.pad import distill
from revisual_verl.pad.config import PadConfig, check_loss_agg_mode
from revisual_verl.pad.distill import scale_rows
from revisual_verl.pad.estimator import PAD_ESTIMATOR, pad_select_rows, pop_latest_result, set_progress
from revisual_verl.pad.handoff import PadStepResult
from revisual_verl.presample import adapter as presample_adapter
from revisual_verl.presample.adapter import Presampler
from revisual_verl.presample.config import PresampleConfig
from revisual_verl.reward.metrics import reward_metrics

logger = logging.getLogger(__name__)

PAD_TRAINER_MODE = "pad_sync"


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
        presample = PresampleConfig.from_algorithm(config.algorithm)
        if presample.enable and (why_not := presample_adapter.unsupported(config)):
            raise ValueError(f"algorithm.presample.enable=true cannot run with {why_not}")
        self.presampler = Presampler(presample) if presample.enable else None
        self.pad_enabled = config.algorithm.adv_estimator == PAD_ESTIMATOR
        self.pad_skipped_steps = 0
        self._pad_skip_update = False
        self.pad_compact = False
        self.pad_settings: PadConfig | None = None
        if self.pad_enabled:
            # Fail at start, not at the first step after an hour of rollouts.
            pad = PadConfig.from_algorithm(config.algorithm)
            self.pad_settings = pad
            check_loss_agg_mode(config.actor_rollout_ref.actor.loss_agg_mode)
            why_not = distill.compact_unsupported(config, self.use_critic) if pad.compact else None
            if why_not:
                logger.warning("PAD: algorithm.pad.compact=true but %s; training in masked mode", why_not)
            self.pad_compact = pad.compact and why_not is None

    def _init_dataloader(self):
        super()._init_dataloader()
        if self.presampler is not None:
            self.train_dataloader = self.presampler.dataloader(self.train_dataloader, self.config.data)

    def _load_checkpoint(self):
        super()._load_checkpoint()
        # torchdata restores the state at the first fetch, and fails there with a bare assertion when the
        # state is of another sampler: say what differs before the first step.
        saved = getattr(self.train_dataloader, "next_iter_state", None)
        if saved and presample_adapter.saved_with_presample(saved) != (self.presampler is not None):
            raise RuntimeError(
                "the checkpoint's dataloader state was saved with algorithm.presample.enable="
                f"{str(self.presampler is None).lower()}; resume with the same setting (or start a new run)"
            )

    def _fetch_one_gen_batch(self):
        batch = super()._fetch_one_gen_batch()
        if self.presampler is not None:
            self.presampler.note_fetch(list(batch["uid"]))
        return batch

    def _presample_step(self, batch, trained_rows: int, metrics: dict) -> None:
        if self.presampler is not None:
            metrics.update(self.presampler.end_step(batch, trained_rows))

    def _announce_step(self, batch) -> None:
        # verl keys rows uid_session_index; index > 0 means an agent loop gave several outputs per
        # session, which verl's GRPO groups by session and a plain estimator cannot.
        multi = [key for key in batch.keys if not key.endswith("_0")]
        if multi:
            raise ValueError(
                f"adv_estimator=pad does not support agent loops with several outputs per session (e.g. {multi[0]})"
            )
        # global_steps counts from 1 and is restored from the checkpoint on resume.
        step, total = self.global_steps - 1, self.total_training_steps - 1
        set_progress(step, total, draw=self.local_trigger_step, settings=self.pad_settings)

    def _step_once(self, metrics: dict, timing_raw: dict, sample_batch_size: int):
        if not self.pad_compact:
            return super()._step_once(metrics, timing_raw, sample_batch_size)
        # Generation and the reward are verl's, hook for hook.
        with marked_timer("gen", timing_raw, color="red"):
            self.on_sample_begin()
            batch, sample_metrics = self.replay_buffer.sample(
                global_steps=self.global_steps, partition_id="train", batch_size=sample_batch_size
            )
            metrics.update(sample_metrics)
            batch.extra_info["temperature"] = self.config.actor_rollout_ref.rollout.temperature
            self.on_sample_end()
        if self.reward_loop_manager.reward_loop_worker_handles is None:
            with marked_timer("reward", timing_raw, color="yellow"):
                batch = self._compute_reward_colocate(batch, metrics=metrics)
        return self._train_distilled(batch, metrics, timing_raw)

    def _train_distilled(self, batch, metrics: dict, timing_raw: dict):
        """Select on the rewards, then old log-prob, ref log-prob, advantages and the actor update on the
        distilled batch only. Returns the step's rows for verl's metrics and clean-up."""
        with marked_timer("adv", timing_raw, color="brown"):
            result = self._select(batch)
        metrics.update(result.metrics)
        self._presample_step(batch, int((result.weights > 0).sum()), metrics)
        metrics["pad/compact"] = 1.0
        if result.empty:
            with marked_timer("adv", timing_raw, color="brown"):
                distill.put_row_advantages(batch.partition_id, batch.keys, torch.zeros(len(batch)))
            for phase in ("old_log_prob", "ref", "update_actor"):
                timing_raw.setdefault(phase, 0.0)
            metrics.update(self._kept_metrics(result, model_rows=0, padding_rows=0))
            self._note_skip(True, metrics)
            return batch

        weighted = self.pad_settings.duplicates == "weights"
        rows = distill.distinct_rows(result.weights) if weighted else distill.distilled_rows(result.weights)
        distilled = distill.put_distilled_batch(batch, rows)
        num_rows = len(distilled)
        # verl's own padding rows (all-zero masks) up to the multiple its engine needs, and its dp balance.
        distilled = self._balance_batch(distilled, metrics=metrics)
        metrics.update(self._kept_metrics(result, model_rows=len(distilled), padding_rows=len(distilled) - num_rows))
        step_rows = distill.bookkeeping_batch(batch, distilled)

        with marked_timer("old_log_prob", timing_raw, color="blue"):
            distilled = self._compute_old_log_prob(distilled, metrics=metrics)
        if self.use_reference_policy:
            with marked_timer("ref", timing_raw, color="olive"):
                distilled = self._compute_ref_log_prob(distilled, metrics=metrics)
        with marked_timer("adv", timing_raw, color="brown"):
            distilled = self._put_advantages(batch, distilled, result, weighted)
        if self.config.trainer.critic_warmup <= self.global_steps:
            with marked_timer("update_actor", timing_raw, color="red"):
                PPOTrainer._update_actor(self, distilled, metrics)
            self._note_skip(False, metrics)
        return step_rows

    def _select(self, batch) -> PadStepResult:
        """PAD's draw on the rollout's rewards and groups (nothing else is needed for GRPO)."""
        self._announce_step(batch)
        stored = tq.kv_batch_get(
            keys=batch.keys, partition_id=batch.partition_id, select_fields=["uid", "response_mask", "rm_scores"]
        )
        padded = stored.to_padded_tensor()
        uid = np.array(padded.pop("uid").tolist(), dtype=object)
        result = pad_select_rows(padded["rm_scores"], padded["response_mask"], uid, self.config.algorithm)
        pop_latest_result()
        return result

    @staticmethod
    def _put_advantages(batch, distilled, result: PadStepResult, weighted: bool):
        """Advantages of the distilled batch, 0 on verl's padding and on unselected rows. Copies: one draw's
        advantage on every copy. Weights: a row drawn m times gets m times one draw's advantage and a
        ``loss_mask`` that counts its tokens m times (the token-mean denominator), which is the loss of
        m copies. Returns the distilled batch naming every field now stored for it: verl's passes read
        only the fields their batch names, and verl's own reference pass does not add ``ref_log_prob``."""
        row_of = {key: i for i, key in enumerate(batch.keys)}
        seq_adv = torch.where(result.keep, result.seq_adv, torch.zeros_like(result.seq_adv))
        values, multiplicity = [], []
        for key, tag in zip(distilled.keys, distilled.tags, strict=True):
            source = key if key in row_of else tag.get("pad_copy_of")
            weight = float(result.weights[row_of[source]]) if (weighted and source is not None) else 1.0
            values.append(float(seq_adv[row_of[source]]) * weight if source is not None else 0.0)
            multiplicity.append(weight)
        if any(weight != 1.0 for weight in multiplicity):
            distill.scale_loss_mask(batch.partition_id, list(distilled.keys), torch.tensor(multiplicity))
        written = distill.put_row_advantages(batch.partition_id, list(distilled.keys), torch.tensor(values))
        in_distilled = set(distilled.keys)
        unselected = [key for key in batch.keys if key not in in_distilled]
        if unselected:
            distill.put_row_advantages(batch.partition_id, unselected, torch.zeros(len(unselected)))
        return dataclasses.replace(distilled, fields=list(written.fields or []))

    def _kept_metrics(self, result: PadStepResult, model_rows: int, padding_rows: int) -> dict:
        rows = result.metrics.get("pad/rows", 0.0)
        actor = self.config.actor_rollout_ref.actor
        mini_batch_rows = int(actor.ppo_mini_batch_size) * int(self.config.actor_rollout_ref.rollout.n)
        updates = 0 if result.empty else math.ceil(model_rows / mini_batch_rows) * int(actor.get("ppo_epochs", 1))
        return {
            "pad/kept_fraction": float(result.weights.sum()) / rows if rows else 0.0,
            "pad/model_rows": float(model_rows),
            "pad/padding_rows": float(padding_rows),
            # What the entropy warm-up counts; varies per step with PAD's effective set.
            "pad/optimizer_updates": float(updates),
        }

    def _note_skip(self, skip: bool, metrics: dict) -> None:
        if skip:
            self.pad_skipped_steps += 1
            logger.warning(
                "PAD: step %s has no row to train on; actor update skipped (%d skipped so far)",
                self.global_steps,
                self.pad_skipped_steps,
            )
        metrics["pad/skipped_step"] = float(skip)
        metrics["pad/skipped_steps"] = float(self.pad_skipped_steps)
        metrics["pad/compact"] = float(self.pad_compact)

    def _compute_advantage(self, batch, metrics: dict):
        """Masked mode: verl's advantage step with PAD as the estimator, then the mask write-back."""
        if not self.pad_enabled:
            self._presample_step(batch, sum(not tag.get("is_padding", False) for tag in batch.tags), metrics)
            return super()._compute_advantage(batch, metrics)
        self._announce_step(batch)
        batch = super()._compute_advantage(batch, metrics)
        result = pop_latest_result()
        if result is None:
            raise RuntimeError("adv_estimator=pad is set but the PAD estimator did not run")
        metrics.update(result.metrics)
        self._presample_step(batch, int((result.weights > 0).sum()), metrics)
        padding = sum(bool(tag.get("is_padding", False)) for tag in batch.tags)
        metrics.update(self._kept_metrics(result, model_rows=len(batch), padding_rows=padding))
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
        """Masked mode: verl's update, or none in a step whose effective set is empty."""
        if not self.pad_enabled:
            return super()._update_actor(batch, metrics)
        skip = self._pad_skip_update
        self._pad_skip_update = False
        self._note_skip(skip, metrics)
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
