"""python -m revisual_verl.main_ppo: verl's entry point with the plugin's config."""

import os
import subprocess
import sys


def run_main(*args):
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    return subprocess.run(
        [sys.executable, "-m", "revisual_verl.main_ppo", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_composes_plugin_keys_without_plus():
    out = run_main("--cfg", "job", "algorithm.pad.tau_end=0.25", "algorithm.pad.priority=power")
    assert out.returncode == 0, out.stderr
    assert "adv_estimator: pad" in out.stdout
    assert "tau_end: 0.25" in out.stdout and "priority: power" in out.stdout
    assert "trainer_mode: pad_sync" in out.stdout


def test_ignored_freeze_key_fails_before_ray_starts():
    # revisual_ppo keeps verl's engine config: the key would be ignored there.
    out = run_main("actor_rollout_ref.actor.freeze_vision_tower=True")
    assert out.returncode != 0
    assert "actor_rollout_ref.actor.freeze_vision_tower=True but" in out.stderr + out.stdout
    assert "ray init kwargs" not in out.stdout


def test_stage_configs_compose_engine_keys_without_plus():
    out = run_main(
        "--config-name=stage3_text_rl", "--cfg", "job", "actor_rollout_ref.actor.fsdp_config.entropy.decay=0.9"
    )
    assert out.returncode == 0, out.stderr
    assert "_target_: revisual_verl.engine.config.RevisualFSDPEngineConfig" in out.stdout
    assert "decay: 0.9" in out.stdout and "schedule: exponential" in out.stdout


def test_misspelt_engine_key_fails_before_ray_starts():
    out = run_main("--config-name=stage3_text_rl", "actor_rollout_ref.actor.fsdp_config.entropy.warmup=20")
    assert out.returncode != 0
    assert "actor_rollout_ref.actor.fsdp_config.entropy.warmup" in out.stderr + out.stdout
    assert "ray init kwargs" not in out.stdout


def test_bad_engine_value_fails_before_ray_starts_naming_its_key():
    out = run_main("--config-name=stage3_text_rl", "actor_rollout_ref.actor.fsdp_config.entropy.decay=2")
    assert out.returncode != 0
    assert "actor_rollout_ref.actor.fsdp_config.entropy.decay=2" in out.stderr + out.stdout
    assert "ray init kwargs" not in out.stdout


def test_bad_pad_setting_fails_before_ray_starts():
    out = run_main("algorithm.pad.rho=-1")
    assert out.returncode != 0
    assert "algorithm.pad.rho" in out.stderr + out.stdout
    assert "ray init kwargs" not in out.stdout


def test_row_counting_loss_mode_fails_before_ray_starts():
    out = run_main("actor_rollout_ref.actor.loss_agg_mode=seq-mean-token-sum")
    assert out.returncode != 0
    assert "loss_agg_mode" in out.stderr + out.stdout
    assert "ray init kwargs" not in out.stdout


def test_both_documented_routes_compose_a_stage_from_any_directory(tmp_path):
    """revisual_verl.main_ppo registers the search path itself; verl's own entry point gets it on the command line
    (README), so neither depends on Hydra listing hydra_plugins, which an editable install does not allow."""
    from revisual_verl import config

    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    routes = [
        ["revisual_verl.main_ppo", "--config-name=stage3_text_rl"],
        [
            "verl.trainer.main_ppo",
            f"--config-path={os.path.dirname(config.__file__)}",
            "--config-name=stage3_text_rl",
            "hydra.searchpath=[pkg://verl.trainer.config]",
        ],
    ]
    for route in routes:
        out = subprocess.run(
            [sys.executable, "-m", *route, "--cfg", "job"],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
        )
        assert out.returncode == 0, (route[0], out.stderr[-2000:])
        assert "adv_estimator: pad" in out.stdout and "schedule: exponential" in out.stdout
