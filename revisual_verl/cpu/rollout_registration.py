"""Registers the ``hf`` rollout (``actor_rollout_ref.rollout.name=hf``) in verl's two rollout registries.

By name only: the replica class is behind a loader and the server adapter behind a ``module.Class``
string, so :mod:`revisual_verl.cpu.hf_rollout` is imported only by a process that builds an hf rollout.
"""

from verl.workers.rollout.base import _ROLLOUT_REGISTRY
from verl.workers.rollout.replica import RolloutReplicaRegistry

ROLLOUT_NAME = "hf"


def _load_replica():
    from revisual_verl.cpu.hf_rollout import HFRolloutReplica

    return HFRolloutReplica


RolloutReplicaRegistry.register(ROLLOUT_NAME, _load_replica)
_ROLLOUT_REGISTRY[(ROLLOUT_NAME, "async")] = "revisual_verl.cpu.hf_rollout.HFServerAdapter"
