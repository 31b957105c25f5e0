"""At start, on every node of the Ray cluster: the engine verl would build there is the revisual one.

verl looks its engine up by vendor (``VERL_ENGINE_VENDOR=revisual``) and silently falls back to its own
FSDP engine when the vendor is not registered in that process: on a node where this plugin is not
installed (or where ``VERL_USE_EXTERNAL_PLUGINS`` keeps verl from loading it) the run would train
without the vision-tower freeze and crash later on text-only batches. So before any worker starts,
each alive node resolves the engine class exactly as a worker there would, and a node that gets
another one (or cannot import the plugin at all) stops the run, named by its address.
"""

from __future__ import annotations

from typing import Any

ENGINE_CLASS = "RevisualFSDPEngine"
PROBE_TIMEOUT_S = 600.0


def resolve_engine(backend: str) -> dict:
    """The engine class verl's registry gives this process for ``backend`` (what a worker here builds)."""
    import socket

    import ray
    from verl.workers.engine import EngineRegistry

    engine = EngineRegistry.get_engine_cls("language_model", backend)
    return {"node": ray.util.get_node_ip_address(), "host": socket.gethostname(), "engine": engine.__name__}


def wants_revisual_engine(config: Any) -> bool:
    """The config picks the revisual engine (the vendor in the workers' runtime environment)."""
    from revisual_verl.engine.settings import ENGINE_VENDOR, VENDOR_ENV, runtime_env_vars

    return runtime_env_vars(config).get(VENDOR_ENV) == ENGINE_VENDOR


def cluster_nodes() -> list[dict]:
    import ray

    return [node for node in ray.nodes() if node.get("Alive") and node.get("Resources", {}).get("CPU", 0) > 0]


def check_nodes(backend: str, *, in_process_here: bool = True, runtime_env: dict | None = None) -> list[dict]:
    """Resolve the engine on every alive node; raise naming each node that would not build the revisual one.

    The node this process runs on is checked in this process (the TaskRunner, in the job's runtime
    environment like the workers) unless ``in_process_here`` is false; the others by a task pinned to them.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    probe = ray.remote(num_cpus=0, max_retries=0)(resolve_engine)
    pending, reports, failures = {}, [], []
    for node in cluster_nodes():
        address = node.get("NodeManagerAddress", node["NodeID"])
        if in_process_here and node["NodeID"] == here:
            reports.append(resolve_engine(backend))
            continue
        options = {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)}
        if runtime_env is not None:
            options["runtime_env"] = runtime_env
        pending[address] = probe.options(**options).remote(backend)
    for address, ref in pending.items():
        try:
            reports.append(ray.get(ref, timeout=PROBE_TIMEOUT_S))
        except Exception as error:  # noqa: BLE001  any failure there means the node cannot run the recipe
            failures.append(f"node {address}: the plugin cannot run there ({type(error).__name__}: {error})")
    for report in reports:
        if report["engine"] != ENGINE_CLASS:
            failures.append(
                f"node {report['node']} ({report['host']}): verl would build {report['engine']}, not {ENGINE_CLASS}; "
                "install revisual-verl on that node (and leave VERL_USE_EXTERNAL_PLUGINS unset or naming it)"
            )
    if failures:
        raise RuntimeError(
            "the config asks for the revisual engine (VERL_ENGINE_VENDOR=revisual) but not every node would build "
            "it:\n  " + "\n  ".join(failures)
        )
    return reports
