"""The vectorised GRPO gives verl's own numbers."""

import numpy as np
import pytest
import torch
from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

from revisual_verl.pad.group_advantage import group_ids, grpo_scalar_advantage


def make_batch(seed: int, groups: int, n: int, length: int = 12):
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 2, (groups * n,), generator=gen).float()
    scores[: 2 * n] = 1.0  # two all-right groups
    scores[2 * n : 3 * n] = 0.0  # one all-wrong group
    scores[-1] = 0.37  # a non-binary score
    # A near-uniform group: its std (~1e-6) is the size of epsilon, so std + eps is where a variance floor
    # (or an eps added in another place) would show.
    scores[3 * n : 4 * n] = 0.5
    scores[3 * n] = 0.5 + 2e-6
    lengths = torch.randint(1, length + 1, (groups * n,), generator=gen)
    mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
    rewards = torch.zeros(groups * n, length)
    rewards[torch.arange(groups * n), lengths - 1] = scores
    uids = np.array([f"prompt-{i // n}" for i in range(groups * n)], dtype=object)
    return rewards, mask, uids


@pytest.mark.parametrize("norm_by_std", [True, False])
def test_matches_verl_grpo(norm_by_std):
    rewards, mask, uids = make_batch(0, groups=16, n=8)
    # A singleton group and shuffled row order, as after verl's sequence balancing.
    uids[5] = "lonely"
    perm = torch.randperm(len(uids), generator=torch.Generator().manual_seed(1))
    rewards, mask, uids = rewards[perm], mask[perm], uids[perm.numpy()]
    expected, _ = compute_grpo_outcome_advantage(rewards, mask, uids, norm_adv_by_std_in_grpo=norm_by_std)
    scalar = grpo_scalar_advantage(rewards.sum(-1), group_ids(uids), norm_by_std=norm_by_std)
    torch.testing.assert_close(scalar[:, None] * mask, expected, rtol=1e-5, atol=1e-6)


def test_group_ids_are_dense_and_keep_groups_apart():
    ids = group_ids(np.array(["b", "a", "b", "c", "a"], dtype=object)).tolist()
    assert sorted(set(ids)) == [0, 1, 2]
    assert ids[0] == ids[2] and ids[1] == ids[4] and len({ids[0], ids[1], ids[3]}) == 3


def test_numeric_labels_become_dense_ids():
    ids = group_ids(np.array(["-1", "1000000000", "-1", "7"], dtype=object))
    assert ids.tolist() == [0, 2, 0, 1]
    adv = grpo_scalar_advantage(torch.tensor([1.0, 0.2, 0.0, 0.5]), ids)
    assert adv[0] > 0 > adv[2]


def test_uuid_groups_and_an_empty_batch():
    # verl's uids are uuid4 strings; a step whose rows were all dropped has none.
    import uuid

    uids = np.array([str(uuid.UUID(int=k)) for k in (7, 3, 7, 3, 9)], dtype=object)
    adv = grpo_scalar_advantage(torch.tensor([1.0, 0.0, 0.0, 1.0, 0.5]), group_ids(uids))
    assert adv[0] == -adv[2] and adv[1] == -adv[3] and adv[0] > 0 > adv[1]
    assert adv[4].item() == pytest.approx(0.5)  # a group of one: mean 0, std 1
    empty = grpo_scalar_advantage(torch.zeros(0), group_ids(np.array([], dtype=object)))
    assert empty.shape == (0,)


def test_a_uniform_group_gets_zero_not_a_floored_ratio():
    adv = grpo_scalar_advantage(torch.tensor([1.0, 1.0, 1.0, 0.3, 0.3 + 1e-4]), torch.tensor([0, 0, 0, 1, 1]))
    assert adv[:3].tolist() == [0.0, 0.0, 0.0]
    # Two scores 1e-4 apart: std ~7e-5, so |A| ~0.7 (a variance floor of 1e-6 would shrink it to ~0.07).
    assert adv[3].item() == pytest.approx(-0.707, abs=0.01)


def test_binary_group_of_eight_has_spec_scale():
    # SPEC section 2: k = 1 right answer in n = 8 -> |A| about 0.35 (wrong) and 2.47 (right).
    scores = torch.tensor([1.0] + [0.0] * 7)
    adv = grpo_scalar_advantage(scores, torch.zeros(8, dtype=torch.long))
    assert adv[0].item() == pytest.approx(2.47, abs=0.01)
    assert adv[1].abs().item() == pytest.approx(0.35, abs=0.01)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError):
        grpo_scalar_advantage(torch.zeros(4), torch.zeros(3, dtype=torch.long))


def test_uniform_groups_are_the_equal_scores_of_two_or_more_rows():
    from revisual_verl.pad.group_advantage import uniform_group_rows

    scores = torch.tensor([0.95, 0.95, 0.95, 0.3, 0.5, 0.5 + 2e-6, 0.7, 0.0, 0.0])
    groups = torch.tensor([0, 0, 0, 1, 2, 2, 3, 4, 4])
    assert uniform_group_rows(scores, groups).tolist() == [True] * 3 + [False] * 4 + [True] * 2
    # The rows of a group need not be together (verl balances sequences across ranks).
    perm = torch.tensor([8, 3, 0, 6, 5, 1, 7, 4, 2])
    assert uniform_group_rows(scores[perm], groups[perm]).tolist() == uniform_group_rows(scores, groups)[perm].tolist()
    assert uniform_group_rows(torch.zeros(0), torch.zeros(0, dtype=torch.long)).numel() == 0
    # Exactly equal: one ulp apart is not uniform; a NaN anywhere makes it not uniform; infinite scores are left to
    # the non-finite path.
    one_ulp = torch.nextafter(torch.tensor(0.95), torch.tensor(1.0))
    nan, inf = float("nan"), float("inf")
    for odd in (one_ulp, nan):
        for place in (0, 3, 7):
            group = torch.full((8,), 0.95)
            group[place] = odd
            assert not uniform_group_rows(group, torch.zeros(8, dtype=torch.long)).any(), (odd, place)
    assert not uniform_group_rows(torch.full((8,), inf), torch.zeros(8, dtype=torch.long)).any()
