"""Ray worker start-up hook of the CPU mode: the process group of a verl worker, on gloo alone.

verl's workers open their process group with the backend string ``cpu:gloo,<device>:<backend>``
(verl/utils/distributed.py, ``initialize_global_process_group_ray``), which on a CPU platform reads
``cpu:gloo,cpu:gloo`` and torch refuses as a duplicate. verl skips that call when a group already
exists, so this hook, named in ``ray_kwargs.ray_init.runtime_env.worker_process_setup_hook``, opens the
group first in every process verl starts as a worker-group member (it has ``WG_BACKEND=ray`` and a
rank); other processes (TaskRunner, agent-loop and reward workers) are left alone.
"""

import os


def init_gloo_process_group() -> None:
    if os.environ.get("WG_BACKEND") != "ray" or "RANK" not in os.environ or "MASTER_ADDR" not in os.environ:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        return
    dist.init_process_group(
        backend="gloo",
        rank=int(os.environ["RANK"]),
        world_size=int(os.environ["WORLD_SIZE"]),
        init_method=os.environ.get("DIST_INIT_METHOD") or "env://",
    )
