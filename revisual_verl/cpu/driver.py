"""What a driver process needs for the CPU mode, before verl resolves its platform.

verl resolves its platform once, on first use (``verl.plugin.platform.get_platform``), from
``VERL_PLATFORM``; on a machine without GPUs it otherwise falls back to ``cuda``, ``auto_set_device``
turns ``trainer.device=cpu`` into ``cuda`` and the worker placement groups wait for GPUs forever. The
entry points call :func:`select_cpu_platform` when the config says ``trainer.device=cpu``: stage 1 on Ray
(``revisual_verl.sft_trainer_ray``) needs nothing exported; ``revisual_verl.main_ppo`` imports verl's
trainer, which resolves the platform at import, so there it turns the hang into an error that says what
to export (the recipes export it with ``DEVICE=cpu``).
"""

import os

PLATFORM_ENV = "VERL_PLATFORM"
CPU_DEVICE = "cpu"
# Opens each Ray worker's gloo process group before verl asks for "cpu:gloo,cpu:gloo" (process_group.py).
CPU_SETUP_HOOK = "revisual_verl.cpu.process_group.init_gloo_process_group"


def select_cpu_platform() -> None:
    """Make verl resolve the CPU platform in this process; an error if it resolved another one already."""
    os.environ[PLATFORM_ENV] = CPU_DEVICE
    from verl.plugin.platform import get_platform

    resolved = get_platform().device_name
    if resolved != CPU_DEVICE:
        raise RuntimeError(
            f"trainer.device=cpu but verl resolved the {resolved!r} platform in this process already (it does when "
            f"its trainer is imported): export {PLATFORM_ENV}={CPU_DEVICE} before starting"
        )
