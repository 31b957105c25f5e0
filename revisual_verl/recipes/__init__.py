"""Python helpers of the shell recipes in ``recipes/`` (the dry-run validator and what it is built from).

``python -m revisual_verl.recipes.dry_run --stage N -- <command>`` composes the Hydra config that
``<command>`` would train with, validates it with the installed verl, and prints the command.
"""
