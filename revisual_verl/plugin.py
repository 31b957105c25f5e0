"""verl entry point (group ``verl.plugins``): importing this module registers the plugin in verl.

verl imports it inside ``import verl`` in every process and swallows any error, so
:func:`registered` exists for tests and start-up checks to prove that registration happened.
"""

from revisual_verl.engine import registration as _engine  # noqa: F401  registers the revisual engine vendor
from revisual_verl.pad import estimator as _pad_estimator  # noqa: F401  registers adv_estimator=pad
from revisual_verl.pad import trainer as _pad_trainer  # noqa: F401  registers trainer_mode=pad_sync


def registered() -> dict:
    """What this plugin put into verl's registries, read back from the registries themselves."""
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY
    from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY

    return {
        "adv_estimator": sorted(k for k, v in ADV_ESTIMATOR_REGISTRY.items() if v.__module__.startswith("revisual_verl")),
        "trainer_mode": sorted(k for k, v in TRAINER_REGISTRY.items() if v.__module__.startswith("revisual_verl")),
    }
