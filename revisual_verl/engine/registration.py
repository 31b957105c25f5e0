"""Registers :class:`RevisualFSDPEngine` in verl's engine registry under vendor ``revisual``.

verl picks an engine by (model type, backend, device, vendor), the vendor coming from
``VERL_ENGINE_VENDOR`` when set. Registering under a vendor of our own leaves verl's default FSDP
engine untouched for every run that does not ask for this one, and the value model (critic) falls
back to verl's engine because only ``language_model`` is registered here.

Importing this module registers. :mod:`revisual_verl.plugin` imports it right after a process imports
``verl.workers.engine`` (the processes that build engines), not on ``import verl`` (docs/plugin.md).
"""

from verl.workers.engine import EngineRegistry

from revisual_verl.engine.fsdp_engine import RevisualFSDPEngine
from revisual_verl.engine.settings import ENGINE_VENDOR

MODEL_TYPE = "language_model"
BACKENDS = ("fsdp", "fsdp2")
# "cpu": the CPU mode (revisual_verl/cpu), whose platform names its device "cpu".
DEVICES = ("cuda", "npu", "cpu")

EngineRegistry.register(model_type=MODEL_TYPE, backend=list(BACKENDS), device=list(DEVICES), vendor=ENGINE_VENDOR)(
    RevisualFSDPEngine
)


def registered_engines() -> dict:
    """(backend, device) -> class name of what verl's registry holds for this vendor."""
    table = EngineRegistry._engines.get(MODEL_TYPE, {})
    return {
        (backend, device): table[backend][(device, ENGINE_VENDOR)].__name__
        for backend in BACKENDS
        for device in DEVICES
        if (device, ENGINE_VENDOR) in table.get(backend, {})
    }
