"""A CPU + gloo platform for verl's platform registry, so verl's FSDP engine runs in CPU tests.

Loaded with ``VERL_USE_EXTERNAL_MODULES=cpu_platform`` (before verl's plugins, which resolve the
platform at import) and selected with ``VERL_PLATFORM=cpu_gloo``. Test support only.
"""

from contextlib import contextmanager
from typing import Any

import torch
from verl.plugin.platform.platform_base import PlatformBase
from verl.plugin.platform.platform_manager import PlatformRegistry

PLATFORM_NAME = "cpu_gloo"


class _CpuDeviceModule:
    """What verl calls on ``get_torch_device()``; memory statistics are not tracked on CPU."""

    def __getattr__(self, name):
        if hasattr(torch.cpu, name):
            return getattr(torch.cpu, name)
        if name in ("max_memory_allocated", "max_memory_reserved", "memory_allocated", "memory_reserved"):
            return lambda *args, **kwargs: 0
        if name in ("get_rng_state", "set_rng_state"):
            return getattr(torch, name)
        if name in ("mem_get_info",):
            return lambda *args, **kwargs: (0, 0)
        if name in ("empty_cache", "reset_peak_memory_stats", "manual_seed", "manual_seed_all", "set_device"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)


@PlatformRegistry.register(platform=PLATFORM_NAME)
class CpuGlooPlatform(PlatformBase):
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
