"""Hydra configs shipped with the plugin (revisual_ppo.yaml extends verl's ppo_trainer, the stage configs extend it).

They find verl's configs through the search-path plugin in ``hydra_plugins/revisual_verl_searchpath``. Hydra
discovers it by scanning the ``hydra_plugins`` namespace package, which works for a wheel but not for an
editable install in setuptools' default mode (its import finder maps the module without making it listable),
so every entry point that composes these configs also registers it by hand: :func:`register_search_path`.
"""


def register_search_path() -> None:
    """Register the search-path plugin with Hydra (idempotent; a no-op when Hydra found it itself)."""
    from hydra.core.plugins import Plugins

    from hydra_plugins.revisual_verl_searchpath import RevisualVerlSearchPathPlugin

    Plugins.instance().register(RevisualVerlSearchPathPlugin)
