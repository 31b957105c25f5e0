"""The revisual engine is in verl's engine registry, picked by VERL_ENGINE_VENDOR=revisual only."""

import pytest
from verl.workers.engine import EngineRegistry
from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead, FSDPEngineWithValueHead

import revisual_verl.plugin  # noqa: F401  what verl's entry point imports
from revisual_verl.engine.fsdp_engine import RevisualFSDPEngine
from revisual_verl.engine.registration import registered_engines


def test_registered_for_both_fsdp_backends_on_cuda_npu_and_the_cpu_mode():
    assert registered_engines() == {
        (backend, device): "RevisualFSDPEngine" for backend in ("fsdp", "fsdp2") for device in ("cuda", "npu", "cpu")
    }
    assert issubclass(RevisualFSDPEngine, FSDPEngineWithLMHead)


@pytest.mark.parametrize("backend", ["fsdp", "fsdp2"])
def test_vendor_env_selects_it_and_only_it(monkeypatch, backend):
    monkeypatch.setenv("VERL_ENGINE_DEVICE", "cuda")
    monkeypatch.setenv("VERL_ENGINE_VENDOR", "revisual")
    assert EngineRegistry.get_engine_cls("language_model", backend) is RevisualFSDPEngine
    # The critic has no revisual engine: verl's own is used.
    assert EngineRegistry.get_engine_cls("value_model", backend) is FSDPEngineWithValueHead
    monkeypatch.setenv("VERL_ENGINE_VENDOR", "nvidia")
    assert EngineRegistry.get_engine_cls("language_model", backend) is FSDPEngineWithLMHead
    monkeypatch.delenv("VERL_ENGINE_VENDOR")
    assert EngineRegistry.get_engine_cls("language_model", backend) is FSDPEngineWithLMHead
