"""Presample through verl's real v1 trainer (the registered pad_sync trainer): verl builds the dataset and the
dataloader, the trainer fetches batches with verl's ``_next_train_batch``, runs verl's step on stored rollouts
and checkpoints with verl's ``_save_checkpoint`` / ``_load_checkpoint``. The worker groups are the PAD
tests' stand-ins; nothing is generated (each fetched prompt's group is written with a known accuracy)."""

import logging

import pandas as pd
import pytest
import torch
from helpers.plugin_config import compose_plugin_config
from helpers.tiny_models import build_tiny_tokenizer
from helpers.v1_trainer import TRANSFER_QUEUE
from verl.utils import tensordict_utils as tu

from revisual_verl.pad.trainer import PadSyncTrainer
from revisual_verl.presample.sampler import PresampleSampler

PROMPTS, BATCH, N = 9, 3, 4
# Prompts 0-1 always right with equal scores, 2 always right with a length bonus that differs, 3-5 always
# wrong, 6-8 right in half their responses. Prompt 2 and 6-8 teach (PAD trains their rows); the rest are uniform.
ALWAYS_RIGHT, LENGTH_BONUS, ALWAYS_WRONG, MIXED = range(0, 2), 2, range(3, 6), range(6, 9)
TEACHING = {LENGTH_BONUS, *MIXED}


def accuracies(prompt: int) -> list[float]:
    if prompt in ALWAYS_RIGHT or prompt == LENGTH_BONUS:
        return [1.0] * N
    if prompt in ALWAYS_WRONG:
        return [0.0] * N
    return [1.0, 0.0] * (N // 2)


def score(prompt: int, response: int, acc: float) -> float:
    return 0.9 * acc + (0.01 * response if prompt == LENGTH_BONUS else 0.0)


@pytest.fixture
def train_file(tmp_path):
    rows = [
        {
            "data_source": "synthetic",
            "prompt": [{"role": "user", "content": f"question {i}"}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": "1"},
            "extra_info": {"index": i},
        }
        for i in range(PROMPTS)
    ]
    path = tmp_path / "train.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


def make_trainer(train_file, checkpoints, extra=()):
    config = compose_plugin_config(
        overrides=[
            f"data.train_files=[{train_file}]",
            f"data.val_files=[{train_file}]",
            f"data.train_batch_size={BATCH}",
            "data.dataloader_num_workers=2",
            f"actor_rollout_ref.rollout.n={N}",
            "actor_rollout_ref.actor.ppo_mini_batch_size=1",
            "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4",
            "actor_rollout_ref.rollout.calculate_log_probs=false",
            "algorithm.presample.enable=true",
            f"trainer.default_local_dir={checkpoints}",
            "trainer.resume_mode=auto",
            *TRANSFER_QUEUE,
            *extra,
        ]
    )
    trainer = PadSyncTrainer(config)
    trainer.tokenizer, trainer.processor = build_tiny_tokenizer(), None
    trainer._init_dataloader()
    trainer.total_training_steps = 1000
    return trainer


def store_groups(tq, uids, prompts, step):
    """Each fetched prompt's group of N responses as verl's agent loop stores it, with the reward's acc."""
    keys, tags = [], []
    rows = {"prompts": [], "responses": [], "response_mask": [], "rm_scores": [], "uid": [], "extra_fields": []}
    for uid, prompt in zip(uids, prompts, strict=True):
        for s, acc in enumerate(accuracies(prompt)):
            keys.append(f"{uid}_{s}_0")
            tags.append({"is_padding": False, "seq_len": 8, "min_global_steps": step, "max_global_steps": step})
            rows["prompts"].append(torch.tensor([5, 6, 7, prompt + 10]))
            rows["responses"].append(torch.tensor([20 + s, 30, 40, 50]))
            rows["response_mask"].append(torch.ones(4, dtype=torch.int64))
            rows["rm_scores"].append(torch.tensor([0.0, 0.0, 0.0, score(prompt, s, acc)]))
            rows["uid"].append(uid)
            rows["extra_fields"].append({"reward_extra_info": {"acc": acc}})
    fields = {
        name: values if name in ("uid", "extra_fields") else torch.nested.as_nested_tensor(values, layout=torch.jagged)
        for name, values in rows.items()
    }
    fields["loss_mask"] = torch.nested.as_nested_tensor(list(rows["response_mask"]), layout=torch.jagged)
    return tq.kv_batch_put(keys=keys, partition_id="train", fields=tu.get_tensordict(fields), tags=tags)


def train_steps(trainer, tq, wire, steps):
    """verl's fetch, then verl's step on the fetched prompts' groups; the prompts and metrics of each step."""
    fetched, all_metrics = [], []
    for _ in range(steps):
        trainer.global_steps += 1
        batch = trainer._next_train_batch()
        prompts = [int(messages[0]["content"].split()[-1]) for messages in batch["raw_prompt"]]
        stored = store_groups(tq, list(batch["uid"]), prompts, trainer.global_steps)
        workers = wire(trainer, tq, stored)
        workers.save_checkpoint = workers.load_checkpoint = lambda *args, **kwargs: None
        metrics = {}
        trainer._step_once(metrics, {}, sample_batch_size=BATCH)
        fetched.append(prompts)
        all_metrics.append(metrics)
    return fetched, all_metrics


@pytest.mark.parametrize("mode", [[], ["algorithm.pad.compact=false"]], ids=["distilled", "masked"])
def test_uniform_prompts_are_skipped_before_rollout_and_batches_stay_full(
    transfer_queue, wire_pad_trainer, train_file, tmp_path, caplog, mode
):
    with caplog.at_level(logging.WARNING, logger="revisual_verl.presample.adapter"):
        trainer = make_trainer(train_file, tmp_path / "ckpt", mode)
    assert trainer.pad_compact == (not mode)
    assert isinstance(trainer.train_dataloader.sampler, PresampleSampler)
    assert trainer.train_dataloader.num_workers == 0
    assert "dataloader_num_workers=2 is overridden to 0" in caplog.text
    trainer.global_steps = 0

    fetched, metrics = train_steps(trainer, transfer_queue, wire_pad_trainer, 30)
    assert all(len(prompts) == BATCH for prompts in fetched)
    first_epoch = [p for prompts in fetched[:3] for p in prompts]
    assert sorted(first_epoch) == list(range(PROMPTS))  # no history yet: nothing skipped
    late = [p for prompts in fetched[15:] for p in prompts]
    teaching_share = sum(p in TEACHING for p in late) / len(late)
    assert teaching_share > 0.7, late  # 4 in 9 without skipping
    # All correct but scored apart by the length bonus: PAD trains it, so it is drawn every epoch as the mixed are.
    assert late.count(LENGTH_BONUS) >= min(late.count(p) for p in MIXED) - 1, late
    assert max(m["presample/skipped_share"] for m in metrics[3:]) > 0.3
    assert all(m["presample/skipped_share"] == 0 for m in metrics[:3])
    # Rollouts generated per row trained: PAD trains every row of a group that teaches, none of a uniform one.
    teaching_groups = sum(p in TEACHING for prompts in fetched for p in prompts)
    assert metrics[-1]["presample/rollouts_per_trained_row"] == pytest.approx(30 * BATCH * N / (teaching_groups * N))
    uniform = sum(p not in TEACHING for p in fetched[-1]) / BATCH
    assert metrics[-1]["presample/uniform_share"] == pytest.approx(uniform)
    # p_hard moves by 0.01 a step: down while more than 2/3 of alpha = 0.25 of the groups were hard, else up.
    p_hard = 0.5
    for prompts in fetched:
        hard_share = sum(p in ALWAYS_WRONG for p in prompts) / BATCH
        p_hard = min(0.95, max(0.05, p_hard - 0.01 if hard_share > 0.25 * 2 / 3 else p_hard + 0.01))
    assert metrics[-1]["presample/p_hard"] == pytest.approx(p_hard)


def test_a_run_resumed_from_verls_checkpoint_skips_what_the_uninterrupted_run_skips(
    transfer_queue, wire_pad_trainer, train_file, tmp_path
):
    straight = make_trainer(train_file, tmp_path / "straight")
    straight.global_steps = 0
    expected, expected_metrics = train_steps(straight, transfer_queue, wire_pad_trainer, 24)

    first = make_trainer(train_file, tmp_path / "ckpt")
    first.global_steps = 0
    head, _ = train_steps(first, transfer_queue, wire_pad_trainer, 11)
    first._save_checkpoint()

    resumed = make_trainer(train_file, tmp_path / "ckpt")
    resumed.actor_rollout_wg = first.actor_rollout_wg
    resumed._load_checkpoint()
    assert resumed.global_steps == 11
    tail, tail_metrics = train_steps(resumed, transfer_queue, wire_pad_trainer, 13)
    assert head + tail == expected
    assert tail_metrics[-1]["presample/p_easy"] == expected_metrics[-1]["presample/p_easy"]
    assert tail_metrics[-1]["presample/rollouts_per_trained_row"] == pytest.approx(
        expected_metrics[-1]["presample/rollouts_per_trained_row"]
    )


@pytest.mark.parametrize("saved_with, resumed_with", [("true", "false"), ("false", "true")])
def test_resuming_with_presample_switched_says_so(
    transfer_queue, wire_pad_trainer, train_file, tmp_path, saved_with, resumed_with
):
    first = make_trainer(train_file, tmp_path / "ckpt", [f"algorithm.presample.enable={saved_with}"])
    first.global_steps = 0
    train_steps(first, transfer_queue, wire_pad_trainer, 2)
    first._save_checkpoint()
    resumed = make_trainer(train_file, tmp_path / "ckpt", [f"algorithm.presample.enable={resumed_with}"])
    resumed.actor_rollout_wg = first.actor_rollout_wg
    with pytest.raises(RuntimeError, match=f"saved with algorithm.presample.enable={saved_with}; resume with the same"):
        resumed._load_checkpoint()


def test_a_trainer_with_group_filtering_refuses_presample(train_file, tmp_path):
    with pytest.raises(ValueError, match="presample.enable=true cannot run with algorithm.filter_groups.enable=true"):
        make_trainer(train_file, tmp_path / "ckpt", ["algorithm.filter_groups.enable=true"])
