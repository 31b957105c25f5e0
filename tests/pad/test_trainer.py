"""trainer.v1.trainer_mode=pad_sync with verl's real v1 trainer class, TransferQueue and Ray on CPU."""

import logging

import numpy as np
import pytest
import torch
from helpers.plugin_config import compose_plugin_config
from tensordict import TensorDict
from verl import DataProto
from verl.trainer.ppo.ray_trainer import compute_advantage
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer
from verl.trainer.ppo.v1.trainer_base import get_trainer_cls
from verl.utils import tensordict_utils as tu
from verl.workers.utils.padding import left_right_2_no_padding

from revisual_verl.pad.estimator import pop_latest_result, set_progress
from revisual_verl.pad.selection import pad_tau
from revisual_verl.pad.trainer import PadSyncTrainer, scale_rows

N = 4
BASE = [
    "data.train_batch_size=3",
    "actor_rollout_ref.rollout.n=4",
    "actor_rollout_ref.actor.ppo_mini_batch_size=3",
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4",
    "transfer_queue.enable=true",
    "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",
]


def compose_config(extra=()):
    return compose_plugin_config(overrides=BASE + list(extra))


class RecordingActorGroup:
    """Stands in for the GPU actor worker group: reads the step's rows from TransferQueue as the
    engine does and records the token-mean denominator it would use (sum of loss_mask)."""

    def __init__(self, tq):
        self.tq = tq
        self.calls = []

    def update_actor(self, batch):
        stored = self.tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id)
        self.calls.append(
            {
                "batch_num_tokens": int(stored["loss_mask"].values().sum()),
                "response_mask": stored["response_mask"].values().clone(),
                "advantages": stored["advantages"].values().clone(),
            }
        )
        return {"metrics": {"mfu": 0.0, "pg_loss": 0.0}}


def put_step(tq, step_name, scores_per_group, lengths_seed=0):
    """Rows as verl's agent loop stores them: key uid_session_index, jagged masks, token-level rm_scores."""
    gen = torch.Generator().manual_seed(lengths_seed)
    keys, masks, scores, uids = [], [], [], []
    for g, group_scores in enumerate(scores_per_group):
        for s, score in enumerate(group_scores):
            length = int(torch.randint(2, 7, (1,), generator=gen))
            keys.append(f"{step_name}g{g}_{s}_0")
            uids.append(f"{step_name}g{g}")
            masks.append(torch.ones(length, dtype=torch.int64))
            scores.append(torch.cat([torch.zeros(length - 1), torch.tensor([float(score)])]))
    nested = lambda ts: torch.nested.as_nested_tensor(ts, layout=torch.jagged)  # noqa: E731
    fields = tu.get_tensordict(
        {
            "response_mask": nested(masks),
            "loss_mask": nested([m.clone() for m in masks]),
            "rm_scores": nested(scores),
            "uid": uids,
        }
    )
    return tq.kv_batch_put(keys=keys, partition_id="train", fields=fields, tags=[{"is_padding": False}] * len(keys))


def make_trainer(tq, extra=()):
    trainer = PadSyncTrainer(compose_config(extra))
    trainer.actor_rollout_wg = RecordingActorGroup(tq)
    return trainer


def test_registered_and_behaves_as_verls_sync_mode(transfer_queue):
    assert get_trainer_cls("pad_sync") is PadSyncTrainer
    trainer = make_trainer(transfer_queue)
    assert trainer.trainer_mode == "sync"
    assert type(trainer.replay_buffer) is ReplayBuffer


def test_writes_selection_back_to_both_masks_and_the_update_sees_it(transfer_queue):
    tq = transfer_queue
    trainer = make_trainer(tq)
    # Resumed run: verl restored global_steps from the checkpoint; tau must follow it.
    trainer.global_steps, trainer.total_training_steps = 51, 101
    batch = put_step(tq, "s1", [[1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 0, 0]])
    before = tq.kv_batch_get(keys=batch.keys, partition_id="train", select_fields=["response_mask"])
    lengths = before["response_mask"].offsets().diff()

    metrics = {}
    batch = trainer._compute_advantage(batch, metrics)
    assert metrics["pad/tau"] == pytest.approx(pad_tau(50, 100))
    assert metrics["pad/rows"] == 12 and metrics["pad/selected_rows"] == 8

    stored = tq.kv_batch_get(
        keys=batch.keys, partition_id="train", select_fields=["response_mask", "loss_mask", "advantages"]
    )
    row_kept = [bool(stored["response_mask"][i].sum() > 0) for i in range(12)]
    assert row_kept == [False] * 4 + [True] * 8
    for i in range(12):
        assert torch.equal(stored["loss_mask"][i], stored["response_mask"][i])
        assert len(stored["response_mask"][i]) == lengths[i]  # the jagged layout is untouched
        if not row_kept[i]:
            assert torch.count_nonzero(stored["advantages"][i]) == 0

    trainer._update_actor(batch, metrics)
    (call,) = trainer.actor_rollout_wg.calls
    assert call["batch_num_tokens"] == int(lengths[4:].sum())
    assert metrics["pad/skipped_step"] == 0.0


def test_the_pad_settings_are_parsed_once_at_start(transfer_queue, monkeypatch):
    from revisual_verl.pad.config import PadConfig

    trainer = make_trainer(transfer_queue, ["algorithm.pad.tau_start=0.8", "algorithm.pad.tau_end=0.4"])
    assert trainer.pad_settings == PadConfig.from_mapping({"tau_start": 0.8, "tau_end": 0.4})
    parses = []
    original = PadConfig.from_algorithm.__func__
    monkeypatch.setattr(PadConfig, "from_algorithm", classmethod(lambda cls, a: parses.append(a) or original(cls, a)))
    trainer.global_steps, trainer.total_training_steps = 1, 3
    batch = put_step(transfer_queue, "s9", [[1, 0, 0, 0], [1, 1, 0, 0]])
    metrics = {}
    trainer._compute_advantage(batch, metrics)
    assert parses == [] and metrics["pad/tau"] == pytest.approx(0.8)


def test_empty_effective_set_skips_the_update(transfer_queue, caplog):
    tq = transfer_queue
    trainer = make_trainer(tq)
    trainer.global_steps, trainer.total_training_steps = 3, 10
    batch = put_step(tq, "s2", [[1, 1, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]])
    metrics = {}
    batch = trainer._compute_advantage(batch, metrics)
    with caplog.at_level(logging.WARNING, logger="revisual_verl.pad.trainer"):
        trainer._update_actor(batch, metrics)
    assert trainer.actor_rollout_wg.calls == []
    assert metrics["pad/skipped_step"] == 1.0 and metrics["pad/skipped_steps"] == 1.0
    assert metrics["pad/empty_effective_set"] == 1.0
    assert any("skipped" in r.message for r in caplog.records)
    # Nothing is trained, so nothing is masked: verl's metrics of this step stay finite.
    stored = tq.kv_batch_get(keys=batch.keys, partition_id="train", select_fields=["loss_mask"])
    assert int(stored["loss_mask"].values().sum()) > 0

    # The next step trains again.
    batch = put_step(tq, "s3", [[1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1]])
    trainer._compute_advantage(batch, metrics)
    trainer._update_actor(batch, metrics)
    assert len(trainer.actor_rollout_wg.calls) == 1 and metrics["pad/skipped_steps"] == 1.0


def test_seq_mean_loss_fails_at_start(transfer_queue):
    with pytest.raises(ValueError, match="loss_agg_mode"):
        PadSyncTrainer(compose_config(["actor_rollout_ref.actor.loss_agg_mode=seq-mean-token-mean"]))


def test_bad_pad_key_fails_at_start(transfer_queue):
    with pytest.raises(ValueError, match=r"algorithm\.pad\.rho"):
        PadSyncTrainer(compose_config(["algorithm.pad.rho=-1"]))


def test_other_estimators_pass_through_untouched(transfer_queue):
    tq = transfer_queue
    trainer = make_trainer(tq, ["algorithm.adv_estimator=grpo"])
    trainer.global_steps, trainer.total_training_steps = 1, 10
    batch = put_step(tq, "s4", [[1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 0, 0]])
    metrics = {}
    trainer._compute_advantage(batch, metrics)
    trainer._update_actor(batch, metrics)
    assert not any(k.startswith("pad/") for k in metrics)
    assert trainer.actor_rollout_wg.calls[0]["batch_num_tokens"] > 0
    stored = tq.kv_batch_get(keys=batch.keys, partition_id="train", select_fields=["loss_mask"])
    assert all(int(stored["loss_mask"][i].sum()) > 0 for i in range(12))


def test_scale_rows_on_padded_and_nested_masks():
    padded = torch.ones(3, 4, dtype=torch.long)
    weights = torch.tensor([1.0, 0.0, 3.0])
    assert scale_rows(padded, weights).sum(-1).tolist() == [4, 0, 12] and padded.sum() == 12
    nested = torch.nested.as_nested_tensor([torch.ones(2), torch.ones(3), torch.ones(1)], layout=torch.jagged)
    out = scale_rows(nested, weights)
    assert [int(out[i].sum()) for i in range(3)] == [2, 0, 3]
    assert out.offsets().tolist() == nested.offsets().tolist()


def test_with_replacement_loss_mask_counts_each_draw(transfer_queue):
    tq = transfer_queue
    trainer = make_trainer(tq, ["algorithm.pad.replacement=true", "algorithm.pad.rho=1.5"])
    trainer.global_steps, trainer.total_training_steps = 1, 10
    batch = put_step(tq, "s6", [[1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 0, 0]])
    lengths = (
        tq.kv_batch_get(keys=batch.keys, partition_id="train", select_fields=["response_mask"])["response_mask"]
        .offsets()
        .diff()
    )
    metrics = {}
    trainer._compute_advantage(batch, metrics)
    stored = tq.kv_batch_get(keys=batch.keys, partition_id="train", select_fields=["response_mask", "loss_mask"])
    draws = [int(stored["loss_mask"][i].max()) if lengths[i] else 0 for i in range(12)]
    assert sum(draws) == 18  # ceil(1.5 * 12)
    assert max(draws) > 1 and draws[:4] == [0, 0, 0, 0]
    for i in range(12):
        assert int(stored["response_mask"][i].max()) == int(draws[i] > 0)
    trainer._update_actor(batch, metrics)
    assert trainer.actor_rollout_wg.calls[0]["batch_num_tokens"] == sum(d * int(n) for d, n in zip(draws, lengths))


def test_several_outputs_per_session_are_refused(transfer_queue):
    tq = transfer_queue
    trainer = make_trainer(tq)
    trainer.global_steps, trainer.total_training_steps = 1, 10
    batch = put_step(tq, "s7", [[1, 0, 1, 0]])
    batch.keys[1] = batch.keys[1][:-2] + "_1"
    with pytest.raises(ValueError, match="several outputs per session"):
        trainer._compute_advantage(batch, {})


def test_legacy_trainer_path_masks_the_loss_through_verls_conversion():
    # trainer.use_v1=false: the estimator's in-place mask is what verl's legacy _update_actor converts
    # into the engine's loss_mask (left_right_2_no_padding).
    rows, width, prompt = 8, 5, 3
    rewards = torch.zeros(rows, width)
    rewards[:, -1] = torch.tensor([1, 1, 1, 1, 1, 0, 0, 0], dtype=torch.float32)
    response_mask = torch.ones(rows, width, dtype=torch.long)
    data = DataProto(
        batch=TensorDict(
            {
                "token_level_rewards": rewards,
                "response_mask": response_mask,
                "input_ids": torch.randint(1, 50, (rows, prompt + width)),
                "attention_mask": torch.ones(rows, prompt + width, dtype=torch.long),
                "position_ids": torch.arange(prompt + width).repeat(rows, 1),
                "responses": torch.randint(1, 50, (rows, width)),
            },
            batch_size=rows,
        ),
        non_tensor_batch={"uid": np.array(["a"] * 4 + ["b"] * 4, dtype=object)},
    )
    cfg = compose_plugin_config(overrides=BASE)
    set_progress(0, 1)
    data = compute_advantage(data, adv_estimator="pad", config=cfg.algorithm)
    pop_latest_result()
    td = left_right_2_no_padding(data.batch)
    loss_mask = td["loss_mask"]
    per_row = torch.stack([loss_mask[i].sum() for i in range(rows)])
    assert per_row.tolist()[:4] == [0, 0, 0, 0]
    assert all(v > 0 for v in per_row.tolist()[4:])


def test_pad_metrics_reach_verls_console_logger(transfer_queue, capsys):
    from verl.trainer.ppo.v1.utils import MetricsAggregator
    from verl.utils.tracking import Tracking

    tq = transfer_queue
    trainer = make_trainer(tq)
    trainer.global_steps, trainer.total_training_steps = 2, 10
    batch = put_step(tq, "s5", [[1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0]])
    metrics = {}
    trainer._compute_advantage(batch, metrics)
    trainer._update_actor(batch, metrics)
    # The path PPOTrainer.step/fit takes: aggregate the step's metrics, then Tracking.log.
    aggregator = MetricsAggregator()
    aggregator.add_step_metrics(metrics, sample_count=12)
    logger = Tracking(project_name="revisual-test", experiment_name="pad", default_backend=["console"])
    logger.log(data=aggregator.get_aggregated_metrics(), step=2)
    printed = capsys.readouterr().out
    for key in (
        "pad/effective_fraction",
        "pad/selected_rows",
        "pad/distinct_selected_rows",
        "pad/abs_adv_mean_selected",
        "pad/abs_adv_mean_all",
        "pad/tau",
        "pad/skipped_steps",
    ):
        assert key in printed, key


def test_reward_parts_are_logged_under_reward(transfer_queue):
    tq = transfer_queue
    trainer = make_trainer(tq)
    keys = ["rw_0_0", "rw_1_0", "rw_2_0"]
    infos = [
        {"reward_extra_info": {"acc": 1.0, "length_reward": 0.5, "timed_out": False, "num_tokens": 10}},
        {"reward_extra_info": {"acc": 0.0, "length_reward": 1.0, "timed_out": True, "num_tokens": 30}},
        {"reward_extra_info": {"acc": 1.0, "length_reward": 0.0, "timed_out": False, "num_tokens": 20}},
    ]
    fields = tu.get_tensordict({"response_mask": torch.ones(3, 2, dtype=torch.long), "extra_fields": infos})
    tags = [{"is_padding": False}, {"is_padding": False}, {"is_padding": True}]
    batch = tq.kv_batch_put(keys=keys, partition_id="train", fields=fields, tags=tags)
    metrics = trainer._reward_extra_metrics(batch)
    # The padding row is left out.
    assert metrics["reward/accuracy/mean"] == pytest.approx(0.5)
    assert metrics["reward/length_reward/mean"] == pytest.approx(0.75)
    assert metrics["reward/num_tokens/mean"] == pytest.approx(20.0)
    assert metrics["reward/timeouts"] == 1.0


def test_rows_without_extra_fields_log_no_reward_parts(transfer_queue):
    tq = transfer_queue
    batch = tq.kv_batch_put(
        keys=["nx_0_0"], partition_id="train", fields=tu.get_tensordict({"response_mask": torch.ones(1, 2)}), tags=[{}]
    )
    assert make_trainer(tq)._reward_extra_metrics(batch) == {}
