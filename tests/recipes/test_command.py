"""revisual_verl.recipes.command: which config a training command composes, with which overrides."""

from __future__ import annotations

import shlex

import pytest

from revisual_verl.recipes.command import CommandError, parse_command


def test_ppo_command_maps_to_the_plugin_config():
    command = parse_command(["python", "-m", "revisual_verl.main_ppo", "a.b=1", "'c.d=x y'"])
    assert (command.config_module, command.config_name) == ("revisual_verl.config", "revisual_ppo")
    assert command.overrides == ("a.b=1", "'c.d=x y'")
    assert not command.is_sft


def test_torchrun_sft_command_skips_the_launcher_flags():
    argv = ["torchrun", "--standalone", "--nnodes=1", "--nproc_per_node=8", "-m", "verl.trainer.sft_trainer", "x=1"]
    command = parse_command(argv)
    assert (command.config_module, command.config_name) == ("verl.trainer.config", "sft_trainer_engine")
    assert command.overrides == ("x=1",)
    assert command.is_sft


def test_shell_line_round_trips_through_a_shell():
    argv = ["python", "-m", "verl.trainer.main_ppo", "trainer.default_local_dir='/a b/c'", "trainer.logger=[console]"]
    assert shlex.split(parse_command(argv).shell()) == argv


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["python", "train.py", "a=1"], "expected a command of the form"),
        (["python", "-m"], "expected a command of the form"),
        (["python", "-m", "some.other.module", "a=1"], "cannot dry-run module 'some.other.module'"),
        (["python", "-m", "revisual_verl.main_ppo", "--cfg", "job"], "Hydra command-line flags"),
    ],
)
def test_commands_a_dry_run_cannot_mirror_are_refused(argv, message):
    with pytest.raises(CommandError, match=message):
        parse_command(argv)


@pytest.mark.parametrize("flag", [["--config-name=stage3_text_rl"], ["--config-name", "stage3_text_rl"]])
def test_config_name_flag_picks_the_stage_config(flag):
    command = parse_command(["python", "-m", "revisual_verl.main_ppo", *flag, "a.b=1"])
    assert (command.config_module, command.config_name) == ("revisual_verl.config", "stage3_text_rl")
    assert command.overrides == ("a.b=1",)


def test_plugin_sft_entry_points_use_the_stage_one_config():
    for module in ("revisual_verl.sft_trainer", "revisual_verl.sft_trainer_ray", "revisual_verl.cpu.sft"):
        command = parse_command(["torchrun", "-m", module, "x=1"])
        assert (command.config_module, command.config_name) == ("revisual_verl.config", "stage1_coldstart_sft")
        assert command.is_sft
