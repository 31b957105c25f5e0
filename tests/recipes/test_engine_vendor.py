"""Every stage trains through the revisual engine vendor, which carries the text-only forward fix."""

import fake_verl
import pytest

from revisual_verl.recipes.command import parse_command


def test_stage_one_sft_runs_with_the_revisual_engine_vendor(stage_call):
    call = stage_call(1)
    assert fake_verl.module_of(call) == "revisual_verl.sft_trainer"
    assert call["engine_vendor"] == "revisual"


def test_stage_one_on_ray_uses_the_revisual_entry_point(stage_call):
    call = stage_call(1, SFT_LAUNCHER="ray")
    assert fake_verl.module_of(call) == "revisual_verl.sft_trainer_ray"
    assert parse_command(call["argv"]).config_name == "stage1_coldstart_sft"


def test_a_vendor_chosen_by_the_user_is_kept(stage_call):
    assert stage_call(1, VERL_ENGINE_VENDOR="acme")["engine_vendor"] == "acme"


@pytest.mark.parametrize("stage, config", [(2, "stage2_multimodal_rl"), (3, "stage3_text_rl")])
def test_rl_stages_name_their_stage_config(stage_call, stage, config):
    call = stage_call(stage)
    command = parse_command(call["argv"])
    assert command.module == "revisual_verl.main_ppo" and command.config_name == config


def test_the_cpu_mode_is_a_config_group_choice_for_every_launcher(stage_call):
    on_ray = stage_call(1, SFT_LAUNCHER="ray", DEVICE="cpu")
    assert fake_verl.module_of(on_ray) == "revisual_verl.sft_trainer_ray"
    assert "sft_device=cpu" in parse_command(on_ray["argv"]).overrides
    assert "sft_device=cpu" in parse_command(stage_call(1, DEVICE="cpu")["argv"]).overrides
    for stage in (2, 3):
        overrides = parse_command(stage_call(stage, DEVICE="cpu")["argv"]).overrides
        assert "device=cpu" in overrides
        assert not any(o.startswith(("actor_rollout_ref.actor.strategy", "++actor_rollout_ref")) for o in overrides)
    assert "device=cpu" not in parse_command(stage_call(2)["argv"]).overrides


def test_the_cpu_mode_refuses_a_rollout_split_over_processes(tmp_path, sample_data):
    # The device group sets tensor_model_parallel_size 1, but the recipe's own arguments come after it.
    import subprocess
    from pathlib import Path

    recipes = Path(__file__).resolve().parents[2] / "recipes"
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.jsonl"
    fake_verl.install(bin_dir)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    settings = {"MODEL_PATH": str(tmp_path / "model"), "DATA_DIR": str(sample_data), "DEVICE": "cpu", "ROLLOUT_TP": "2"}
    result = subprocess.run(
        ["bash", str(recipes / "run_stage2.sh")],
        env=fake_verl.env_for(tmp_path, bin_dir, log, OUTPUT_DIR=str(tmp_path / "out"), **settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0 and "ROLLOUT_TP must be 1" in result.stderr
    assert not log.exists() or not [c for c in fake_verl.read_log(log) if fake_verl.module_of(c)]
