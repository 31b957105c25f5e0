"""verl entry point (group ``verl.plugins``): importing this module registers the plugin in verl.

verl imports it inside ``import verl`` in every process and logs any error at DEBUG only. So each
component registers on its own: one that cannot import (a missing optional dependency in some
process) is reported as a WARNING naming it, and the others still register. :func:`registered` reads
the registries back, for tests and start-up checks.
"""

import importlib
import logging

logger = logging.getLogger(__name__)

# module -> what importing it registers in verl
COMPONENTS = {
    "revisual_verl.pad.estimator": "algorithm.adv_estimator=pad",
    "revisual_verl.pad.trainer": "trainer.v1.trainer_mode=pad_sync",
    "revisual_verl.reward.manager": "reward.reward_manager.name=revisual",
    "revisual_verl.engine.registration": "engine vendor revisual (VERL_ENGINE_VENDOR=revisual)",
}

failed: dict[str, str] = {}
for _module, _what in COMPONENTS.items():
    try:
        importlib.import_module(_module)
    except Exception as error:  # noqa: BLE001  one broken component must not take the others down
        failed[_module] = f"{type(error).__name__}: {error}"
        logger.warning("revisual-verl: %s is not available in this process (%s)", _what, failed[_module])


def registered() -> dict:
    """What this plugin put into verl's registries, read back from the registries themselves."""
    from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY
    from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY

    from revisual_verl.engine.registration import registered_engines

    def ours(registry: dict) -> list:
        return sorted(name for name, obj in registry.items() if obj.__module__.startswith("revisual_verl"))

    return {
        "adv_estimator": ours(ADV_ESTIMATOR_REGISTRY),
        "trainer_mode": ours(TRAINER_REGISTRY),
        "reward_manager": ours(REWARD_MANAGER),
        "engine": sorted(f"{backend}/{device}" for backend, device in registered_engines()),
    }
