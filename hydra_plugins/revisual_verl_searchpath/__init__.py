"""Hydra search-path plugin: the plugin's configs (revisual_verl/config) extend verl's.

Hydra accepts ``hydra.searchpath`` only in the primary config, so ``revisual_ppo.yaml`` could not
both name verl's config directory and be extended by the stage configs (``stage2_multimodal_rl``
extends it). This plugin adds ``pkg://verl.trainer.config`` to the search path of every Hydra app
whose search path holds the plugin's config directory, and of no other app.
"""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

VERL_CONFIGS = "pkg://verl.trainer.config"


def _is_revisual_config_dir(path: str | None) -> bool:
    path = (path or "").replace("\\", "/").rstrip("/")
    return path == "pkg://revisual_verl.config" or path.endswith("/revisual_verl/config")


class RevisualVerlSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        paths = [element.path for element in search_path.get_path()]
        if VERL_CONFIGS not in paths and any(_is_revisual_config_dir(path) for path in paths):
            search_path.append(provider="revisual-verl", path=VERL_CONFIGS)
