"""A settings section read by OmegaConf's typed merge, with messages that name the full key."""

import dataclasses

import pytest
from omegaconf import OmegaConf

from revisual_verl.typed_settings import SettingsError, settings_from_section


@dataclasses.dataclass(frozen=True)
class Knobs:
    rate: float = 0.5
    steps: int = 3
    enabled: bool = False
    limit: int | None = None
    name: str = "a"

    def __post_init__(self):
        if self.rate < 0:
            raise ValueError(f"my.knobs.rate must be >= 0, got {self.rate}")


def read(section):
    return settings_from_section(Knobs, section, path="my.knobs")


def test_defaults_strings_and_nulls():
    assert read(None) == Knobs() and read({}) == Knobs()
    assert read({"rate": "2", "steps": "4", "enabled": "true", "limit": None}) == Knobs(2.0, 4, True, None)
    assert read(OmegaConf.create({"limit": 9})).limit == 9


@pytest.mark.parametrize(
    "section, message",
    [
        ({"rat": 1}, r"my\.knobs\.rat is not a setting of my\.knobs; known keys: rate, steps, enabled, limit, name"),
        ({"steps": 2.5}, r"my\.knobs\.steps must be an integer, got 2\.5"),
        ({"steps": True}, r"my\.knobs\.steps must be an integer, got True"),
        ({"rate": "fast"}, r"my\.knobs\.rate must be a number, got 'fast'"),
        ({"enabled": "perhaps"}, r"my\.knobs\.enabled must be true or false, got 'perhaps'"),
        ({"limit": "many"}, r"my\.knobs\.limit must be an integer or null, got 'many'"),
        ({"rate": None}, r"my\.knobs\.rate must not be null"),
        ({"rate": -1}, r"my\.knobs\.rate must be >= 0"),
    ],
)
def test_bad_sections_name_the_key(section, message):
    with pytest.raises(ValueError, match=message):
        read(section)


def test_a_section_that_is_not_a_mapping_is_refused():
    with pytest.raises(SettingsError, match=r"my\.knobs must be a mapping of settings, got list"):
        read([1, 2])


def test_interpolations_resolve_where_the_section_stands():
    root = OmegaConf.create({"data": {"n": 7}, "my": {"knobs": {"steps": "${data.n}", "limit": "${missing.key}"}}})
    with pytest.raises(SettingsError, match=r"my\.knobs\.limit"):
        read(root.my.knobs)
    root.my.knobs.limit = "${data.n}"
    assert read(root.my.knobs) == Knobs(steps=7, limit=7)
