"""How many math-verify processes each reward worker may start, so that a node is not oversubscribed.

verl starts ``reward.num_workers`` reward-loop workers, placed round-robin over the alive nodes with CPUs
(verl/experimental/reward_loop/reward_loop.py, ``_init_reward_loop_workers``), and each runs its own
pool. Sized from the whole host, 8 workers on one 16-core node would start 8 x 16 processes; here each
pool gets its share of the CPUs the worker may run on (its affinity mask, which containers and Ray narrow).
"""

from __future__ import annotations

import logging
import math

logger = logging.getLogger(__name__)


def workers_per_node(reward_workers: int, nodes: int) -> int:
    """Reward workers on the busiest node under verl's round-robin placement."""
    return math.ceil(max(1, reward_workers) / max(1, nodes))


def pool_processes(cpus: int, reward_workers: int, nodes: int, requested: int | None = None) -> int:
    """Processes of one reward worker's pool: its share of ``cpus``, at most ``requested`` when given.

    Never fewer than 1 (a worker needs one process to score at all), so only when a node holds more
    reward workers than CPUs do the pools together exceed the CPUs, by one process per extra worker."""
    share = max(1, cpus // workers_per_node(reward_workers, nodes))
    if requested is None:
        return share
    if requested > share:
        logger.warning(
            "reward.reward_kwargs.workers=%d exceeds this reward worker's share of the node's %d CPUs "
            "(%d reward workers per node): using %d",
            requested,
            cpus,
            workers_per_node(reward_workers, nodes),
            share,
        )
    return min(requested, share)


def ray_cpu_nodes() -> int:
    """Alive Ray nodes with CPUs, the nodes verl places reward workers on; 1 outside Ray."""
    try:
        import ray

        if not ray.is_initialized():
            return 1
        return max(1, sum(1 for node in ray.nodes() if node.get("Alive") and node.get("Resources", {}).get("CPU", 0)))
    except Exception:  # noqa: BLE001  sizing must never stop the reward
        return 1
