"""adv_estimator=pad through verl's own compute_advantage, on a batch built like a GRPO step."""

import logging

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from tensordict import TensorDict
from verl import DataProto
from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage, get_adv_estimator_fn
from verl.trainer.ppo.ray_trainer import compute_advantage
from verl.trainer.ppo.v1.utils import compute_advantage_for_multi_trajectories

from revisual_verl.pad import handoff
from revisual_verl.pad.estimator import compute_pad_advantage, pop_latest_result, set_progress

N_PER_GROUP = 8
RESPONSE_LEN = 16


def algorithm_config(**pad):
    """The algorithm section as verl passes it: a DictConfig child of the whole config."""
    root = OmegaConf.create({"algorithm": {"adv_estimator": "pad", "norm_adv_by_std_in_grpo": True, "pad": pad}})
    return root.algorithm


def grpo_step(groups=8, padding_rows=4, uniform=(0, 3), all_wrong=(5,), seed=0):
    """Rewards, masks and uids like verl's v1 step: groups of n, some uniform groups, padding rows last."""
    gen = torch.Generator().manual_seed(seed)
    rows = groups * N_PER_GROUP
    scores = torch.randint(0, 2, (rows,), generator=gen).float()
    for g in range(groups):
        block = slice(g * N_PER_GROUP, (g + 1) * N_PER_GROUP)
        if g in uniform:
            scores[block] = 1.0
        elif g in all_wrong:
            scores[block] = 0.0
        else:
            scores[g * N_PER_GROUP] = 1.0  # at least one right
            scores[g * N_PER_GROUP + 1] = 0.0  # and one wrong
    lengths = torch.randint(2, RESPONSE_LEN + 1, (rows,), generator=gen)
    mask = (torch.arange(RESPONSE_LEN)[None, :] < lengths[:, None]).long()
    rewards = torch.zeros(rows, RESPONSE_LEN)
    rewards[torch.arange(rows), lengths - 1] = scores
    uids = [f"uid{g}" for g in range(groups) for _ in range(N_PER_GROUP)]
    # verl's padding rows: one shared "pad" uid, a one-token response that is masked out, no reward.
    mask = torch.cat([mask, torch.zeros(padding_rows, RESPONSE_LEN, dtype=torch.long)])
    rewards = torch.cat([rewards, torch.zeros(padding_rows, RESPONSE_LEN)])
    uids += ["pad0123"] * padding_rows
    data = DataProto(
        batch=TensorDict({"token_level_rewards": rewards, "response_mask": mask}, batch_size=len(uids)),
        non_tensor_batch={"uid": np.array(uids, dtype=object)},
    )
    return data


def run_pad(data, **pad):
    set_progress(0, 10)
    out = compute_advantage(data, adv_estimator="pad", num_repeat=N_PER_GROUP, config=algorithm_config(**pad))
    return out, pop_latest_result()


def reference_advantage(data):
    adv, _ = compute_grpo_outcome_advantage(
        data.batch["token_level_rewards"], data.batch["response_mask"].clone(), data.non_tensor_batch["uid"]
    )
    return adv


def test_registered_in_verl():
    assert get_adv_estimator_fn("pad") is compute_pad_advantage


def test_trains_only_on_non_uniform_groups_with_rho_one():
    data = grpo_step()
    mask_before = data.batch["response_mask"].clone()
    mask_object = data.batch["response_mask"]
    expected = reference_advantage(data)
    out, result = run_pad(data)

    keep = result.keep
    non_uniform = torch.tensor([g not in (0, 3, 5) for g in range(8) for _ in range(N_PER_GROUP)] + [False] * 4)
    assert torch.equal(keep, non_uniform)
    adv = out.batch["advantages"]
    torch.testing.assert_close(adv[keep], expected[keep])
    assert torch.count_nonzero(adv[~keep]) == 0
    # The mask is zeroed in place (same tensor object) for the dropped rows only.
    assert out.batch["response_mask"] is mask_object
    assert torch.equal(mask_object[keep], mask_before[keep])
    assert torch.count_nonzero(mask_object[~keep]) == 0
    assert torch.equal(out.batch["returns"], adv)
    m = result.metrics
    assert m["pad/rows"] == 64  # padding rows are not counted in N
    assert m["pad/effective_rows"] == m["pad/selected_rows"] == m["pad/distinct_selected_rows"] == 40
    assert m["pad/effective_fraction"] == pytest.approx(40 / 64)
    assert m["pad/abs_adv_mean_selected"] > m["pad/abs_adv_mean_all"]
    assert m["pad/empty_effective_set"] == 0.0


def test_rho_below_one_draws_ceil_rho_n():
    out, result = run_pad(grpo_step(), rho=0.25)
    assert int(result.keep.sum()) == 16  # ceil(0.25 * 64) < |E| = 40
    assert int((out.batch["response_mask"].sum(-1) > 0).sum()) == 16
    assert torch.count_nonzero(out.batch["advantages"].abs().sum(-1)) == 16


def test_t_high_filters_the_minority_outcome():
    data = grpo_step()
    expected = reference_advantage(data)
    _, result = run_pad(data, t_high=0.97)
    seq = (expected.sum(-1) / data.batch["response_mask"].sum(-1).clamp(min=1)).abs()
    assert bool((seq[result.keep] <= 0.97).all())
    assert bool(((seq > 0.97) & ~result.keep).any())


def test_with_replacement_weights_rows_by_multiplicity():
    data = grpo_step()
    expected = reference_advantage(data)
    out, result = run_pad(data, rho=1.5, replacement=True)
    weights = result.weights
    assert weights.sum() == 96  # ceil(1.5 * 64) draws
    assert weights.max() > 1
    torch.testing.assert_close(out.batch["advantages"], expected * weights[:, None])
    assert result.metrics["pad/distinct_selected_rows"] == int(result.keep.sum())


def test_all_uniform_batch_gives_empty_selection_and_no_nan():
    data = grpo_step(groups=4, uniform=(0, 1), all_wrong=(2, 3))
    out, result = run_pad(data)
    assert result.empty and result.metrics["pad/empty_effective_set"] == 1.0
    assert torch.count_nonzero(out.batch["advantages"]) == 0
    assert not torch.isnan(out.batch["advantages"]).any()


def test_nan_reward_rows_are_excluded_and_counted():
    data = grpo_step()
    data.batch["token_level_rewards"][9, 0] = float("nan")  # poisons group 1
    out, result = run_pad(data)
    assert not torch.isnan(out.batch["advantages"]).any()
    assert result.metrics["pad/nonfinite_rows"] == N_PER_GROUP
    assert not bool(result.keep[N_PER_GROUP : 2 * N_PER_GROUP].any())


def test_verl_grpo_impl_gives_the_same_result():
    fast_out, fast = run_pad(grpo_step(), rho=0.5)
    verl_out, slow = run_pad(grpo_step(), rho=0.5, grpo_impl="verl")
    assert torch.equal(fast.keep, slow.keep)
    torch.testing.assert_close(fast_out.batch["advantages"], verl_out.batch["advantages"])


def test_norm_adv_by_std_is_honoured():
    data = grpo_step()
    algo = algorithm_config()
    algo.norm_adv_by_std_in_grpo = False
    expected, _ = compute_grpo_outcome_advantage(
        data.batch["token_level_rewards"],
        data.batch["response_mask"].clone(),
        data.non_tensor_batch["uid"],
        norm_adv_by_std_in_grpo=False,
    )
    set_progress(0, 10)
    out = compute_advantage(data, adv_estimator="pad", config=algo)
    keep = pop_latest_result().keep
    torch.testing.assert_close(out.batch["advantages"][keep], expected[keep])


def test_tau_follows_the_trainer_step():
    data = grpo_step()
    set_progress(50, 100)
    compute_advantage(data, adv_estimator="pad", config=algorithm_config())
    assert pop_latest_result().metrics["pad/tau"] == pytest.approx(0.65)
    set_progress(100, 100)
    compute_advantage(grpo_step(), adv_estimator="pad", config=algorithm_config(tau_end=0.1))
    assert pop_latest_result().metrics["pad/tau"] == pytest.approx(0.1)


def test_the_trainers_parsed_settings_win_over_the_config_argument():
    """The pad_sync trainer parses algorithm.pad once and announces it with the step; the estimator then
    does not read the config verl passes (here deliberately different)."""
    from revisual_verl.pad.config import PadConfig

    announced = PadConfig.from_mapping({"rho": 0.25, "seed": 5})
    set_progress(3, 10, settings=announced)
    compute_advantage(grpo_step(), adv_estimator="pad", config=algorithm_config(rho=1.0))
    with_settings = pop_latest_result()
    set_progress(3, 10)
    compute_advantage(grpo_step(), adv_estimator="pad", config=algorithm_config(rho=0.25, seed=5))
    from_config = pop_latest_result()
    # ceil(0.25 * 64 rows): the announced rho acted, not the config's 1.0.
    assert with_settings.metrics["pad/selected_rows"] == from_config.metrics["pad/selected_rows"] == 16
    assert torch.equal(with_settings.weights, from_config.weights)


def test_same_step_and_seed_draw_the_same_rows():
    picks = []
    for _ in range(2):
        set_progress(7, 100)
        compute_advantage(grpo_step(), adv_estimator="pad", config=algorithm_config(rho=0.2, seed=3))
        picks.append(pop_latest_result().keep)
    set_progress(8, 100)
    compute_advantage(grpo_step(), adv_estimator="pad", config=algorithm_config(rho=0.2, seed=3))
    other = pop_latest_result().keep
    assert torch.equal(picks[0], picks[1]) and not torch.equal(picks[0], other)


def test_without_a_trainer_the_schedule_counts_calls_and_warns(monkeypatch, caplog):
    monkeypatch.setattr(handoff, "_state", handoff.Handoff())
    root = OmegaConf.create(
        {
            "algorithm": {"pad": {}},
            "actor_rollout_ref": {"actor": {"loss_agg_mode": "token-mean", "optim": {"total_training_steps": 3}}},
        }
    )
    taus = []
    with caplog.at_level(logging.WARNING, logger="revisual_verl.pad.estimator"):
        for _ in range(3):
            compute_advantage(grpo_step(), adv_estimator="pad", config=root.algorithm)
            taus.append(pop_latest_result().metrics["pad/tau"])
    assert taus == pytest.approx([1.0, 0.65, 0.3])
    assert sum("pad_sync" in r.message for r in caplog.records) == 1


def test_without_a_trainer_seq_mean_loss_is_refused(monkeypatch):
    monkeypatch.setattr(handoff, "_state", handoff.Handoff())
    root = OmegaConf.create(
        {"algorithm": {"pad": {}}, "actor_rollout_ref": {"actor": {"loss_agg_mode": "seq-mean-token-mean"}}}
    )
    with pytest.raises(ValueError, match="loss_agg_mode"):
        compute_advantage(grpo_step(), adv_estimator="pad", config=root.algorithm)


def test_missing_uid_is_a_clear_error():
    data = grpo_step()
    data.non_tensor_batch.pop("uid")
    with pytest.raises(ValueError, match="uid"):
        compute_advantage(data, adv_estimator="pad", config=algorithm_config())


def test_v1_multi_trajectory_path_delegates_to_pad():
    data = grpo_step(padding_rows=0)
    keys = [f"{uid}_{i % N_PER_GROUP}_0" for i, uid in enumerate(data.non_tensor_batch["uid"])]
    set_progress(0, 10)
    out = compute_advantage_for_multi_trajectories(
        data, batch_keys=keys, adv_estimator="pad", num_repeat=N_PER_GROUP, config=algorithm_config()
    )
    result = pop_latest_result()
    assert int(result.keep.sum()) == 40
    assert torch.count_nonzero(out.batch["advantages"][~result.keep]) == 0


@pytest.mark.parametrize("grpo_impl", ["fast", "verl"])
@pytest.mark.parametrize("score", [0.95, 0.9, 0.7])
def test_a_group_that_scores_the_same_is_never_trained_whatever_the_score(grpo_impl, score):
    """The recipe's composite pays 0.95 (0.9 accuracy + 0.05 format) to every right answer when the length term is
    off or equal: eight of them are a uniform group. verl's float32 GRPO leaves |A| above t_low there (pinned below),
    so without the uniform rule PAD trained the whole group with one sign."""
    data = grpo_step(uniform=(), all_wrong=())
    rewards, mask = data.batch["token_level_rewards"], data.batch["response_mask"]
    lengths = mask.sum(-1)
    for row in range(2 * N_PER_GROUP, 3 * N_PER_GROUP):  # group 2: every answer scores ``score``
        rewards[row] = 0.0
        rewards[row, lengths[row] - 1] = score
    residue = reference_advantage(data)[2 * N_PER_GROUP : 3 * N_PER_GROUP]
    assert residue.abs().max() >= 0.03  # verl's own numbers: the float32 residue passes t_low
    out, result = run_pad(data, rho=1.0, replacement=False, t_low=0.03, t_high=None, grpo_impl=grpo_impl)
    group = slice(2 * N_PER_GROUP, 3 * N_PER_GROUP)
    assert not result.keep[group].any()
    assert torch.count_nonzero(out.batch["advantages"][group]) == 0
    assert result.metrics["pad/uniform_rows"] == N_PER_GROUP
    assert result.metrics["pad/effective_rows"] == 7 * N_PER_GROUP  # every other group trains
