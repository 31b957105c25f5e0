"""algorithm.pad settings: defaults and validation with messages that name the key."""

import pytest
from helpers.plugin_config import compose_plugin_config
from omegaconf import OmegaConf

from revisual_verl.pad.config import PadConfig, check_loss_agg_mode


def test_defaults_follow_the_spec():
    cfg = PadConfig()
    assert (cfg.t_low, cfg.t_high, cfg.rho, cfg.tau_start, cfg.tau_end) == (0.03, None, 1.0, 1.0, 0.3)
    assert (cfg.tau_schedule, cfg.priority, cfg.replacement) == ("linear", "softmax", False)


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
        ({"duplicates": "merge"}, "duplicates"),
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


def test_compact_is_declared_with_the_pad_keys_and_composes_without_plus():

    assert PadConfig().compact is True
    assert PadConfig.from_mapping({"compact": "false"}).compact is False
    with pytest.raises(ValueError, match=r"algorithm\.pad\.compact"):
        PadConfig.from_mapping({"compact": "sometimes"})
    default = compose_plugin_config()
    masked = compose_plugin_config(overrides=["algorithm.pad.compact=false"])
    assert default.algorithm.pad.compact is True
    assert PadConfig.from_algorithm(default.algorithm).compact is True
    assert PadConfig.from_algorithm(masked.algorithm).compact is False


def test_duplicates_default_to_weights_in_the_dataclass_and_every_stage(plugin_config):
    assert PadConfig().duplicates == "weights"
    for stage in ("revisual_ppo", "stage2_multimodal_rl", "stage3_text_rl"):
        assert PadConfig.from_algorithm(plugin_config(stage).algorithm).duplicates == "weights", stage
    copies = plugin_config("stage2_multimodal_rl", ["algorithm.pad.duplicates=copies"])
    assert PadConfig.from_algorithm(copies.algorithm).duplicates == "copies"


def test_values_are_read_by_omegaconf_rules_and_bad_types_name_the_key():
    # Hydra hands command-line values over as typed scalars or strings; OmegaConf converts them by the field type.
    pad = PadConfig.from_mapping({"rho": "1.5", "replacement": "true", "seed": "7", "t_high": "inf"})
    assert (pad.rho, pad.replacement, pad.seed, pad.t_high) == (1.5, True, 7, None)
    with pytest.raises(ValueError, match=r"algorithm\.pad\.rho must be a number, got 'lots'"):
        PadConfig.from_mapping({"rho": "lots"})
    with pytest.raises(ValueError, match=r"algorithm\.pad\.t_low must not be null"):
        PadConfig.from_mapping({"t_low": None})


def test_interpolations_resolve_against_the_whole_config():
    root = OmegaConf.create({"recipe": {"bound": 0.9}, "algorithm": {"pad": {"t_high": "${recipe.bound}"}}})
    assert PadConfig.from_algorithm(root.algorithm).t_high == 0.9
