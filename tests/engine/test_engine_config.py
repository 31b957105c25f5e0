"""The revisual engine's settings as verl config keys: RevisualFSDPEngineConfig, verl's conversion of
the stage configs into it, and the driver-side checks of revisual_verl.engine.settings."""

import pytest
from helpers.plugin_config import compose_plugin_config
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from verl.utils.config import omega_conf_to_dataclass
from verl.workers.config import FSDPEngineConfig

from revisual_verl.engine.config import (
    EngineConfigError,
    EngineSettings,
    EntropyScheduleConfig,
    RevisualFSDPEngineConfig,
)
from revisual_verl.engine.entropy import EntropySchedule
from revisual_verl.engine.settings import check_sft_config, check_trainer_config
from revisual_verl.engine.vision_freeze import DEFAULT_VISION_PREFIXES


def test_verls_plain_engine_config_means_verl_behaviour():
    settings = EngineSettings.from_engine_config(FSDPEngineConfig())
    assert settings == EngineSettings()
    assert not settings.freeze_vision_tower and settings.entropy_schedule is None


def test_defaults_are_off_and_the_schedule_defaults_are_table5():
    assert EngineSettings.from_engine_config(RevisualFSDPEngineConfig()) == EngineSettings()
    config = RevisualFSDPEngineConfig(freeze_vision_tower=True, entropy=EntropyScheduleConfig(schedule="exponential"))
    settings = EngineSettings.from_engine_config(config)
    assert settings.freeze_vision_tower and settings.vision_prefixes == DEFAULT_VISION_PREFIXES
    assert settings.entropy_schedule == EntropySchedule(beta0=0.02, beta_min=0.0, decay=0.985, warmup_updates=140)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"schedule": "cosine"}, "entropy.schedule='cosine'"),
        ({"schedule": "exponential", "decay": 1.5}, "entropy.decay=1.5"),
        ({"schedule": "exponential", "warmup_updates": -1}, "entropy.warmup_updates=-1"),
        ({"schedule": "exponential", "beta0": 0.01, "beta_min": 0.02}, "entropy.beta_min=0.02"),
        ({"schedule": "linear"}, "entropy.linear_updates"),
    ],
)
def test_bad_schedule_values_name_their_key(fields, message):
    with pytest.raises(EngineConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        EntropyScheduleConfig(**fields)


def test_an_entropy_mapping_without_target_is_read_by_its_declared_types():
    config = RevisualFSDPEngineConfig(entropy={"schedule": "exponential", "beta0": 1, "warmup_updates": "3"})
    assert isinstance(config.entropy, EntropyScheduleConfig)
    assert config.entropy.beta0 == 1.0 and config.entropy.warmup_updates == 3
    with pytest.raises(EngineConfigError, match=r"entropy\.warmup is not a setting") as refused:
        RevisualFSDPEngineConfig(entropy={"warmup": 3})
    assert "warmup_updates" in str(refused.value) and "_target_" not in str(refused.value)
    with pytest.raises(EngineConfigError, match=r"entropy\.warmup_updates must be an integer, got 'soon'"):
        RevisualFSDPEngineConfig(entropy={"warmup_updates": "soon"})


def test_bad_engine_values_name_their_key():
    with pytest.raises(EngineConfigError, match="vision_prefixes"):
        RevisualFSDPEngineConfig(vision_prefixes=[""])
    with pytest.raises(EngineConfigError, match="freeze_vision_tower"):
        RevisualFSDPEngineConfig(freeze_vision_tower="yes")


def test_verls_conversion_of_the_stage3_section_builds_the_engine_config():
    config = compose_plugin_config("stage3_text_rl", ["actor_rollout_ref.actor.fsdp_config.entropy.warmup_updates=7"])
    section = OmegaConf.create(OmegaConf.to_container(config.actor_rollout_ref.actor.fsdp_config, resolve=True))
    engine_config = omega_conf_to_dataclass(section)
    assert type(engine_config) is RevisualFSDPEngineConfig
    assert isinstance(engine_config.entropy, EntropyScheduleConfig)
    settings = EngineSettings.from_engine_config(engine_config)
    assert settings.freeze_vision_tower and settings.entropy_schedule.warmup_updates == 7
    # The actor's whole config too, as verl's workers convert it: the engine config rides inside.
    actor = omega_conf_to_dataclass(
        OmegaConf.create(OmegaConf.to_container(config.actor_rollout_ref.actor, resolve=True))
    )
    assert type(actor.engine) is RevisualFSDPEngineConfig and actor.engine.entropy.warmup_updates == 7
    assert check_trainer_config(config).entropy_schedule.warmup_updates == 7


def test_the_freeze_flag_is_one_key():
    # Stage 2 does not freeze; verl's key alone turns the engine's freezing on.
    config = compose_plugin_config("stage2_multimodal_rl", ["actor_rollout_ref.actor.freeze_vision_tower=true"])
    assert check_trainer_config(config).freeze_vision_tower
    # Setting the engine's copy apart from verl's key is refused.
    config = compose_plugin_config("stage3_text_rl", ["actor_rollout_ref.actor.fsdp_config.freeze_vision_tower=false"])
    with pytest.raises(ValueError, match="set only actor_rollout_ref.actor.freeze_vision_tower"):
        check_trainer_config(config)


def test_a_misspelt_engine_key_does_not_compose():
    with pytest.raises(ConfigCompositionException, match="entropy.warmup"):
        compose_plugin_config("stage3_text_rl", ["actor_rollout_ref.actor.fsdp_config.entropy.warmup=20"])
    with pytest.raises(ConfigCompositionException, match="entropy.beta_0"):
        compose_plugin_config("stage3_text_rl", ["actor_rollout_ref.actor.fsdp_config.entropy.beta_0=0.1"])


def test_startup_check_refuses_settings_the_workers_would_ignore():
    # verl's engine config with verl's freeze key: nothing would freeze.
    config = compose_plugin_config("revisual_ppo", ["actor_rollout_ref.actor.freeze_vision_tower=true"])
    with pytest.raises(ValueError, match="verl ignores the key"):
        check_trainer_config(config)
    # The revisual engine settings without the vendor: the workers would build verl's engine.
    other_vendor = "ray_kwargs.ray_init.runtime_env.env_vars.VERL_ENGINE_VENDOR=other"
    config = compose_plugin_config("stage3_text_rl", [other_vendor])
    with pytest.raises(ValueError, match="VERL_ENGINE_VENDOR='other'"):
        check_trainer_config(config)


def test_sft_config_needs_the_vendor_in_the_launchers_environment():
    config = compose_plugin_config("stage1_coldstart_sft")
    assert check_sft_config(config, {"VERL_ENGINE_VENDOR": "revisual"}) == EngineSettings()
    with pytest.raises(ValueError, match="VERL_ENGINE_VENDOR=None"):
        check_sft_config(config, {})
