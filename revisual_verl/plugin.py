"""verl entry point (group ``verl.plugins``): importing this module registers the plugin in verl.

verl imports it inside ``import verl`` in every process and swallows any error, so
:func:`registered` exists for tests and start-up checks to prove that registration happened.
"""

from revisual_verl.engine import registration as _engine  # noqa: F401  registers the revisual engine vendor
from revisual_verl.pad import estimator as _pad_estimator  # noqa: F401  registers adv_estimator=pad
from revisual_verl.pad import trainer as _pad_trainer  # noqa: F401  registers trainer_mode=pad_sync
from revisual_verl.reward import manager as _reward_manager  # noqa: F401  registers reward manager "revisual"


def registered() -> dict:
    """What this plugin put into verl's registries, read back from the registries themselves."""
    from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY
    from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY

    def ours(registry: dict) -> list:
        return sorted(name for name, obj in registry.items() if obj.__module__.startswith("revisual_verl"))

    return {
        "adv_estimator": ours(ADV_ESTIMATOR_REGISTRY),
        "trainer_mode": ours(TRAINER_REGISTRY),
        "reward_manager": ours(REWARD_MANAGER),
        "engine": sorted({f"{backend}/{device}" for backend, device in _engine.registered_engines()}),
    }
