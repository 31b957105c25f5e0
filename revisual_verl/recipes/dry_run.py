"""``python -m revisual_verl.recipes.dry_run --stage N -- <command>``: validate a recipe's training command.

The recipes call this when ``DRY_RUN=1`` with the exact command they would have run. It composes
that command's Hydra config (same config name, same overrides) against the installed verl, runs
the checks of :mod:`revisual_verl.recipes.dry_run_checks`, and prints the command. Exit status 0 when
nothing is wrong, 1 when a check failed, 2 when the command or its overrides cannot be composed.
No GPU, Ray or model weights are needed.
"""

from __future__ import annotations

import argparse
import sys
import time

from revisual_verl.recipes.command import CommandError, TrainCommand, parse_command

STAGE_NAMES = {1: "cold-start SFT", 2: "multimodal RL", 3: "text RL"}


def compose(command: TrainCommand):
    """The config the command's @hydra.main would receive."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    from revisual_verl.config import register_search_path

    register_search_path()

    with initialize_config_module(config_module=command.config_module, version_base=None):
        return hydra_compose(config_name=command.config_name, overrides=list(command.overrides))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m revisual_verl.recipes.dry_run",
        description="Compose and validate a ReVisual-R1 recipe's training command without GPUs, then print it.",
        epilog="Example: python -m revisual_verl.recipes.dry_run --stage 2 -- python -m revisual_verl.main_ppo "
        "data.train_files=data/mmrl/train.parquet ...",
    )
    parser.add_argument(
        "--stage", type=int, choices=sorted(STAGE_NAMES), required=True, help="recipe stage (1, 2 or 3)"
    )
    parser.add_argument(
        "--require-images",
        action="store_true",
        help="the training data must have the image column (data.image_key); the stage-2 recipe sets it",
    )
    parser.add_argument("--print-config", action="store_true", help="also print the composed config as YAML")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- followed by the command the recipe would run")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command_argv = args.command[1:] if args.command[:1] == ["--"] else args.command
    label = f"[dry-run] stage {args.stage} ({STAGE_NAMES[args.stage]})"
    try:
        command = parse_command(command_argv)
    except CommandError as error:
        print(f"{label}: {error}", file=sys.stderr)
        return 2

    started = time.monotonic()
    try:
        import verl  # noqa: F401  loads the plugins, as every verl process does

        config = compose(command)
    except Exception as error:  # noqa: BLE001  Hydra raises several types; all mean "bad override"
        print(f"{label}: the config does not compose: {type(error).__name__}: {error}", file=sys.stderr)
        print(f"{label}: command: {command.shell()}", file=sys.stderr)
        return 2

    from omegaconf import OmegaConf

    from revisual_verl.recipes import dry_run_checks

    sets_vendor = command.module.startswith("revisual_verl.")
    if command.is_sft:
        report = dry_run_checks.validate_sft(config, sets_vendor=sets_vendor)
    else:
        report = dry_run_checks.validate_ppo(config, require_images=args.require_images)

    from revisual_verl.recipes.settings_lines import engine_line, pad_line

    print(f"{label}: composed '{command.config_name}' with {len(command.overrides)} overrides")
    print(f"{label}: {pad_line(config, is_sft=command.is_sft)}")
    print(f"{label}: {engine_line(config, is_sft=command.is_sft, sets_vendor=sets_vendor)}")
    for finding in report.findings:
        print(finding.line())
    if args.print_config:
        print(OmegaConf.to_yaml(config))
    print(f"{label}: {'FAILED' if report.errors else 'passed'} in {time.monotonic() - started:.1f} s; would run:")
    print(command.shell())
    if report.errors:
        print(f"{label}: {len(report.errors)} check(s) failed:", file=sys.stderr)
        for finding in report.errors:
            print(finding.line(), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
