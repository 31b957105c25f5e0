"""A config section read into a settings dataclass by OmegaConf, with errors that name the full key.

``OmegaConf.structured`` does the work: unknown keys, values of the wrong type, interpolations and the
conversion of Hydra's strings ("1.5", "inf", "true") are OmegaConf's rules, the same ones a verl config
dataclass gets from ``omega_conf_to_dataclass``. The dataclass's ``__post_init__`` adds the range checks.
What is added here is only the message: the user wrote ``algorithm.pad.rho``, not ``rho``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

Settings = TypeVar("Settings")

_EXPECTED = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


class SettingsError(ValueError):
    """A bad key or value in a settings section; the message names the full key."""


def settings_from_section(schema: type[Settings], section: Mapping | None, *, path: str) -> Settings:
    """``section`` (a DictConfig, a dict or None) as an instance of the dataclass ``schema``.

    ``path`` is where the section lives in the user's config (``algorithm.pad``), for the messages.
    """
    if section is None:
        section = {}
    if OmegaConf.is_dict(section):
        # Resolved where it stands, so interpolations into the rest of the config (${data.max_response_length})
        # still find their targets.
        try:
            section = OmegaConf.to_container(section, resolve=True)
        except OmegaConfBaseException as error:
            raise SettingsError(f"{path}.{_key(error)}: {str(error).splitlines()[0]}") from None
    if not isinstance(section, Mapping):
        raise SettingsError(f"{path} must be a mapping of settings, got {type(section).__name__}")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), section)
        return OmegaConf.to_object(merged)
    except ConfigKeyError as error:
        # verl's BaseConfig adds _target_, which is for Hydra, not a setting.
        known = ", ".join(field.name for field in dataclasses.fields(schema) if not field.name.startswith("_"))
        raise SettingsError(f"{path}.{_key(error)} is not a setting of {path}; known keys: {known}") from None
    except OmegaConfBaseException as error:
        key = _key(error)
        raise SettingsError(_type_message(schema, path, key, _raw_value(section, key))) from None


def _key(error: OmegaConfBaseException) -> str:
    return str(getattr(error, "full_key", None) or getattr(error, "key", None) or "?")


def _raw_value(section: Mapping, key: str) -> Any:
    return section.get(key, "?")


def _type_message(schema: type, path: str, key: str, value: Any) -> str:
    declared = typing.get_type_hints(schema).get(key)
    allowed = set(typing.get_args(declared)) if _is_union(declared) else {declared}
    if value is None and type(None) not in allowed:
        return f"{path}.{key} must not be null"
    kinds = [_EXPECTED[kind] for kind in (bool, int, float, str) if kind in allowed]
    expected = " or ".join(kinds) or f"a {getattr(declared, '__name__', declared)}"
    if type(None) in allowed:
        expected += " or null"
    return f"{path}.{key} must be {expected}, got {value!r}"


def _is_union(declared: Any) -> bool:
    return isinstance(declared, types.UnionType) or typing.get_origin(declared) is typing.Union
