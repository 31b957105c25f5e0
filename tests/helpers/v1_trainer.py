"""Stand-ins and fixtures for tests that drive verl's v1 trainer (TransferQueue, worker groups, replay buffer)."""

from types import SimpleNamespace

import pytest
import torch
from verl.utils import tensordict_utils as tu

from helpers.plugin_config import compose_plugin_config

TRANSFER_QUEUE = ["transfer_queue.enable=true", "transfer_queue.backend.SimpleStorage.num_data_storage_units=1"]


@pytest.fixture(scope="module")
def transfer_queue(ray_local):
    """verl's TransferQueue on the local Ray instance, with one storage unit (what the v1 trainer reads)."""
    import transfer_queue as tq

    config = compose_plugin_config(overrides=TRANSFER_QUEUE)
    tq.init(config.transfer_queue)
    yield tq
    tq.close()


class FakeWorkers:
    """Actor (and reference) worker group: log-probs from the stored tokens, update records what it trains on."""

    def __init__(self, tq):
        self.tq = tq
        self._dispatch_info = {"actor": [0]}  # one data-parallel rank
        self.passes = []

    def _log_probs(self, name, batch):
        stored = self.tq.kv_batch_get(
            keys=batch.keys, partition_id=batch.partition_id, select_fields=["prompts", "responses"]
        )
        # A function of the row's own tokens only, as a model's log-probs are: over prompt + response,
        # position t holding the log-prob of token t + 1 (what verl's response_from_nested expects).
        rows = []
        for prompt, response in zip(stored["prompts"].unbind(), stored["responses"].unbind(), strict=True):
            tokens = torch.cat([prompt, response])
            rows.append(-0.01 * torch.cat([tokens[1:], tokens[:1]]).float())
        log_probs = torch.nested.as_nested_tensor(rows, layout=torch.jagged)
        entropy = torch.nested.as_nested_tensor([torch.ones_like(r) for r in rows], layout=torch.jagged)
        self.tq.kv_batch_put(
            keys=batch.keys,
            partition_id=batch.partition_id,
            fields=tu.get_tensordict({"log_probs": log_probs, "entropy": entropy}),
        )
        self.passes.append((name, list(batch.keys)))
        return batch

    def compute_log_prob(self, batch):
        return self._log_probs("old_log_prob", batch)

    def compute_ref_log_prob(self, batch):
        return self._log_probs("ref", batch)

    def update_actor(self, batch):
        # As verl's worker dispatch does: only the fields the batch names reach the actor.
        stored = self.tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=batch.fields)
        self.passes.append(("update_actor", list(batch.keys)))
        self.update = {
            "keys": list(batch.keys),
            "tags": list(batch.tags),
            "extra_info": dict(batch.extra_info),
            "stored": stored,
        }
        return {"metrics": {"mfu": 0.0, "pg_loss": 0.0}}


class OneBatchReplayBuffer:
    def __init__(self, batch):
        self.batch = batch

    def sample(self, global_steps, partition_id, batch_size):
        return self.batch, {}


def wire(trainer, tq, batch):
    """Stand-ins for what PPOTrainer.init builds (worker groups, tokenizer, replay buffer, rollout hooks), so
    ``trainer._step_once`` runs verl's step on ``batch``, already in TransferQueue with its rewards."""
    workers = FakeWorkers(tq)
    trainer.actor_rollout_wg = trainer.ref_policy_wg = workers
    trainer.ref_in_actor = False
    trainer.tokenizer = SimpleNamespace(eos_token_id=2, pad_token_id=0)
    trainer.replay_buffer = OneBatchReplayBuffer(batch)
    trainer.reward_loop_manager = SimpleNamespace(reward_loop_worker_handles=["rewards computed during rollout"])
    trainer.checkpoint_manager = SimpleNamespace(sleep_replicas=lambda: None)
    trainer.curr_step_profile = False
    return workers


@pytest.fixture(scope="session")
def wire_pad_trainer():
    return wire
