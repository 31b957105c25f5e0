"""revisual_ppo.yaml: verl's ppo_trainer plus the plugin's keys, composed against the installed verl."""

import dataclasses

import pytest
from helpers.plugin_config import compose_plugin_config
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from revisual_verl.pad.config import PadConfig
from revisual_verl.presample.config import PresampleConfig

SMALL_RUN = [
    "data.train_batch_size=16",
    "actor_rollout_ref.rollout.n=8",
    "actor_rollout_ref.actor.ppo_mini_batch_size=8",
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2",
    "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=2",
    "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=2",
]


def test_yaml_defaults_equal_dataclass_defaults():
    cfg = compose_plugin_config()
    assert PadConfig.from_algorithm(cfg.algorithm) == PadConfig()
    assert PresampleConfig.from_algorithm(cfg.algorithm) == PresampleConfig()
    assert set(cfg.algorithm.presample) == {field.name for field in dataclasses.fields(PresampleConfig)}
    assert cfg.algorithm.adv_estimator == "pad"
    assert cfg.trainer.v1.trainer_mode == "pad_sync"
    assert cfg.actor_rollout_ref.actor.loss_agg_mode == "token-mean"


def test_overrides_compose_without_plus_and_validate_in_verl():
    from verl.trainer.main_ppo import validate_config
    from verl.trainer.ppo.utils import need_critic, need_reference_policy

    pad_keys = [
        "algorithm.pad.tau_end=0.2",
        "algorithm.pad.t_high=0.97",
        "algorithm.pad.replacement=true",
        "algorithm.presample.enable=true",
    ]
    cfg = compose_plugin_config(overrides=SMALL_RUN + pad_keys)
    pad = PadConfig.from_algorithm(cfg.algorithm)
    assert (pad.tau_end, pad.t_high, pad.replacement) == (0.2, 0.97, True)
    validate_config(cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))


def test_misspelt_key_is_refused_by_hydra():
    with pytest.raises(ConfigCompositionException):
        compose_plugin_config(overrides=["algorithm.pad.tua_end=0.2"])


def test_reward_settings_compose_without_plus_and_follow_the_response_length():
    from revisual_verl.reward.settings import RewardSettings

    cfg = compose_plugin_config(overrides=["data.max_response_length=4096", "reward.reward_kwargs.timeout_s=3"])
    assert cfg.reward.reward_manager.name == "revisual"
    kwargs = OmegaConf.to_container(cfg.reward.reward_kwargs, resolve=True)
    assert kwargs["length_budget"] == 4096 and kwargs["timeout_s"] == 3
    assert RewardSettings.from_mapping(kwargs).length_budget == 4096
