"""A CPU + gloo platform for verl's platform registry: verl's FSDP engines, Ray resource pools and
collectives run on a machine without GPUs.

Never auto-detected: a GPU cluster's CPU-only processes (the driver, a TaskRunner) must keep resolving
to the GPU platform. It is chosen with verl's own ``VERL_PLATFORM=cpu``, which the recipes set when the
user asks for the CPU mode (``DEVICE=cpu``). Each worker is one Ray ``CPU`` unit in verl's placement
groups, so the actor, reference and rollout workers schedule on a GPU-less Ray cluster.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import torch
from verl.plugin.platform.platform_base import PlatformBase

PLATFORM_NAME = "cpu"


class _CpuDeviceModule:
    """What verl calls on ``get_torch_device()``: ``torch.cpu`` plus no-op memory bookkeeping."""

    _ZERO = ("max_memory_allocated", "max_memory_reserved", "memory_allocated", "memory_reserved")
    _NOOP = ("empty_cache", "reset_peak_memory_stats", "manual_seed", "manual_seed_all", "set_device", "ipc_collect")

    def __getattr__(self, name):
        if hasattr(torch.cpu, name):
            return getattr(torch.cpu, name)
        if name in self._ZERO:
            return lambda *args, **kwargs: 0
        if name in ("get_rng_state", "set_rng_state"):
            return getattr(torch, name)
        if name == "get_device_name":
            return lambda *args, **kwargs: "CPU"
        if name == "mem_get_info":
            return lambda *args, **kwargs: (0, 0)
        if name in self._NOOP:
            return lambda *args, **kwargs: None
        raise AttributeError(name)


class CpuPlatform(PlatformBase):
    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self):
        return _CpuDeviceModule()

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check=False) -> bool:
        # Opt-in only (VERL_PLATFORM=cpu): auto-detection must never pick the CPU on a GPU cluster.
        return False

    def current_device(self):
        return "cpu"

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        pass

    def synchronize(self, device_index: int | None = None) -> None:
        pass

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        pass

    def empty_cache(self) -> None:
        pass

    def get_device_capability(self, device_index: int = 0):
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"

    def ray_resource_name(self) -> str:
        return "CPU"

    def ray_resource_options(self, num_gpus: float) -> dict[str, Any]:
        # Ray names its CPU resource through num_cpus, not through `resources`.
        return {"num_cpus": num_gpus}

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False

    @contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        pass

    def profiler_stop(self) -> None:
        pass

    def cudart(self) -> Any:
        return None
