"""Registers the ``cpu`` platform in verl's platform registry (chosen with ``VERL_PLATFORM=cpu``).

Imported when verl loads the plugin, in every process: verl resolves its platform once, on first use,
so the name must be there before that. It costs nothing: ``import verl`` has already loaded torch and
``verl.plugin.platform``, and nothing here calls ``get_platform()``.
"""

from verl.plugin.platform import PlatformRegistry

from revisual_verl.cpu.platform import PLATFORM_NAME, CpuPlatform

PlatformRegistry.register(platform=PLATFORM_NAME)(CpuPlatform)
