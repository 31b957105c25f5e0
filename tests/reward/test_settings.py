from dataclasses import fields

import numpy as np
import pytest
from omegaconf import OmegaConf

from revisual_verl.reward.settings import RewardSettings


def test_defaults_follow_the_spec():
    settings = RewardSettings()
    assert (settings.length_budget, settings.length_alpha, settings.length_delta) == (8192, 0.005, 0.5)
    assert settings.accuracy_weight + settings.format_weight + settings.length_weight == pytest.approx(1.0)
    assert settings.accuracy_weight > settings.format_weight + settings.length_weight


def test_from_an_omegaconf_mapping_with_type_coercion():
    values = OmegaConf.create({"length_budget": 4096, "length_alpha": 1, "timeout_s": 2, "workers": None})
    settings = RewardSettings.from_mapping(values)
    assert settings.length_budget == 4096 and settings.length_alpha == 1.0 and settings.timeout_s == 2.0
    assert settings.workers is None
    assert RewardSettings.from_mapping(None) == RewardSettings()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"budget": 10}, r"reward\.reward_kwargs\.budget is not a setting"),
        ({"length_budget": "8k"}, "length_budget must be an integer"),
        ({"length_budget": 0}, "length_budget must be >= 1"),
        ({"accuracy_weight": -0.1}, "accuracy_weight must be >= 0"),
        ({"accuracy_weight": 1.0, "format_weight": 0.1}, "<= 1"),
        ({"timeout_s": 0}, "timeout_s must be > 0"),
        ({"timeout_s": None}, "timeout_s must not be null"),
        ({"workers": 0}, "workers must be >= 1"),
        ({"length_needs_correct": "maybe"}, "length_needs_correct must be true or false"),
        ({"format_weight": True}, "must be a number"),
        ({"accuracy_weight": float("nan")}, "accuracy_weight must be a finite number"),
        ({"timeout_s": float("nan")}, "timeout_s must be a finite number"),
        ({"timeout_s": float("inf")}, "timeout_s must be a finite number"),
        ({"length_alpha": float("inf")}, "length_alpha must be a finite number"),
        ({"length_delta": float("-inf")}, "length_delta must be a finite number"),
        ({"max_answer_chars": 10.0}, "max_answer_chars must be an integer"),
        ({"workers": 1.5}, "workers must be an integer"),
        ({"length_needs_correct": None}, "length_needs_correct must not be null"),
    ],
)
def test_bad_values_name_the_key(values, message):
    with pytest.raises((ValueError, TypeError), match=message):
        RewardSettings.from_mapping(values)


def test_every_float_setting_refuses_nan_and_inf_when_built_directly():
    for field in fields(RewardSettings):
        if field.type is float:
            for bad in (float("nan"), float("inf")):
                with pytest.raises(ValueError, match=f"{field.name} must be a finite number"):
                    RewardSettings(**{field.name: bad})
    with pytest.raises(ValueError, match="length_alpha must be a finite number"):
        RewardSettings(length_alpha=np.float32("nan"))  # a numpy scalar from a config built in code
