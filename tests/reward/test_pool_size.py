"""Each reward worker's math-verify pool gets its share of the node's CPUs (revisual_verl.reward.pool_size)."""

import dataclasses
import logging

import pytest

from revisual_verl.reward import manager as manager_module
from revisual_verl.reward.pool_size import pool_processes, workers_per_node


@pytest.mark.parametrize(
    "cpus, reward_workers, nodes, expected",
    [(16, 1, 1, 16), (16, 8, 1, 2), (16, 8, 2, 4), (16, 3, 2, 8), (16, 5, 1, 3), (2, 8, 1, 1), (96, 8, 4, 48)],
)
def test_a_pool_gets_its_share_of_the_node(cpus, reward_workers, nodes, expected):
    assert pool_processes(cpus, reward_workers, nodes) == expected


@pytest.mark.parametrize("nodes", [1, 2, 3, 4])
@pytest.mark.parametrize("reward_workers", [1, 2, 3, 5, 8, 13, 16])
@pytest.mark.parametrize("cpus", [16, 17, 64])
def test_the_pools_on_the_busiest_node_together_use_at_most_its_cpus(cpus, reward_workers, nodes):
    # verl's placement: worker i on node i % nodes.
    on_node = [sum(1 for i in range(reward_workers) if i % nodes == node) for node in range(nodes)]
    assert max(on_node) == workers_per_node(reward_workers, nodes)
    size = pool_processes(cpus, reward_workers, nodes)
    assert max(on_node) * size <= cpus
    # ... and use them: one more process per pool would oversubscribe the busiest node.
    assert max(on_node) * (size + 1) > cpus


def test_an_explicit_size_is_kept_below_the_share_and_capped_above_it(caplog):
    assert pool_processes(16, 8, 1, requested=1) == 1
    with caplog.at_level(logging.WARNING, logger="revisual_verl.reward.pool_size"):
        assert pool_processes(16, 8, 1, requested=64) == 2
    assert any("workers=64" in record.message for record in caplog.records)


def test_the_manager_sizes_its_pool_from_verls_reward_workers(monkeypatch):
    from omegaconf import OmegaConf

    from revisual_verl.reward.settings import RewardSettings

    monkeypatch.setattr(manager_module, "usable_cpus", lambda: 16)
    monkeypatch.setattr(manager_module, "ray_cpu_nodes", lambda: 1)
    for num_workers, expected in [(1, 16), (8, 2), (32, 1)]:
        config = OmegaConf.create({"reward": {"num_workers": num_workers}})
        sized = manager_module.sized_for_node(RewardSettings(length_budget=64), config)
        assert sized == dataclasses.replace(RewardSettings(length_budget=64), workers=expected)


def test_inside_ray_the_share_counts_the_clusters_nodes(ray_local):
    @ray_local.remote
    def sized(num_workers):
        from omegaconf import OmegaConf

        from revisual_verl.reward.accuracy import usable_cpus
        from revisual_verl.reward.manager import sized_for_node
        from revisual_verl.reward.pool_size import ray_cpu_nodes
        from revisual_verl.reward.settings import RewardSettings

        config = OmegaConf.create({"reward": {"num_workers": num_workers}})
        return usable_cpus(), ray_cpu_nodes(), sized_for_node(RewardSettings(), config).workers

    cpus, nodes, one = ray_local.get(sized.remote(1))
    _, _, many = ray_local.get(sized.remote(4 * cpus))
    assert nodes == 1 and one == cpus and many == 1
