"""algorithm.pad settings: defaults, validation, and the shipped Hydra config against verl's tree."""

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from hydra.errors import ConfigCompositionException

from revisual_verl.pad.config import PadConfig, check_loss_agg_mode

SMALL_RUN = [
    "data.train_batch_size=16",
    "actor_rollout_ref.rollout.n=8",
    "actor_rollout_ref.actor.ppo_mini_batch_size=8",
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2",
    "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=2",
    "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=2",
]


def compose_plugin_config(overrides=()):
    with initialize_config_module(config_module="revisual_verl.config", version_base=None):
        return compose(config_name="revisual_ppo", overrides=list(overrides))


def test_defaults_follow_the_spec():
    cfg = PadConfig()
    assert (cfg.t_low, cfg.t_high, cfg.rho, cfg.tau_start, cfg.tau_end) == (0.03, None, 1.0, 1.0, 0.3)
    assert (cfg.tau_schedule, cfg.priority, cfg.replacement) == ("linear", "softmax", False)


def test_yaml_defaults_equal_dataclass_defaults():
    cfg = compose_plugin_config()
    assert PadConfig.from_algorithm(cfg.algorithm) == PadConfig()
    assert cfg.algorithm.adv_estimator == "pad"
    assert cfg.trainer.v1.trainer_mode == "pad_sync"
    assert cfg.actor_rollout_ref.actor.loss_agg_mode == "token-mean"


def test_overrides_compose_without_plus_and_validate_in_verl():
    from verl.trainer.main_ppo import validate_config
    from verl.trainer.ppo.utils import need_critic, need_reference_policy

    cfg = compose_plugin_config(
        SMALL_RUN + ["algorithm.pad.tau_end=0.2", "algorithm.pad.t_high=0.97", "algorithm.pad.replacement=true"]
    )
    pad = PadConfig.from_algorithm(cfg.algorithm)
    assert (pad.tau_end, pad.t_high, pad.replacement) == (0.2, 0.97, True)
    validate_config(cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))


def test_misspelt_key_is_refused_by_hydra():
    with pytest.raises(ConfigCompositionException):
        compose_plugin_config(["algorithm.pad.tua_end=0.2"])


def test_unknown_key_names_the_key():
    with pytest.raises(ValueError, match=r"algorithm\.pad\.tau_ned"):
        PadConfig.from_mapping({"tau_ned": 0.3})


@pytest.mark.parametrize(
    "section,key",
    [
        ({"t_low": -1}, "t_low"),
        ({"t_low": 0.5, "t_high": 0.1}, "t_high"),
        ({"rho": 0}, "rho"),
        ({"tau_end": 0}, "tau_end"),
        ({"priority": "cubic"}, "priority"),
        ({"tau_schedule": "step"}, "tau_schedule"),
        ({"replacement": "maybe"}, "replacement"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_values_name_the_key(section, key):
    with pytest.raises(ValueError, match=rf"algorithm\.pad\.{key}"):
        PadConfig.from_mapping(section)


def test_t_high_accepts_inf_and_null():
    assert PadConfig.from_mapping({"t_high": "inf"}).t_high is None
    assert PadConfig.from_mapping({"t_high": float("inf")}).t_high is None
    assert PadConfig.from_algorithm(OmegaConf.create({"pad": {"t_high": None}})).t_high is None
    assert PadConfig.from_algorithm(None) == PadConfig()


@pytest.mark.parametrize("mode", ["seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"])
def test_row_counting_loss_modes_are_refused(mode):
    with pytest.raises(ValueError, match="loss_agg_mode"):
        check_loss_agg_mode(mode)


@pytest.mark.parametrize("mode", ["token-mean", "token-sum"])
def test_token_loss_modes_are_accepted(mode):
    check_loss_agg_mode(mode)
