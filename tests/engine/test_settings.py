"""Engine settings from environment variables, and the overrides that carry them through verl's Hydra config."""

import os

import pytest
import verl
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from verl.trainer.constants_ppo import get_ppo_ray_runtime_env

from revisual_verl.engine.entropy_schedule import EntropySchedule
from revisual_verl.engine.settings import EngineSettings, check_trainer_config
from revisual_verl.engine.vision_freeze import DEFAULT_VISION_PREFIXES

STAGE3 = {
    "VERL_ENGINE_VENDOR": "revisual",
    "REVISUAL_FREEZE_VISION_TOWER": "1",
    "REVISUAL_ENTROPY_SCHEDULE": "exponential",
}


def test_nothing_set_means_verl_behaviour():
    settings = EngineSettings.from_env({})
    assert settings == EngineSettings()
    assert not settings.freeze_vision_tower and settings.entropy_schedule is None


def test_stage3_defaults_are_table5():
    settings = EngineSettings.from_env(STAGE3)
    assert settings.freeze_vision_tower
    assert settings.vision_prefixes == DEFAULT_VISION_PREFIXES
    assert settings.entropy_schedule == EntropySchedule(beta0=0.02, beta_min=0.0, decay=0.985, warmup_updates=140)


def test_every_variable_is_read():
    env = {
        "REVISUAL_FREEZE_VISION_TOWER": "true",
        "REVISUAL_VISION_PREFIXES": "vision_tower,multi_modal_projector.",
        "REVISUAL_ENTROPY_SCHEDULE": "linear",
        "REVISUAL_ENTROPY_BETA0": "0.05",
        "REVISUAL_ENTROPY_BETA_MIN": "0.001",
        "REVISUAL_ENTROPY_DECAY": "0.9",
        "REVISUAL_ENTROPY_WARMUP_UPDATES": "7",
        "REVISUAL_ENTROPY_LINEAR_UPDATES": "50",
    }
    settings = EngineSettings.from_env(env)
    assert settings.vision_prefixes == ("vision_tower.", "multi_modal_projector.")
    assert settings.entropy_schedule == EntropySchedule("linear", 0.05, 0.001, 0.9, 7, 50)
    assert EngineSettings.from_env(settings.to_env()) == settings


@pytest.mark.parametrize(
    "env, name",
    [
        ({"REVISUAL_FREEZE_VISION_TOWER": "maybe"}, "REVISUAL_FREEZE_VISION_TOWER"),
        ({"REVISUAL_VISION_PREFIXES": "visual.,,"}, "REVISUAL_VISION_PREFIXES"),
        ({"REVISUAL_ENTROPY_SCHEDULE": "cosine"}, "REVISUAL_ENTROPY_SCHEDULE"),
        ({"REVISUAL_ENTROPY_SCHEDULE": "exponential", "REVISUAL_ENTROPY_BETA0": "2e-2x"}, "REVISUAL_ENTROPY_BETA0"),
        ({"REVISUAL_ENTROPY_SCHEDULE": "exponential", "REVISUAL_ENTROPY_DECAY": "1.2"}, "REVISUAL_ENTROPY_DECAY"),
        (
            {"REVISUAL_ENTROPY_SCHEDULE": "exponential", "REVISUAL_ENTROPY_WARMUP_UPDATES": "1.5"},
            "REVISUAL_ENTROPY_WARMUP_UPDATES",
        ),
        ({"REVISUAL_ENTROPY_SCHEDULE": "linear"}, "REVISUAL_ENTROPY_LINEAR_UPDATES"),
        (
            {"REVISUAL_ENTROPY_SCHEDULE": "exponential", "REVISUAL_ENTROPY_BETA_MIN": "0.5"},
            "REVISUAL_ENTROPY_BETA_MIN",
        ),
    ],
)
def test_bad_values_name_the_variable(env, name):
    with pytest.raises(ValueError, match=name):
        EngineSettings.from_env(env)


def compose_ppo(overrides):
    config_dir = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        return compose("ppo_trainer", overrides=overrides)


def test_overrides_reach_rays_runtime_env_as_strings_and_pass_the_startup_check():
    settings = EngineSettings.from_env(STAGE3)
    config = compose_ppo(settings.hydra_overrides() + ["actor_rollout_ref.actor.freeze_vision_tower=True"])
    # What verl's main_ppo hands to ray.init: its defaults merged with ray_kwargs.ray_init.runtime_env.
    runtime_env = OmegaConf.to_container(
        OmegaConf.merge(get_ppo_ray_runtime_env(config), config.ray_kwargs.ray_init.runtime_env)
    )
    env_vars = runtime_env["env_vars"]
    assert all(isinstance(v, str) for v in env_vars.values())  # Ray refuses anything else
    assert EngineSettings.from_env(env_vars) == settings
    assert env_vars["VERL_ENGINE_VENDOR"] == "revisual"
    assert check_trainer_config(config, environ={}) == settings


def test_startup_check_refuses_a_freeze_key_that_would_be_ignored():
    config = compose_ppo(["actor_rollout_ref.actor.freeze_vision_tower=True"])
    with pytest.raises(ValueError, match="REVISUAL_FREEZE_VISION_TOWER"):
        check_trainer_config(config, environ={})
    with pytest.raises(ValueError, match="VERL_ENGINE_VENDOR"):
        check_trainer_config(config, environ={"REVISUAL_FREEZE_VISION_TOWER": "1"})
    plain = compose_ppo([])
    assert check_trainer_config(plain, environ={}) == EngineSettings()
    with pytest.raises(ValueError, match="freeze_vision_tower=False"):
        check_trainer_config(plain, environ=STAGE3)
