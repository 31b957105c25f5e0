"""The plugin's Hydra configs (revisual_verl/config) composed against the installed verl, as the entry points do."""

from __future__ import annotations

from collections.abc import Iterable

from hydra import compose, initialize_config_module
from omegaconf import DictConfig

from revisual_verl.config import register_search_path

PLUGIN_CONFIG_MODULE = "revisual_verl.config"


def compose_plugin_config(config_name: str = "revisual_ppo", overrides: Iterable[str] = ()) -> DictConfig:
    """``config_name`` (revisual_ppo or a stage config) with Hydra command-line ``overrides``."""
    register_search_path()
    with initialize_config_module(config_module=PLUGIN_CONFIG_MODULE, version_base=None):
        return compose(config_name=config_name, overrides=list(overrides))
