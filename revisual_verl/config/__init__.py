"""Hydra configs shipped with the plugin (revisual_ppo.yaml extends verl's ppo_trainer)."""
