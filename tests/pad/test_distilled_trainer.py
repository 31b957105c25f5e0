"""pad_sync's distilled mode (algorithm.pad.compact=true) with verl's real v1 trainer, TransferQueue and Ray on CPU.

The worker groups are stand-ins that read and write TransferQueue as verl's workers do and record which rows
each model pass saw; everything else (the step, verl's padding and balancing, the old/ref log-prob
write-backs, the update's mini-batch settings) is verl's code.
"""

import logging

import pytest
import torch
from helpers.plugin_config import compose_plugin_config
from verl.utils import tensordict_utils as tu

from revisual_verl.pad.distill import COPY_MARK, copy_key, distilled_rows
from revisual_verl.pad.group_advantage import grpo_scalar_advantage
from revisual_verl.pad.trainer import PadSyncTrainer

N = 4
SCORES = [[1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 0, 0]]
BASE = [
    "data.train_batch_size=3",
    f"actor_rollout_ref.rollout.n={N}",
    "actor_rollout_ref.actor.ppo_mini_batch_size=1",  # 4 rows per optimizer update
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4",
    "actor_rollout_ref.actor.use_kl_loss=true",  # so the reference pass runs
    "actor_rollout_ref.rollout.calculate_log_probs=false",
    "transfer_queue.enable=true",
    "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",
]


def compose_config(extra=()):
    return compose_plugin_config(overrides=BASE + list(extra))


def put_step(tq, step_name, scores_per_group, seed=0):
    """Rows as verl's agent loop stores them (key uid_session_index, jagged fields, token-level rm_scores)."""
    gen = torch.Generator().manual_seed(seed)
    keys, tags, rows = [], [], {"prompts": [], "responses": [], "response_mask": [], "rm_scores": [], "uid": []}
    for g, group_scores in enumerate(scores_per_group):
        prompt = torch.randint(3, 100, (5,), generator=gen)
        for s, score in enumerate(group_scores):
            length = int(torch.randint(2, 7, (1,), generator=gen))
            keys.append(f"{step_name}g{g}_{s}_0")
            tags.append({"is_padding": False, "seq_len": 5 + length, "min_global_steps": 0, "max_global_steps": 0})
            rows["prompts"].append(prompt)
            rows["responses"].append(torch.randint(3, 100, (length,), generator=gen))
            rows["response_mask"].append(torch.ones(length, dtype=torch.int64))
            rows["rm_scores"].append(torch.cat([torch.zeros(length - 1), torch.tensor([float(score)])]))
            rows["uid"].append(f"{step_name}g{g}")
    fields = {
        name: values if name == "uid" else torch.nested.as_nested_tensor(values, layout=torch.jagged)
        for name, values in rows.items()
    }
    fields["loss_mask"] = torch.nested.as_nested_tensor(list(rows["response_mask"]), layout=torch.jagged)
    # Non-tensor fields as the agent loop and the reward manager store them travel with a copied row.
    fields["raw_prompt"] = [[{"role": "user", "content": f"question {uid}"}] for uid in rows["uid"]]
    fields["extra_fields"] = [{"reward_extra_info": {"acc": float(k)}} for k in range(len(keys))]
    return tq.kv_batch_put(keys=keys, partition_id="train", fields=tu.get_tensordict(fields), tags=tags)


def make_trainer(tq, wire, batch, extra=(), step=51):
    trainer = PadSyncTrainer(compose_config(extra))
    trainer.global_steps, trainer.total_training_steps = step, 101
    return trainer, wire(trainer, tq, batch)


def run_step(tq, wire, name, extra=(), scores=SCORES, step=51):
    batch = put_step(tq, name, scores)
    trainer, workers = make_trainer(tq, wire, batch, extra, step)
    metrics, timing = {}, {}
    out = trainer._step_once(metrics, timing, sample_batch_size=len(scores))
    return batch, out, trainer, workers, metrics, timing


def stored(tq, keys, fields):
    return tq.kv_batch_get(keys=keys, partition_id="train", select_fields=fields)


def source_of(key):
    """The rollout key a (possibly copied) distilled row came from."""
    if COPY_MARK not in key:
        return key
    head, rest = key.split("_", 1)
    return head.split(COPY_MARK)[0] + "_" + rest


def grpo(scores):
    flat = torch.tensor([float(s) for group in scores for s in group])
    return grpo_scalar_advantage(flat, torch.arange(len(flat)) // N, epsilon=1e-6)


def test_distilled_rows_repeat_each_row_as_often_as_drawn():
    assert distilled_rows(torch.tensor([0.0, 2.0, 1.0, 0.0, 3.0])) == [1, 1, 2, 4, 4, 4]
    assert distilled_rows(torch.zeros(3)) == []
    assert copy_key("abc_0_0", 2) == f"abc{COPY_MARK}2_0_0"


def test_passes_run_on_the_selected_rows_and_verls_padding_only(transfer_queue, wire_pad_trainer):
    tq = transfer_queue
    batch, out, trainer, workers, metrics, timing = run_step(tq, wire_pad_trainer, "d1", ["algorithm.pad.rho=0.5"])
    assert trainer.pad_compact
    # k' = min(ceil(0.5 * 12), |E| = 8) = 6 rows of the two mixed groups; verl pads to 8 (4 rows per update).
    assert metrics["pad/selected_rows"] == 6 and metrics["pad/kept_fraction"] == pytest.approx(0.5)
    assert metrics["pad/model_rows"] == 8 and metrics["pad/padding_rows"] == 2
    assert metrics["pad/optimizer_updates"] == 2  # 8 rows in mini-batches of 4
    assert [name for name, _ in workers.passes] == ["old_log_prob", "ref", "update_actor"]
    keys = workers.passes[0][1]
    assert all(keys_seen == keys for _, keys_seen in workers.passes)
    real = [k for k in keys if k in batch.keys]
    padding = [k for k in keys if k not in batch.keys]
    assert len(real) == 6 and len(set(real)) == 6 and len(padding) == 2
    assert not any(k.startswith("d1g0") for k in real)  # the uniform group never reaches the model
    assert {"gen", "adv", "old_log_prob", "ref", "update_actor"} <= set(timing)

    # The update: verl's mini-batch of 4 rows, so 8 / 4 = 2 optimizer steps; the padding rows count nowhere.
    update = workers.update
    assert update["extra_info"]["mini_batch_size"] == 4
    seen = update["stored"]
    # Everything the loss reads reaches the update (verl's worker fetches only the fields its batch names).
    assert {"advantages", "old_log_probs", "ref_log_prob", "response_mask"} <= set(seen.keys())
    lengths = seen["response_mask"].offsets().diff()
    advantage = grpo(SCORES)
    for i, key in enumerate(update["keys"]):
        loss_mask, adv = seen["loss_mask"][i], seen["advantages"][i]
        if key in padding:
            assert int(loss_mask.sum()) == 0 and int(seen["response_mask"][i].sum()) == 0
            assert torch.count_nonzero(adv) == 0
        else:
            row = batch.keys.index(key)
            assert torch.equal(loss_mask, torch.ones(int(lengths[i]), dtype=loss_mask.dtype))
            torch.testing.assert_close(adv, torch.full_like(adv, float(advantage[row])))
            # old_log_probs were computed on this batch and stored for its rows
            torch.testing.assert_close(seen["old_log_probs"][i], -0.01 * seen["responses"][i].float())
    assert int(seen["loss_mask"].values().sum()) == sum(int(n) for k, n in zip(update["keys"], lengths) if k in real)

    # The step's rows for verl's metrics: the rollout as sampled (masks untouched), extra rows tagged as padding.
    assert out.keys[:12] == batch.keys and out.keys[12:] == padding
    assert [t.get("is_padding", False) for t in out.tags] == [False] * 12 + [True] * 2
    rollout = stored(tq, batch.keys, ["response_mask", "loss_mask", "advantages"])
    for i in range(12):
        assert int(rollout["loss_mask"][i].min()) == 1 and int(rollout["response_mask"][i].min()) == 1
        if batch.keys[i] not in real:
            assert torch.count_nonzero(rollout["advantages"][i]) == 0


def test_with_copies_a_row_drawn_m_times_is_trained_m_times(transfer_queue, wire_pad_trainer):
    tq = transfer_queue
    extra = ["algorithm.pad.rho=1.5", "algorithm.pad.replacement=true", "algorithm.pad.duplicates=copies"]
    batch, out, trainer, workers, metrics, timing = run_step(tq, wire_pad_trainer, "d2", extra)
    assert metrics["pad/selected_rows"] == 18 and metrics["pad/kept_fraction"] == pytest.approx(1.5)
    assert metrics["pad/model_rows"] == 20 and metrics["pad/padding_rows"] == 2
    assert metrics["pad/optimizer_updates"] == 5
    keys = workers.update["keys"]
    copies = [k for k in keys if COPY_MARK in k]
    assert copies, "with replacement some row is drawn twice"
    seen = workers.update["stored"]
    advantage = grpo(SCORES)
    draws = {}
    for i, key in enumerate(keys):
        source = source_of(key)
        if source not in batch.keys:
            assert int(seen["loss_mask"][i].sum()) == 0  # verl's padding
            continue
        draws[source] = draws.get(source, 0) + 1
        row = batch.keys.index(source)
        original = stored(tq, [source], ["responses", "raw_prompt", "extra_fields"])
        assert torch.equal(seen["responses"][i], original["responses"][0])
        assert list(seen["raw_prompt"])[i] == list(original["raw_prompt"])[0]
        assert list(seen["extra_fields"])[i] == list(original["extra_fields"])[0]
        # One draw's advantage on every copy: the multiplicity is in the number of copies.
        torch.testing.assert_close(seen["advantages"][i], torch.full_like(seen["advantages"][i], float(advantage[row])))
    assert sum(draws.values()) == 18 and max(draws.values()) > 1
    offsets = stored(tq, batch.keys, ["response_mask"])["response_mask"].offsets()
    lengths = {k: int(n) for k, n in zip(batch.keys, offsets.diff(), strict=True)}
    assert int(seen["loss_mask"].values().sum()) == sum(m * lengths[k] for k, m in draws.items())
    # Copies are the step's rows too (cleared with it) but never counted twice in verl's metrics.
    assert set(copies) <= set(out.keys) and all(out.tags[out.keys.index(k)]["is_padding"] for k in copies)


def test_with_weights_a_row_drawn_m_times_is_one_row_of_weight_m(transfer_queue, wire_pad_trainer):
    tq = transfer_queue
    extra = ["algorithm.pad.rho=1.5", "algorithm.pad.replacement=true"]
    assert compose_config(extra).algorithm.pad.duplicates == "weights"  # the default
    batch, out, trainer, workers, metrics, timing = run_step(tq, wire_pad_trainer, "w2", extra)
    # The same 18 draws as with copies, but only the distinct rows (at most the 8 effective) reach the model.
    assert metrics["pad/selected_rows"] == 18 and metrics["pad/kept_fraction"] == pytest.approx(1.5)
    distinct = int(metrics["pad/distinct_selected_rows"])
    assert distinct <= 8 and metrics["pad/model_rows"] == 8 and metrics["pad/padding_rows"] == 8 - distinct
    assert metrics["pad/optimizer_updates"] == 2  # copies would make ceil((18 + 2) / 4) = 5
    keys = workers.update["keys"]
    assert not [k for k in keys if COPY_MARK in k] and all(keys_seen == keys for _, keys_seen in workers.passes)
    seen = workers.update["stored"]
    advantage = grpo(SCORES)
    lengths = seen["response_mask"].offsets().diff()
    weights = {}
    for i, key in enumerate(keys):
        if key not in batch.keys:
            assert int(seen["loss_mask"][i].sum()) == 0 and torch.count_nonzero(seen["advantages"][i]) == 0
            continue
        m = int(seen["loss_mask"][i].max())
        weights[key] = m
        # Every token counts m times in the denominator; the advantage is m draws' worth; the policy mask is 0/1.
        assert torch.equal(seen["loss_mask"][i], torch.full((int(lengths[i]),), m, dtype=seen["loss_mask"].dtype))
        assert torch.equal(seen["response_mask"][i], torch.ones(int(lengths[i]), dtype=seen["response_mask"].dtype))
        expected = float(advantage[batch.keys.index(key)]) * m
        torch.testing.assert_close(seen["advantages"][i], torch.full_like(seen["advantages"][i], expected))
    assert len(weights) == distinct and sum(weights.values()) == 18 and max(weights.values()) > 1

    # The same step with copies draws the same rows as often: copies and weights train on the same multiset.
    extra_copies = extra + ["algorithm.pad.duplicates=copies"]
    copies_batch, _, _, copies_workers, _, _ = run_step(tq, wire_pad_trainer, "w2c", extra_copies)
    counted = {}
    for key in copies_workers.update["keys"]:
        if source_of(key) in copies_batch.keys:
            name = source_of(key).replace("w2c", "")
            counted[name] = counted.get(name, 0) + 1
    assert counted == {key.replace("w2", ""): m for key, m in weights.items()}


def test_empty_effective_set_runs_no_model_pass(transfer_queue, wire_pad_trainer, caplog):
    tq = transfer_queue
    with caplog.at_level(logging.WARNING, logger="revisual_verl.pad.trainer"):
        uniform = [[1] * 4, [0] * 4, [1] * 4]
        batch, out, trainer, workers, metrics, timing = run_step(tq, wire_pad_trainer, "d3", scores=uniform)
    assert workers.passes == []
    assert metrics["pad/skipped_step"] == 1.0 and metrics["pad/empty_effective_set"] == 1.0
    assert metrics["pad/kept_fraction"] == 0.0 and metrics["pad/model_rows"] == 0.0
    assert metrics["pad/optimizer_updates"] == 0.0
    assert timing["old_log_prob"] == timing["ref"] == timing["update_actor"] == 0.0
    assert out.keys == batch.keys
    assert any("skipped" in r.message for r in caplog.records)


def test_same_step_same_draw_in_both_modes_and_after_a_resume(transfer_queue, wire_pad_trainer):
    tq = transfer_queue
    extra = ["algorithm.pad.rho=0.4", "algorithm.pad.replacement=true", "algorithm.pad.duplicates=copies"]
    picks = []
    for name in ("r1", "r2"):  # a fresh trainer at the same restored global step
        batch, _, _, workers, _, _ = run_step(tq, wire_pad_trainer, name, extra, step=37)
        picks.append(sorted(k.replace(name, "") for k in workers.update["keys"] if not k.startswith("pad")))
    assert picks[0] == picks[1]
    _, _, _, workers, _, _ = run_step(tq, wire_pad_trainer, "r3", extra, step=38)
    assert sorted(k.replace("r3", "") for k in workers.update["keys"] if not k.startswith("pad")) != picks[0]

    # The masked mode draws the same rows at the same step.
    batch = put_step(tq, "r4", SCORES)
    trainer, _ = make_trainer(tq, wire_pad_trainer, batch, extra + ["algorithm.pad.compact=false"], step=37)
    assert not trainer.pad_compact
    trainer._compute_advantage(batch, {})
    masks = stored(tq, batch.keys, ["loss_mask"])["loss_mask"]
    masked = sorted(k.replace("r4", "") for i, k in enumerate(batch.keys) for _ in range(int(masks[i].max())))
    assert masked == sorted(source_of(k) for k in picks[0])


def test_masked_mode_runs_every_row_through_the_passes(transfer_queue, wire_pad_trainer):
    tq = transfer_queue
    masked = ["algorithm.pad.compact=false"]
    batch, out, trainer, workers, metrics, timing = run_step(tq, wire_pad_trainer, "m1", masked)
    assert not trainer.pad_compact and metrics["pad/compact"] == 0.0
    assert [name for name, _ in workers.passes] == ["old_log_prob", "ref", "update_actor"]
    assert all(sorted(keys) == sorted(batch.keys) for _, keys in workers.passes)
    assert metrics["pad/kept_fraction"] == pytest.approx(8 / 12) and metrics["pad/model_rows"] == 12
    assert metrics["pad/optimizer_updates"] == 3  # every row, whatever PAD keeps


def test_configs_the_distilled_mode_cannot_serve_fall_back_to_masks(transfer_queue, wire_pad_trainer, caplog):
    with caplog.at_level(logging.WARNING, logger="revisual_verl.pad.trainer"):
        trainer = PadSyncTrainer(compose_config(["algorithm.use_kl_in_reward=true"]))
    assert not trainer.pad_compact
    assert any("masked mode" in r.message for r in caplog.records)
    assert PadSyncTrainer(compose_config()).pad_compact
